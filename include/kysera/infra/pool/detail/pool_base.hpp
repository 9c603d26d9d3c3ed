#pragma once
/// \file
/// `pool_base`: the half of a connection pool that depends on neither the connection type nor
/// the clock (options, the closed/waiters flags, the lock and the waiter queue, counters,
/// logging, error messages, the housekeeping thread). Compiled once, whatever pools a program has.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

#include "../../detail/asymmetric_fence.hpp"
#include "../../detail/random.hpp"
#include "../../detail/time.hpp"
#include "../../error.hpp"
#include "../../logger.hpp"
#include "../metrics.hpp"
#include "../options.hpp"
#include "../timings.hpp"
#include "statistics.hpp"
#include "waiter_queue.hpp"

namespace kysera::infra::pool::detail {

/// The `pool_exhausted` of a `max_waiters` rejection: told apart from a wait that ran out, which
/// an ambient deadline turns into `timeout`. Callers see a `database_error`.
class pool_rejected_error : public database_error {
 public:
  using database_error::database_error;
};

/// True for a `database_error` in our category whose code means the session is unusable.
inline bool is_broken_connection(const std::system_error& e) noexcept {
  return infra::is_infra_error(e.code()) &&
         infra::is_connection_error(static_cast<infra::errc>(e.code().value()));
}

/// Thread-safe as the pool uses it: the fields say which lock guards them. The base of
/// `pool_core<Clock>`; never used on its own.
class pool_base {
 public:
  pool_base(const pool_base&) = delete;
  pool_base& operator=(const pool_base&) = delete;

  bool is_closed() const noexcept {
    return (flags_.load(std::memory_order_acquire) & closed_bit) != 0;
  }
  const pool_options& options() const noexcept { return options_; }
  /// The timing histograms, or null unless `pool_options::record_timings` was set.
  const pool_timings* timings() const noexcept { return timings_.get(); }

 protected:
  static constexpr std::uint32_t closed_bit = 1;
  static constexpr std::uint32_t waiters_bit = 2;
  static constexpr std::uint32_t gate_bit = 4;
  // Set for the pool's whole life when it records timings, so that release() finds it in the
  // flags it reads anyway; try_fast ignores it.
  static constexpr std::uint32_t timings_bit = 8;

  /// Validates `options` first (`std::invalid_argument` naming the field).
  explicit pool_base(const pool_options& options, std::uint64_t seed)
      : options_((validate(options), options)),
        size_(options_.max_size),
        scratch_(new std::uint64_t[2 * size_]),
        jitter_(seed),
        timings_(options_.record_timings ? std::make_unique<pool_timings>(size_) : nullptr),
        flags_(options_.record_timings ? timings_bit : 0) {}
  ~pool_base() = default;

  // Counts a caller of the slow path in `inside_` until its very last touch of the pool.
  class caller_guard {
   public:
    explicit caller_guard(pool_base& pool) noexcept : pool_(pool) {}
    ~caller_guard() {
      if (!counted_) return;
      std::lock_guard lock(pool_.mutex_);
      if (--pool_.inside_ == 0 && (pool_.flags_.load(std::memory_order_relaxed) & closed_bit))
        pool_.drained_cv_.notify_all();
    }
    caller_guard(const caller_guard&) = delete;
    caller_guard& operator=(const caller_guard&) = delete;
    void count() noexcept {  // under the lock
      ++pool_.inside_;
      counted_ = true;
    }

   private:
    pool_base& pool_;
    bool counted_ = false;
  };

  // Under the lock. The first call sets the closed bit, wakes every waiter (they throw
  // pool_closed) and tells the housekeeper to stop; true for that first call only.
  bool mark_closed_locked() noexcept {
    if (flags_.load(std::memory_order_relaxed) & closed_bit) return false;
    flags_.fetch_or(closed_bit, std::memory_order_seq_cst);
    infra::detail::heavy_fence();  // pairs with publish_idle
    while (!queue_.empty()) {
      waiter& w = queue_.front();
      unlink_locked(w);
      w.closed = true;
      w.done = true;
      w.cv.notify_one();
    }
    stopping_ = true;
    housekeeper_cv_.notify_all();
    return true;
  }

  void enqueue_locked(waiter& w) noexcept {
    queue_.push_back(w);
    // Only the 0 -> 1 change needs the fence: while the bit stays set, every return sees it.
    if (!(flags_.fetch_or(waiters_bit, std::memory_order_seq_cst) & waiters_bit))
      infra::detail::heavy_fence();
  }

