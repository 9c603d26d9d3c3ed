#pragma once
/// \file
/// `pool_core<Clock>`: the pool's slot machinery (lock-free hand-out and return, the slow path
/// with its FIFO of waiters, closing, metrics, housekeeping). It depends on the clock but not on
/// the connection type, which it sees as `void*` through four virtual hooks, so every pool over the
/// same clock shares one copy of it.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <type_traits>
#include <utility>

#include "../../detail/asymmetric_fence.hpp"
#include "../../detail/coarse_clock.hpp"
#include "../../detail/source_location.hpp"
#include "../../detail/time.hpp"
#include "../../error.hpp"
#include "../../logger.hpp"
#include "../metrics.hpp"
#include "../options.hpp"
#include "config.hpp"
#include "connect_throttle.hpp"
#include "leak_detector.hpp"
#include "pool_base.hpp"
#include "slot.hpp"
#include "statistics.hpp"
#include "waiter_queue.hpp"

namespace kysera::infra::pool::detail {

/// Thread-safe: every public member may be called from any thread. The base of
/// `connection_pool<Connection, Clock>`, which supplies the connections through the hooks below
/// and must call `start()` at the end of its constructor and `shut_down()` in its destructor (the
/// hooks are virtual, so neither can run here).
template <class Clock>
class pool_core : public pool_base {
 public:
  using slot_type = slot<Clock>;

  /// An exact snapshot: total = idle + active open connections, waiting = callers blocked in
  /// acquire, max = `max_size`. Never throws.
  pool_metrics get_metrics() const noexcept {
    std::lock_guard lock(mutex_);
    return metrics_locked();
  }

  /// The cumulative counters. Each counter is exact once the pool is quiet; while it is busy they
  /// are read one after another.
  pool_statistics get_statistics() const noexcept {
    std::uint64_t acquired = 0;
    for (std::size_t i = 0; i < size_; ++i)
      acquired += slots_[i].acquired.load(std::memory_order_relaxed);
    return counters_.snapshot(acquired);
  }

  /// Stops new acquires (they throw `errc::pool_closed`, waiters too), closes idle connections
  /// now and leased ones as their leases end. Idempotent; waits for a connect in progress on the
  /// housekeeping thread.
  void close() noexcept {
    bool first = false;
    {
      std::lock_guard lock(mutex_);
      first = mark_closed_locked();
    }
    if (!first) return;
    close_idle_connections();
    join_housekeeper();
  }

  /// `close()`, then waits up to `timeout` for every lease to end and every connection to be
  /// closed. Returns whether that happened in time.
  bool close_for(std::chrono::milliseconds timeout) noexcept;

  /// One housekeeping pass (see `connection_pool::maintain`).
  void maintain() noexcept;

 protected:
  explicit pool_core(const pool_options& options)
      : pool_base(options, static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()) ^
                               reinterpret_cast<std::uintptr_t>(this)),
        slots_(new slot_type[size_]),
        seen_(new seen_idle<Clock>[size_]),
        validation_threshold_(as_clock_duration(options_.validation_threshold)),
        idle_timeout_(as_clock_duration(options_.idle_timeout)),
        max_lifetime_(as_clock_duration(options_.max_lifetime)),
        throttle_(options_),
        leaks_(size_, options_.leak_detection_threshold) {}
  // Virtual because the hooks are: a pool deleted by `unique_ptr` (or through a user's class
  // derived from it) must not run into a non-virtual destructor next to virtual functions.
  virtual ~pool_core() = default;

  // The connection hooks, called only off the fast path. `open_connection` calls the factory and
  // returns what it made (null if it made nothing); `close_connection` calls its `close()` (may
  // throw: logged); `destroy_connection` deletes it; `ping_connection` runs `infra::ping` on it.
  virtual void* open_connection() = 0;
  virtual void close_connection(void* connection) = 0;
  virtual void destroy_connection(void* connection) noexcept = 0;
  virtual void ping_connection(void* connection) = 0;

