#pragma once
/// \file
/// `detail::call_mutex`: the recursive lock that serialises the calls on one adapter
/// connection, with a wait that can give up at a `steady_clock` deadline (`try_ping_until`).
///
/// Built on `std::mutex` and `std::condition_variable` rather than `std::recursive_timed_mutex`:
/// libstdc++ implements the latter's steady-clock wait with `pthread_mutex_clocklock`, which
/// ThreadSanitizer does not see, so it would lose track of who holds the lock. Uncontended,
/// `lock()` and `unlock()` are one short section of the inner mutex each; waiters are woken only
/// when there are any.

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "time.hpp"

namespace kysera::infra::detail {

/// Thread-safe. Recursive: the owner may lock it again (and must unlock as often). Meets the
/// standard's Lockable and (for `steady_clock`) TimedLockable requirements, so `lock_guard` and
/// `unique_lock` work with it.
class call_mutex {
 public:
  call_mutex() = default;
  call_mutex(const call_mutex&) = delete;
  call_mutex& operator=(const call_mutex&) = delete;

  void lock() {
    std::unique_lock guard(state_);
    const auto me = std::this_thread::get_id();
    if (depth_ > 0 && owner_ == me) {
      ++depth_;
      return;
    }
    ++waiters_;
    free_.wait(guard, [&] { return depth_ == 0; });
    --waiters_;
    owner_ = me;
    depth_ = 1;
  }

  bool try_lock() {
    std::lock_guard guard(state_);
    const auto me = std::this_thread::get_id();
    if (depth_ > 0 && owner_ != me) return false;
    owner_ = me;
    ++depth_;
    return true;
  }

  /// Waits until the lock is free or `deadline` passes (however far away); true when taken.
  template <class Duration>
  bool try_lock_until(std::chrono::time_point<std::chrono::steady_clock, Duration> deadline) {
    std::unique_lock guard(state_);
    const auto me = std::this_thread::get_id();
    if (depth_ > 0 && owner_ == me) {
      ++depth_;
      return true;
    }
    ++waiters_;
    const bool free = wait_until_capped(
        free_, guard, std::chrono::time_point_cast<std::chrono::steady_clock::duration>(deadline),
        [&] { return depth_ == 0; });
    --waiters_;
    if (!free) return false;
    owner_ = me;
    depth_ = 1;
    return true;
  }

  void unlock() {
    std::lock_guard guard(state_);
    if (--depth_ > 0) return;
    owner_ = std::thread::id();
    // All of them: one that times out at the same moment must not swallow the only wake-up.
    // Under the lock: a woken waiter may go on to destroy this object (a connection's
    // destructor waits here for the call in flight).
    if (waiters_ > 0) free_.notify_all();
  }

 private:
  std::mutex state_;
  std::condition_variable free_;
  std::thread::id owner_{};  // valid while depth_ > 0
  unsigned depth_ = 0;
  unsigned waiters_ = 0;
};

}  // namespace kysera::infra::detail
