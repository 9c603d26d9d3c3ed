#pragma once
/// \file
/// The small pieces of state the adapter skeleton (`basic_connection`) shares with threads other
/// than the caller's: `statement_marker` (is a statement of ours running; a cancel request for
/// it), `helper_slot` (at most one detached helper thread per connection) and `pending_open` (a
/// session being opened on a helper thread).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "../../error.hpp"

namespace kysera::infra::adapters::detail {

/// Thread-safe. Says whether one of the connection's statements runs now, and carries a cancel
/// request to it: `interrupt()` acts only inside a `scope`, so a cancel while idle is a no-op
/// and cannot hit the next statement.
class statement_marker {
 public:
  /// Marks one statement (or lock wait) for its lifetime; clears an old cancel request.
  class scope {
   public:
    explicit scope(statement_marker& m) : m_(m) { m_.set(true); }
    ~scope() { m_.set(false); }
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;

   private:
    statement_marker& m_;
  };

  /// When a statement runs: records the request, then calls `hook()` (which returns false when
  /// it could not interrupt; the request is then dropped). The hook runs under the marker's
  /// lock, so the statement cannot end (nor its session change) while it runs; it must not block.
  template <class Hook>
  bool interrupt(Hook&& hook) noexcept {
    std::lock_guard lock(mutex_);
    if (!running_) return false;
    requested_.store(true, std::memory_order_relaxed);
    bool done = false;
    try {
      done = hook();
    } catch (...) {
    }
    if (!done) requested_.store(false, std::memory_order_relaxed);
    cv_.notify_all();
    return done;
  }

  /// True between an `interrupt()` and the end of the statement it hit (any thread).
  bool cancel_requested() const noexcept { return requested_.load(std::memory_order_relaxed); }

  /// Waits up to `step` for a cancel request (for a driver's own lock-wait loop); true if one came.
  bool wait_for_cancel(std::chrono::steady_clock::duration step) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, step, [this] { return cancel_requested(); });
  }

 private:
  void set(bool running) noexcept {
    std::lock_guard lock(mutex_);
    running_ = running;
    requested_.store(false, std::memory_order_relaxed);
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  bool running_ = false;  // under mutex_
  std::atomic<bool> requested_{false};
};

/// Thread-safe. Lets at most one detached helper thread (a cancel request that may block on a
/// paused server) run per connection; shared with the helper so it never touches the connection.
struct helper_slot {
  std::atomic<bool> busy{false};
  /// True when the caller may start a helper; it must call `release()` when the helper ends.
  bool claim() noexcept { return !busy.exchange(true); }
  void release() noexcept { busy.store(false); }
};

/// Thread-safe (its mutex). A session being opened on a helper thread, shared between that
/// thread (`run`) and the caller, who waits for `done`.
template <class Session>
struct pending_open {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;             // guarded by mutex
  std::optional<Session> session;  // guarded by mutex
  // The connect's error as a copy, not an exception_ptr: an exception_ptr's count lives in the
  // (uninstrumented) runtime, so ThreadSanitizer cannot see the two threads ordered by it.
  std::optional<database_error> error;  // guarded by mutex

  /// On the helper thread: `open()`, then hands over the session or the error and wakes the
  /// caller. Neither is left only when copying the error ran out of memory or `open` threw a
  /// non-std exception; the caller reports that.
  template <class Open>
  void run(Open& open, std::string_view backend) noexcept {
    std::optional<Session> opened;
    std::optional<database_error> failure;
    try {
      try {
        opened.emplace(open());
      } catch (const database_error& e) {
        failure.emplace(e);
      } catch (const std::exception& e) {
        failure.emplace(errc::backend_error, e.what(), std::string(backend));
      }
    } catch (...) {
    }
    {
      std::lock_guard lock(mutex);
      session = std::move(opened);
      error = std::move(failure);
      done = true;
    }
    cv.notify_all();
  }
};

}  // namespace kysera::infra::adapters::detail