  // The end of the derived constructor: fences on, housekeeper started (it calls the hooks).
  void start() {
    infra::detail::enable_asymmetric_fences();
    auto every = options_.housekeeping_interval;
    const auto leak = options_.leak_detection_threshold;
    if (leak.count() > 0 && every.count() > 0 && leak < every) every = leak;
    start_housekeeper(every, [this] { maintain(); });
  }

  // The derived destructor: closes, then waits for every lease still out and every caller still
  // inside `acquire` (logging a warning when that takes over a second).
  void shut_down() noexcept {
    close();
    std::unique_lock lock(mutex_);
    auto quiet = [this] { return inside_ == 0 && all_empty(); };
    if (!drained_cv_.wait_for(lock, std::chrono::seconds(1), quiet)) {
      lock.unlock();
      log(log_level::warn,
          "connection pool: destroyed while leases are still out; waiting for them to return");
      lock.lock();
      drained_cv_.wait(lock, quiet);
    }
  }

  // Claims an idle connection without locking, unless the pool is closed, callers are queued
  // (they go first) or a snapshot is being taken. `hint` is the slot this thread used last:
  // reusing it keeps one connection per thread warm and the threads off each other's cache
  // lines. Without `Validate` the caller proves the connection itself (a bounded ping) instead
  // of check_out's unbounded one.
  template <bool Validate = true>
  slot_type* try_fast(std::size_t& hint) noexcept {
    if (KYSERA_INFRA_POOL_UNLIKELY((flags_.load(std::memory_order_acquire) & ~timings_bit) != 0))
      return nullptr;
    const std::size_t n = size_;
    std::size_t i = hint;
    if (i >= n) i = 0;
    for (std::size_t k = 0; k < n; ++k) {
      slot_type& s = slots_[i];
      auto st = s.state.load(std::memory_order_relaxed);
      if (tag_of(st) == slot_tag::idle &&
          s.state.compare_exchange_strong(st, next_state(st, slot_tag::in_use),
                                          std::memory_order_acquire, std::memory_order_relaxed)) {
        hint = i;
        if (KYSERA_INFRA_POOL_LIKELY(check_out<Validate>(s))) return &s;
      }
      if (++i == n) i = 0;
    }
    return nullptr;
  }

  // The caller owns `s` (in_use), returned by its lease: back to idle, or closed. A pool that
  // records timings carries timings_bit, so it takes the same one branch as a broken lease.
  void release(slot_type& s, bool broken) noexcept {
    const auto flags = flags_.load(std::memory_order_relaxed);
    if (KYSERA_INFRA_POOL_UNLIKELY(broken || (flags & (closed_bit | timings_bit)))) {
      release_slow(s, broken, flags);
      return;
    }
    publish_idle(s);
  }

  // The acquires of a pool that records timings (the caller checked `timings_`): `try_fast`,
  // then with `Slow` `acquire_slow`; the lease is stamped for use_time. wait_time records 0 for
  // a lease try_fast handed out (one clock read, not two: see pool_timings::wait_time) and the
  // time from the failed look to the lease for one acquire_slow did. Null as they return it.
  template <bool Validate, bool Slow>
  KYSERA_INFRA_POOL_NOINLINE slot_type* timed_acquire(std::size_t& hint,
                                                      std::chrono::milliseconds timeout,
                                                      bool throw_if_exhausted) {
    if (slot_type* s = try_fast<Validate>(hint)) {
      s->leased_at = Clock::now();
      timings_->record_wait(index_of(*s), Clock::duration::zero());
      return s;
    }
    if constexpr (Slow) {
      const auto start = Clock::now();
      slot_type* s = acquire_slow(timeout, throw_if_exhausted);
      if (s == nullptr) return nullptr;
      s->leased_at = Clock::now();
      timings_->record_wait(index_of(*s), s->leased_at - start);
      return s;
    } else {
      (void)timeout;
      (void)throw_if_exhausted;
      return nullptr;
    }
  }

  KYSERA_INFRA_POOL_NOINLINE slot_type* acquire_slow(std::chrono::milliseconds timeout,
                                                     bool throw_if_exhausted);

