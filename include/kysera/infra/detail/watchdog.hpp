#pragma once
/// \file
/// `detail::watchdog`: one process-wide timer thread that runs an action when a deadline passes,
/// unless the deadline was disarmed first. Adapters use it to bound a call on the calling thread
/// (`try_ping_until`): they arm it with an action that gets the blocked call out (shut the
/// session's socket down) and disarm it when the call returns.
///
/// Cheap when nothing fires: arming and disarming take one short mutex section each; the timer
/// thread is woken only when a new deadline is earlier than the one it sleeps until, so a stream
/// of calls with the same timeout wakes it about once per timeout, not once per call.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "process_wide.hpp"
#include "time.hpp"

namespace kysera::infra::detail {

/// Thread-safe. Never destroyed (an armed call may outlive static destruction), so it is leaked
/// on purpose; its thread ends after a minute without deadlines and starts again when needed.
class watchdog {
 public:
  using clock = std::chrono::steady_clock;
  /// Runs on the watchdog thread, without the watchdog's lock; must be short and not throw.
  using action = void (*)(void* context) noexcept;

  // Shared across shared libraries (process_wide.hpp): a private copy would work, at the cost of
  // one more timer thread per library.
  KYSERA_INFRA_PROCESS_WIDE static watchdog& instance() {
    static watchdog* const dog = new watchdog();
    return *dog;
  }

  /// Registers `fn(context)` to run once `deadline` passes; returns the id to disarm, or 0 when
  /// the timer thread cannot be started or memory runs out (nothing is registered then).
  std::uint64_t arm(clock::time_point deadline, action fn, void* context) noexcept {
    std::lock_guard lock(mutex_);
    try {
      if (!running_) {
        std::thread([this] { run(); }).detach();
        running_ = true;
      }
      entries_.push_back(entry{last_id_ + 1, deadline, fn, context});
    } catch (...) {
      return 0;
    }
    const std::uint64_t id = ++last_id_;
    if (deadline < wake_at_) {
      wake_at_ = deadline;
      wake_.notify_one();
    }
    return id;
  }

  /// Cancels `id`. Returns true when its action ran (or is running: then this waits until it has
  /// returned), false when it was disarmed in time and will never run.
  bool disarm(std::uint64_t id) noexcept {
    std::unique_lock lock(mutex_);
    auto it = std::find_if(entries_.begin(), entries_.end(), [id](const entry& e) { return e.id == id; });
    if (it != entries_.end()) {
      *it = entries_.back();
      entries_.pop_back();
      return false;
    }
    while (firing_ == id) fired_.wait(lock);
    return true;
  }

  /// Deadlines armed and not yet fired or disarmed (for tests).
  std::size_t armed() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  struct entry {
    std::uint64_t id;
    clock::time_point deadline;
    action fn;
    void* context;
  };

  static constexpr std::chrono::seconds idle_exit{60};

  watchdog() = default;

  void run() noexcept {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (entries_.empty()) {
        // No predicate loop here: after any wake-up wake_at_ must be max() again, or a deadline
        // armed after an earlier one was armed and disarmed (wake_at_ still holding that one)
        // would not wake this thread until idle_exit.
        wake_at_ = clock::time_point::max();
        if (wake_.wait_for(lock, idle_exit) == std::cv_status::timeout && entries_.empty()) {
          running_ = false;
          return;
        }
        continue;
      }
      auto first = std::min_element(entries_.begin(), entries_.end(),
                                    [](const entry& a, const entry& b) { return a.deadline < b.deadline; });
      if (clock::now() < first->deadline) {
        wake_at_ = first->deadline;
        wait_until_capped(wake_, lock, first->deadline);
        continue;
      }
      const entry due = *first;
      *first = entries_.back();
      entries_.pop_back();
      firing_ = due.id;
      lock.unlock();
      due.fn(due.context);
      lock.lock();
      firing_ = 0;
      fired_.notify_all();
    }
  }

  mutable std::mutex mutex_;
  std::condition_variable wake_;   // the timer thread waits here
  std::condition_variable fired_;  // disarm() of a firing entry waits here
  std::vector<entry> entries_;     // few at a time: one per bounded call in flight
  clock::time_point wake_at_ = clock::time_point::max();  // what the timer thread sleeps until
  std::uint64_t last_id_ = 0;
  std::uint64_t firing_ = 0;  // the entry whose action runs now, 0 for none
  bool running_ = false;
};

/// Not thread-safe: one scope belongs to the thread that runs the call it bounds. Arms the
/// watchdog for one scope: `disarm()` (or the destructor) cancels it. A deadline of
/// `time_point::max()` arms nothing (and needs nothing).
///
///     watchdog_scope guard(deadline, &abort_socket, &target);
///     if (!guard.bounded()) return false;  // no timer thread: the call would be unbounded
///     run_the_call();
///     if (guard.disarm()) { /* the action ran: the call was cut short */ }
class watchdog_scope {
 public:
  watchdog_scope(watchdog::clock::time_point deadline, watchdog::action fn, void* context) noexcept
      : id_(deadline == watchdog::clock::time_point::max() ? 0 : watchdog::instance().arm(deadline, fn, context)),
        bounded_(id_ != 0 || deadline == watchdog::clock::time_point::max()) {}
  ~watchdog_scope() { (void)disarm(); }
  watchdog_scope(const watchdog_scope&) = delete;
  watchdog_scope& operator=(const watchdog_scope&) = delete;

  /// False when the deadline could not be armed (see `watchdog::arm`): the call is not bounded.
  bool bounded() const noexcept { return bounded_; }

  /// Disarms; true when the action ran. Idempotent (later calls repeat the answer).
  bool disarm() noexcept {
    if (id_ != 0) {
      fired_ = watchdog::instance().disarm(id_);
      id_ = 0;
    }
    return fired_;
  }

 private:
  std::uint64_t id_;
  const bool bounded_;
  bool fired_ = false;
};

/// One bounded call: runs `call()` with `fn(context)` armed for `deadline`. Returns false, having
/// run nothing, when no timer thread could be started. When the action fired, runs `on_cut()`
/// (what it cut is gone, e.g. the session) and turns a failure of `call` into `make_timeout()`;
/// a call that succeeded just as the action fired still returns true.
///
///     bool bounded = call_with_deadline(deadline, &shut_socket_down, &socket, [&] { ping(); },
///                                       [&] { broken = true; }, [&] { return timeout_error(); });
template <class Call, class OnCut, class MakeTimeout>
bool call_with_deadline(watchdog::clock::time_point deadline, watchdog::action fn, void* context, Call&& call,
                        OnCut&& on_cut, MakeTimeout&& make_timeout) {
  watchdog_scope guard(deadline, fn, context);
  if (!guard.bounded()) return false;
  try {
    call();
  } catch (...) {
    if (guard.disarm()) {
      on_cut();
      throw make_timeout();
    }
    throw;
  }
  if (guard.disarm()) on_cut();
  return true;
}

}  // namespace kysera::infra::detail
