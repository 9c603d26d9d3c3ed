#pragma once
/// \file
/// The two small pieces of state the adapter skeleton (`basic_connection`) shares with threads
/// other than the caller's: `statement_marker` (is a statement of ours running; a cancel request
/// for it) and `helper_slot` (at most one detached helper thread per connection).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

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

}  // namespace kysera::infra::adapters::detail