  /// Opens connections on the calling thread until min_idle (at least one) are idle, retrying
  /// through the connect backoff until `timeout`; then throws the last connect error.
  void warm_up(std::chrono::milliseconds timeout);

  // Leak detection: one predictable branch on every acquire while it is off.
  bool leak_detection_on() const noexcept { return leaks_.enabled(); }
  // The caller has just been handed `s`; records where and by whom (leak detection on).
  void note_lease(slot_type& s, const infra::detail::source_location& where) noexcept {
    leaks_.note(static_cast<std::size_t>(&s - slots_.get()),
                s.state.load(std::memory_order_relaxed), where);
  }

 private:
  // An option in the clock's units; milliseconds::max() and the like saturate ("forever").
  static constexpr typename Clock::duration as_clock_duration(
      std::chrono::milliseconds d) noexcept {
    return infra::detail::saturating_duration_cast<typename Clock::duration>(d);
  }

  // The caller owns `s` (in_use). Retires it if too old; pings it unless it was handed out less
  // than validation_threshold ago (then its idle time is certainly shorter). The only clock read
  // of an acquire-release cycle is here.
  template <bool Validate = true>
  bool check_out(slot_type& s) noexcept {
    const auto now = infra::detail::coarse_clock<Clock>::now();
    if (KYSERA_INFRA_POOL_UNLIKELY(now >= s.expires_at)) {
      discard(s, close_reason::lifetime);
      return false;
    }
    bool proven = false;
    if constexpr (Validate) {
      if (KYSERA_INFRA_POOL_UNLIKELY(now - s.last_checkout() >= validation_threshold_)) {
        if (!revalidate(s)) return false;
        proven = true;
      }
    }
    s.set_last_checkout(now);
    s.proven = proven;
    s.count_acquired();
    return true;
  }

  // The caller owns `s` with an open connection; makes it idle. This store and the flags load
  // after it pair with a waiter queueing or close() (flag write, heavy fence, slot reads): either
  // they see this slot idle, or this sees their flag and settles. So no waiter sleeps next to an
  // idle connection and no connection stays open after close().
  void publish_idle(slot_type& s) noexcept {
    const auto next = next_state(s.state.load(std::memory_order_relaxed), slot_tag::idle);
    std::uint32_t flags;
    if (KYSERA_INFRA_POOL_LIKELY(
            infra::detail::light_fences_enabled().load(std::memory_order_relaxed))) {
      s.state.store(next, std::memory_order_release);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      flags = flags_.load(std::memory_order_relaxed);
    } else {
      s.state.store(next, std::memory_order_seq_cst);
      flags = flags_.load(std::memory_order_seq_cst);
    }
    if (KYSERA_INFRA_POOL_UNLIKELY(flags & (closed_bit | waiters_bit))) settle(s);
  }

  // Slow paths -----------------------------------------------------------------------------------

  // release() for a broken lease, a closed pool or a pool that records timings.
  KYSERA_INFRA_POOL_NOINLINE void release_slow(slot_type& s, bool broken,
                                               std::uint32_t flags) noexcept {
    if (flags & timings_bit)
      timings_->record_use(index_of(s), Clock::now() - s.leased_at);
    if (broken || (flags & closed_bit)) {
      discard(s, broken ? close_reason::broken : close_reason::pool_closed);
      return;
    }
    publish_idle(s);
  }

  KYSERA_INFRA_POOL_NOINLINE bool revalidate(slot_type& s) noexcept {
    counters_.count_validated();
    try {
      ping_connection(s.connection);
    } catch (const std::exception& e) {
      counters_.count_validation_failed();
      log(log_level::info,
          std::string("connection pool: discarding a connection that failed validation: ") +
              e.what());
      discard(s, close_reason::broken);
      return false;
    } catch (...) {
      counters_.count_validation_failed();
      log(log_level::info, "connection pool: discarding a connection that failed validation");
      discard(s, close_reason::broken);
      return false;
    }
    return true;
  }

