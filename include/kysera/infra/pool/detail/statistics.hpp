#pragma once
/// \file
/// The pool's cumulative counters, kept as atomics and read into a `pool_statistics`.

#include <atomic>
#include <chrono>
#include <cstdint>

#include "../options.hpp"

namespace kysera::infra::pool::detail {

/// Why the pool closed a connection (each reason has its own counter).
enum class close_reason { broken, idle, lifetime, pool_closed };

/// Thread-safe: every counter is a relaxed atomic, bumped from any thread. The leases handed out
/// are counted per slot instead (no shared line on the hot path) and passed to `snapshot`.
class pool_counters {
 public:
  void count_created() noexcept { created_.fetch_add(1, std::memory_order_relaxed); }
  void count_create_failed() noexcept { create_failed_.fetch_add(1, std::memory_order_relaxed); }
  void count_validated() noexcept { validated_.fetch_add(1, std::memory_order_relaxed); }
  void count_validation_failed() noexcept {
    validation_failed_.fetch_add(1, std::memory_order_relaxed);
  }
  void count_timed_out() noexcept { timed_out_.fetch_add(1, std::memory_order_relaxed); }
  void count_connect_limited() noexcept {
    connect_limited_.fetch_add(1, std::memory_order_relaxed);
  }
  void count_backoff() noexcept { backoffs_.fetch_add(1, std::memory_order_relaxed); }
  void count_throttled() noexcept { throttled_.fetch_add(1, std::memory_order_relaxed); }
  void count_rejected() noexcept { rejected_.fetch_add(1, std::memory_order_relaxed); }
  void count_leaked() noexcept { leaked_.fetch_add(1, std::memory_order_relaxed); }

  void count_closed(close_reason reason) noexcept {
    switch (reason) {
      case close_reason::broken:
        closed_broken_.fetch_add(1, std::memory_order_relaxed);
        break;
      case close_reason::idle:
        closed_idle_.fetch_add(1, std::memory_order_relaxed);
        break;
      case close_reason::lifetime:
        closed_lifetime_.fetch_add(1, std::memory_order_relaxed);
        break;
      case close_reason::pool_closed:
        closed_by_close_.fetch_add(1, std::memory_order_relaxed);
        break;
    }
  }

  /// One acquire that could not take an idle connection at once, having waited `ns`.
  void count_wait(std::uint64_t ns) noexcept {
    waited_.fetch_add(1, std::memory_order_relaxed);
    wait_total_ns_.fetch_add(ns, std::memory_order_relaxed);
    auto prev = wait_max_ns_.load(std::memory_order_relaxed);
    while (prev < ns && !wait_max_ns_.compare_exchange_weak(prev, ns, std::memory_order_relaxed)) {
    }
  }

  /// The counters, one after another, with `acquired` summed by the caller.
  pool_statistics snapshot(std::uint64_t acquired) const noexcept {
    pool_statistics s;
    s.acquired = acquired;
    s.waited = waited_.load(std::memory_order_relaxed);
    s.timed_out = timed_out_.load(std::memory_order_relaxed);
    s.created = created_.load(std::memory_order_relaxed);
    s.create_failed = create_failed_.load(std::memory_order_relaxed);
    s.validated = validated_.load(std::memory_order_relaxed);
    s.validation_failed = validation_failed_.load(std::memory_order_relaxed);
    s.closed_broken = closed_broken_.load(std::memory_order_relaxed);
    s.closed_idle = closed_idle_.load(std::memory_order_relaxed);
    s.closed_lifetime = closed_lifetime_.load(std::memory_order_relaxed);
    s.closed_by_close = closed_by_close_.load(std::memory_order_relaxed);
    s.connect_limited = connect_limited_.load(std::memory_order_relaxed);
    s.backoffs = backoffs_.load(std::memory_order_relaxed);
    s.throttled = throttled_.load(std::memory_order_relaxed);
    s.rejected = rejected_.load(std::memory_order_relaxed);
    s.leaked = leaked_.load(std::memory_order_relaxed);
    s.total_wait = static_cast<double>(wait_total_ns_.load(std::memory_order_relaxed)) / 1e6;
    s.max_wait = static_cast<double>(wait_max_ns_.load(std::memory_order_relaxed)) / 1e6;
    return s;
  }

 private:
  // Written on slow paths only, but never next to the pool's hot words: their own cache line.
  alignas(64) std::atomic<std::uint64_t> waited_{0};
  std::atomic<std::uint64_t> timed_out_{0};
  std::atomic<std::uint64_t> created_{0};
  std::atomic<std::uint64_t> create_failed_{0};
  std::atomic<std::uint64_t> validated_{0};
  std::atomic<std::uint64_t> validation_failed_{0};
  std::atomic<std::uint64_t> closed_broken_{0};
  std::atomic<std::uint64_t> closed_idle_{0};
  std::atomic<std::uint64_t> closed_lifetime_{0};
  std::atomic<std::uint64_t> closed_by_close_{0};
  std::atomic<std::uint64_t> connect_limited_{0};
  std::atomic<std::uint64_t> backoffs_{0};
  std::atomic<std::uint64_t> throttled_{0};
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> leaked_{0};
  std::atomic<std::uint64_t> wait_total_ns_{0};
  std::atomic<std::uint64_t> wait_max_ns_{0};
};

/// Not thread-safe (one per acquire, on its thread): records the time an acquire spent in the
/// slow path, on every exit, once `count()` said it waited.
template <class Clock>
class wait_recorder {
 public:
  explicit wait_recorder(pool_counters& counters) noexcept
      : counters_(counters), start_(Clock::now()) {}
  ~wait_recorder() {
    if (counted_) finish();
  }
  wait_recorder(const wait_recorder&) = delete;
  wait_recorder& operator=(const wait_recorder&) = delete;

  void count() noexcept { counted_ = true; }
  /// Records now (once), e.g. so that a timeout's message includes its own wait.
  void finish() noexcept {
    counted_ = false;
    auto elapsed =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
    counters_.count_wait(static_cast<std::uint64_t>(elapsed > 0 ? elapsed : 0));
  }
  typename Clock::time_point start() const noexcept { return start_; }

 private:
  pool_counters& counters_;
  typename Clock::time_point start_;
  bool counted_ = false;
};

}  // namespace kysera::infra::pool::detail