  void unlink_locked(waiter& w) noexcept {
    queue_.unlink(w);
    if (queue_.empty()) flags_.fetch_and(~waiters_bit, std::memory_order_seq_cst);
  }

  // Hands slot `index` to the first waiter (`create`: the slot is reserved for a new connection).
  void grant_locked(std::size_t index, bool create) noexcept {
    waiter& w = queue_.front();
    unlink_locked(w);
    w.granted = index;
    w.create = create;
    w.done = true;
    w.cv.notify_one();
  }

  // Fails the first waiter fast: a connect backoff window is open and it would need a new
  // connection; it throws the throttle's error.
  void throttle_front_locked() noexcept {
    waiter& w = queue_.front();
    unlink_locked(w);
    w.throttled = true;
    w.done = true;
    w.cv.notify_one();
  }

  // Runs `pass()` now and then every `every` (0: never; no thread) until the pool closes.
  template <class Pass>
  void start_housekeeper(std::chrono::milliseconds every, Pass pass) {
    if (every.count() <= 0) return;
    housekeeper_ = std::thread([this, every, pass] {
      std::unique_lock lock(mutex_);
      while (!stopping_) {
        lock.unlock();
        pass();
        lock.lock();
        // Capped: a huge interval (milliseconds::max()) must sleep, not overflow into a busy loop.
        infra::detail::wait_for_capped(housekeeper_cv_, lock, every,
                                       [this] { return stopping_; });
      }
    });
  }

  // After mark_closed_locked: waits for a housekeeping pass in progress (unless called from it).
  void join_housekeeper() noexcept {
    if (housekeeper_.joinable() && housekeeper_.get_id() != std::this_thread::get_id())
      housekeeper_.join();
  }

  std::string exhausted_message(std::chrono::milliseconds timeout, const pool_metrics& m,
                                const pool_statistics& s) const {
    std::string msg = "connection pool exhausted: no connection became free within ";
    msg += std::to_string(timeout.count());
    msg += " ms (total ";
    msg += std::to_string(m.total);
    msg += ", idle " + std::to_string(m.idle);
    msg += ", active " + std::to_string(m.active);
    msg += ", waiting " + std::to_string(m.waiting);
    msg += ", max " + std::to_string(m.max);
    msg += "; acquired " + std::to_string(s.acquired);
    msg += ", timed out " + std::to_string(s.timed_out);
    msg += ", created " + std::to_string(s.created);
    msg += ", closed " + std::to_string(s.closed_broken) + " broken / " +
           std::to_string(s.closed_idle) + " idle / " + std::to_string(s.closed_lifetime) +
           " lifetime";
    msg += ", max wait " + format_ms(s.max_wait) + " ms)";
    return msg;
  }

  std::string rejected_message(const pool_metrics& m) const {
    return "connection pool exhausted: " + std::to_string(m.waiting) +
           " callers already wait (max_waiters " + std::to_string(options_.max_waiters) +
           "; total " + std::to_string(m.total) + ", active " + std::to_string(m.active) +
           ", max " + std::to_string(m.max) + ")";
  }

  [[noreturn]] static void throw_closed() {
    throw database_error(errc::pool_closed, "connection pool is closed", "pool");
  }

  void log(log_level level, const std::string& message) const noexcept {
    infra::detail::resolve(options_.logger).log(level, message);
  }

  const pool_options options_;
  const std::size_t size_;
  const std::unique_ptr<std::uint64_t[]> scratch_;  // for metrics_locked, under the lock
  infra::detail::shared_splitmix64 jitter_;         // lifetime jitter
  // Null unless record_timings; read by every acquire, next to size_ (which try_fast reads).
  const std::unique_ptr<pool_timings> timings_;

  // Read on every acquire and release, written rarely: its own cache line.
  alignas(64) mutable std::atomic<std::uint32_t> flags_;

  std::mutex maintain_mutex_;
  alignas(64) mutable std::mutex mutex_;
  waiter_queue queue_;      // blocked acquires, under mutex_
  std::size_t inside_ = 0;  // callers in acquire_slow (the destructor waits for them), under mutex_
  bool stopping_ = false;   // under mutex_
  std::condition_variable drained_cv_;
  std::condition_variable housekeeper_cv_;
  std::thread housekeeper_;

  pool_counters counters_;
};

}  // namespace kysera::infra::pool::detail