  // In slow_paths.hpp: opening connections.
  slot_type* create_into(slot_type& s);
  void* make_connection();
  void install(slot_type& s, void* c) noexcept;
  void report_leaks(typename Clock::time_point now) noexcept;

  // Connections open now (idle, held by the housekeeper, or leased).
  std::size_t open_count() const noexcept {
    std::size_t n = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      const auto t = tag_of(slots_[i].state.load(std::memory_order_acquire));
      if (t == slot_tag::idle || t == slot_tag::reserved || t == slot_tag::in_use) ++n;
    }
    return n;
  }

  // Gives the capacity of a reserved slot back after the factory failed with `error`; the
  // throttle learns of it (and may begin a backoff window, failing queued callers fast).
  void abandon_creating(slot_type& s, connect_error error) noexcept {
    std::lock_guard lock(mutex_);
    if (throttle_.failed(Clock::now(), std::move(error), jitter_.next_unit()))
      counters_.count_backoff();
    const auto st = s.state.load(std::memory_order_relaxed);
    s.state.store(next_state(st, slot_tag::empty), std::memory_order_release);
    after_slot_freed_locked();
  }

  // A connect into a reserved slot succeeded: the throttle lets the next one start.
  void connect_succeeded() noexcept {
    std::lock_guard lock(mutex_);
    throttle_.succeeded();
    if (!queue_.empty()) dispatch_locked();
  }

  // Under the lock: an empty slot reserved (creating) for a connect the throttle allows now, or
  // null, with `verdict` saying why not: `wait` (no room, or connects in flight) or `fail` (a
  // backoff window is open and there is room, so the caller would have needed a new connection).
  slot_type* claim_connect_locked(connect_verdict& verdict) noexcept {
    verdict = throttle_.check(Clock::now());
    if (verdict == connect_verdict::fail) {
      if (!any_empty()) verdict = connect_verdict::wait;  // full: wait for a return, as ever
      return nullptr;
    }
    if (verdict == connect_verdict::wait) return nullptr;
    slot_type* s = claim_empty();
    if (s) {
      throttle_.started();
    } else {
      verdict = connect_verdict::wait;
    }
    return s;
  }

  bool any_empty() const noexcept {
    for (std::size_t i = 0; i < size_; ++i) {
      if (tag_of(slots_[i].state.load(std::memory_order_seq_cst)) == slot_tag::empty) return true;
    }
    return false;
  }

  // The caller owns `s` with an open connection. Closes it (outside the lock) and frees the slot.
  KYSERA_INFRA_POOL_NOINLINE void discard(slot_type& s, close_reason reason) noexcept {
    const auto st = s.state.load(std::memory_order_relaxed);
    s.state.store(next_state(st, slot_tag::closing), std::memory_order_release);
    close_and_free(s, reason);
  }

  // `s` is closing and owned by the caller.
  void close_and_free(slot_type& s, close_reason reason) noexcept {
    void* c = std::exchange(s.connection, nullptr);
    try {
      close_connection(c);
    } catch (const std::exception& e) {
      log(log_level::warn,
          std::string("connection pool: closing a connection failed: ") + e.what());
    } catch (...) {
      log(log_level::warn, "connection pool: closing a connection failed");
    }
    destroy_connection(c);
    counters_.count_closed(reason);
    std::lock_guard lock(mutex_);
    const auto st = s.state.load(std::memory_order_relaxed);
    s.state.store(next_state(st, slot_tag::empty), std::memory_order_release);
    after_slot_freed_locked();
  }

  void after_slot_freed_locked() noexcept {
    if (flags_.load(std::memory_order_relaxed) & closed_bit) {
      drained_cv_.notify_all();
    } else if (!queue_.empty()) {
      dispatch_locked();
    }
  }

  // `s` was just made idle and the pool has waiters or is closed. Takes it back (unless someone
  // already took it: then it is theirs to deal with) and hands it to the first waiter, or closes
  // it. Touches the pool only while owning `s` or holding the lock, so a destructor waiting for
  // leases cannot finish under its feet.
  KYSERA_INFRA_POOL_NOINLINE void settle(slot_type& s) noexcept {
    auto st = s.state.load(std::memory_order_seq_cst);
    if (tag_of(st) != slot_tag::idle ||
        !s.state.compare_exchange_strong(st, next_state(st, slot_tag::in_use),
                                         std::memory_order_seq_cst, std::memory_order_seq_cst))
      return;
    std::unique_lock lock(mutex_);
    if (flags_.load(std::memory_order_relaxed) & closed_bit) {
      lock.unlock();
      discard(s, close_reason::pool_closed);
    } else if (!queue_.empty()) {
      grant_locked(&s, false);
    } else {
      // The waiters left meanwhile; nobody can queue or close while we hold the lock.
      const auto now_state = s.state.load(std::memory_order_relaxed);
      s.state.store(next_state(now_state, slot_tag::idle), std::memory_order_seq_cst);
    }
  }

  void close_idle_connections() noexcept {
    for (;;) {
      slot_type* victim = nullptr;
      {
        std::lock_guard lock(mutex_);
        victim = claim_idle_for_close();
      }
      if (!victim) return;
      close_and_free(*victim, close_reason::pool_closed);
    }
  }

  // Under the lock: serve queued callers in order with idle connections, then with capacity
  // (as the connect throttle allows; in a backoff window those that would connect fail fast).
  void dispatch_locked() noexcept {
    while (!queue_.empty()) {
      if (slot_type* s = claim_idle()) {
        grant_locked(s, false);
        continue;
      }
      if (flags_.load(std::memory_order_relaxed) & closed_bit) return;
      connect_verdict verdict;
      if (slot_type* s = claim_connect_locked(verdict)) {
        grant_locked(s, true);
        continue;
      }
      if (verdict == connect_verdict::fail) {
        throttle_front_locked();
        continue;
      }
      return;
    }
  }

  slot_type* claim_idle() noexcept { return claim(slot_tag::idle, slot_tag::in_use); }
  slot_type* claim_empty() noexcept { return claim(slot_tag::empty, slot_tag::creating); }
  slot_type* claim_idle_for_close() noexcept { return claim(slot_tag::idle, slot_tag::closing); }

  slot_type* claim(slot_tag from, slot_tag to) noexcept {
    for (std::size_t i = 0; i < size_; ++i) {
      slot_type& s = slots_[i];
      auto st = s.state.load(std::memory_order_seq_cst);
      while (tag_of(st) == from) {
        if (s.state.compare_exchange_weak(st, next_state(st, to), std::memory_order_seq_cst,
                                          std::memory_order_seq_cst))
          return &s;
      }
    }
    return nullptr;
  }

  void grant_locked(slot_type* s, bool create) noexcept {
    pool_base::grant_locked(index_of(*s), create);
  }

  std::size_t index_of(const slot_type& s) const noexcept {
    return static_cast<std::size_t>(&s - slots_.get());
  }

  // Waits on `cv` until notified or `deadline` (callers loop): detail::wait_step, which also
  // serves hand-stepped test clocks.
  void wait_step(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 typename Clock::time_point deadline) const {
    infra::detail::wait_step<Clock>(cv, lock, deadline, std::chrono::milliseconds(2));
  }

  bool all_empty() const noexcept {
    for (std::size_t i = 0; i < size_; ++i) {
      if (tag_of(slots_[i].state.load(std::memory_order_acquire)) != slot_tag::empty) return false;
    }
    return true;
  }

  // An exact snapshot, under the lock (slow_paths.hpp says how).
  pool_metrics metrics_locked() const noexcept;

  const std::unique_ptr<slot_type[]> slots_;
  const std::unique_ptr<seen_idle<Clock>[]> seen_;  // under maintain_mutex_
  const typename Clock::duration validation_threshold_;
  const typename Clock::duration idle_timeout_;
  const typename Clock::duration max_lifetime_;
  connect_throttle<Clock> throttle_;  // under mutex_
  leak_detector<Clock> leaks_;        // scanned under maintain_mutex_
};

}  // namespace kysera::infra::pool::detail

#include "slow_paths.hpp"
