#pragma once
/// \file
/// `health_monitor`: periodic health checks on a thread of their own.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "../database.hpp"
#include "../detail/time.hpp"
#include "../logger.hpp"
#include "../pool/metrics.hpp"
#include "check.hpp"

namespace kysera::infra::health {

/// Options of `health_monitor`. Invalid values throw `std::invalid_argument` naming the field.
struct health_monitor_options {
  std::optional<pool::metrics_pool> pool{};    ///< pool metrics to add to every result
  std::chrono::milliseconds interval{30000};  ///< > 0; time between the starts of two checks;
                                              ///< too large for the clock: no check after the first
  std::chrono::milliseconds timeout{5000};    ///< > 0; bound on each check
  std::chrono::milliseconds degraded_threshold{100};
  std::chrono::milliseconds unhealthy_threshold{500};
  bool verbose = false;             ///< ask for the server version on every check
  infra::logger* logger = nullptr;  ///< null: `default_logger()`
  /// >= 0. The monitor logs a status change once (warn when it gets worse, info when it is
  /// healthy again); while the status stays degraded or unhealthy it logs a reminder at most once
  /// per this interval (on the monitor's clock). 0 logs every check that is not healthy;
  /// milliseconds::max() never reminds.
  std::chrono::milliseconds unhealthy_log_interval{300000};
};

/// Called with each periodic result, on the monitor's own thread.
using health_check_callback = std::function<void(const health_check_result&)>;

/// Thread-safe: every member may be called from any thread. Runs `perform_health_check` on a
/// thread of its own: the first check at `start()`, then one at each `interval` tick measured
/// from the start (a tick that passes while a check still runs is skipped, so checks never
/// overlap and never bunch up). `check_now()` runs an extra check on the calling thread,
/// serialised with the periodic ones. `db` must outlive the monitor.
///
/// - A second `start()` while running does nothing and keeps the first callback.
/// - `stop()` returns at once: it wakes the monitor from its wait and, when a check is in
///   flight, abandons that check (cancelling the probe where `db` can). No callback runs after
///   `stop()` returns. Called from inside the callback, `stop()` only requests the stop; the
///   thread ends when the callback returns (calling `start()` from the callback then throws
///   `std::logic_error`). `start()` after `stop()` begins a new run.
/// - A callback that throws is logged once per throw (error level) and the monitor goes on; it
///   is never called a second time for the same result.
/// - Status changes of the periodic checks are logged once each (warn when worse, info when
///   healthy again), with a reminder at most once per `unhealthy_log_interval` while not healthy.
/// - The destructor stops the monitor. Do not destroy it from its own callback.
/// - `Clock` is for tests: a clock other than `steady_clock`/`system_clock` is polled every
///   millisecond of real time while the monitor waits for the next tick (`detail::wait_step`).
///
///     kysera::infra::health::health_monitor monitor(db, {.interval = 10s});
///     monitor.start([](const auto& r) { if (r.status != health_status::healthy) page_someone(r); });
///     ...
///     monitor.stop();
template <database Db, class Clock = std::chrono::steady_clock>
class health_monitor {
 public:
  using clock = Clock;

  explicit health_monitor(Db& db, health_monitor_options options = {})
      : db_(db), options_(std::move(options)) {
    if (options_.interval <= std::chrono::milliseconds::zero()) {
      throw std::invalid_argument("kysera::infra::health: interval must be greater than zero");
    }
    if (options_.unhealthy_log_interval < std::chrono::milliseconds::zero()) {
      throw std::invalid_argument("kysera::infra::health: unhealthy_log_interval must not be negative");
    }
    check_options_.pool = options_.pool;
    check_options_.verbose = options_.verbose;
    check_options_.logger = options_.logger;
    check_options_.timeout = options_.timeout;
    check_options_.degraded_threshold = options_.degraded_threshold;
    check_options_.unhealthy_threshold = options_.unhealthy_threshold;
    detail::validate(check_options_);
  }

  ~health_monitor() {
    stop();
    std::thread leftover;
    {
      std::lock_guard lock(mutex_);
      leftover = std::move(thread_);
    }
    if (leftover.joinable()) leftover.join();
  }

  health_monitor(const health_monitor&) = delete;
  health_monitor& operator=(const health_monitor&) = delete;

  /// Starts the periodic checks; `callback` (may be empty) runs on the monitor thread after each.
  /// Does nothing when already running (the first callback stays).
  void start(health_check_callback callback = {}) {
    std::unique_lock lock(mutex_);
    if (running_) return;
    if (active_ && std::this_thread::get_id() == monitor_id_) {
      throw std::logic_error("kysera::infra::health: health_monitor::start() called from its own callback");
    }
    if (thread_.joinable()) {  // a run stopped from its callback: let it finish
      std::thread previous = std::move(thread_);
      lock.unlock();
      previous.join();
      lock.lock();
    }
    finished_cv_.wait(lock, [&] { return !active_ || running_; });
    if (running_) return;
    running_ = true;
    active_ = true;
    stop_requested_ = false;
    next_.reset();
    callback_ = std::move(callback);
    logged_status_.reset();
    abort_.reset();
    try {
      thread_ = std::thread([this] { run(); });
    } catch (...) {
      running_ = false;
      active_ = false;
      throw;
    }
    monitor_id_ = thread_.get_id();
    lock.unlock();
    log().debug("Started health monitor with " + std::to_string(options_.interval.count()) + " ms interval");
  }

  /// Stops the periodic checks; see the class comment. Safe to call at any time, repeatedly.
  void stop() {
    std::unique_lock lock(mutex_);
    if (!active_) return;
    const bool was_running = running_;
    running_ = false;
    stop_requested_ = true;
    next_.reset();
    abort_.abort();
    cv_.notify_all();
    std::thread monitor_thread;
    if (std::this_thread::get_id() != monitor_id_) {
      if (thread_.joinable()) {
        monitor_thread = std::move(thread_);
      } else {
        // Another thread is joining the monitor thread: wait until it has ended.
        finished_cv_.wait(lock, [&] { return !active_; });
      }
    }  // else: called from the callback; the thread ends when the callback returns
    lock.unlock();
    if (was_running) log().debug("Stopped health monitor");
    if (monitor_thread.joinable()) monitor_thread.join();
  }

  /// Runs a check now, on the calling thread, after any check in flight; updates
  /// `get_last_check()` but does not call the callback. Works whether or not the monitor runs.
  ///
  ///     auto r = monitor.check_now();
  health_check_result check_now() {
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return !check_in_progress_; });
      check_in_progress_ = true;
    }
    struct release_slot {
      health_monitor* self;
      ~release_slot() {
        {
          std::lock_guard lock(self->mutex_);
          self->check_in_progress_ = false;
        }
        self->cv_.notify_all();
      }
    } release{this};
    health_check_result result = detail::run_check<Clock>(db_, check_options_, log(), nullptr);
    std::lock_guard lock(mutex_);
    last_ = result;
    return result;
  }

  /// The latest result (periodic or `check_now()`), if any.
  std::optional<health_check_result> get_last_check() const {
    std::lock_guard lock(mutex_);
    return last_;
  }

  /// True between `start()` and `stop()`.
  bool is_running() const {
    std::lock_guard lock(mutex_);
    return running_;
  }

  /// When the next periodic check is due; empty before the first check and when not running.
  std::optional<typename Clock::time_point> next_check_time() const {
    std::lock_guard lock(mutex_);
    return next_;
  }

 private:
  logger& log() const noexcept { return infra::detail::resolve(options_.logger); }

  // The monitor thread.
  void run() noexcept {
    std::unique_lock lock(mutex_);
    // Saturating, and at least one tick: milliseconds::max() means "practically never again".
    const typename Clock::duration interval = std::max(
        infra::detail::saturating_duration_cast<typename Clock::duration>(options_.interval),
        typename Clock::duration(1));
    typename Clock::time_point due = Clock::now();
    while (!stop_requested_) {
      while (!stop_requested_ && Clock::now() < due) wait_until(lock, due);
      cv_.wait(lock, [&] { return stop_requested_ || !check_in_progress_; });
      if (stop_requested_) break;
      check_in_progress_ = true;
      lock.unlock();
      health_check_result result = detail::run_check<Clock>(db_, check_options_, log(), &abort_);
      lock.lock();
      check_in_progress_ = false;
      cv_.notify_all();
      if (stop_requested_) break;  // an abandoned check is nobody's news

      // The next tick after now; ticks that passed during the check are skipped. Saturating:
      // a tick beyond the clock's range is time_point::max(), never one in the past.
      const auto now = Clock::now();
      due = infra::detail::saturating_add(due, interval);
      if (due <= now) {
        const auto missed = infra::detail::saturating_sub(now, due) / interval + 1;
        due = missed > Clock::duration::max() / interval
                  ? Clock::time_point::max()
                  : infra::detail::saturating_add(due, interval * missed);
      }
      next_ = due;
      last_ = result;
      lock.unlock();
      report(result);
      lock.lock();
    }
    active_ = false;
    finished_cv_.notify_all();
  }

  void wait_until(std::unique_lock<std::mutex>& lock, typename Clock::time_point due) {
    infra::detail::wait_step<Clock>(cv_, lock, due);  // `due` may be time_point::max()
  }

  /// Logs status changes, and reminders while not healthy (see `unhealthy_log_interval`). On the
  /// monitor thread only, so the state below needs no lock.
  void log_status(const health_check_result& result) {
    const auto now = Clock::now();
    const health_status status = result.status;
    auto describe = [&] {
      std::string text = "Health check status: " + std::string(to_string(status));
      if (!result.checks.empty()) text += " (" + result.checks.front().message + ")";
      return text;
    };
    auto elapsed_ms = [&](typename Clock::time_point since) {
      return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(now - since).count());
    };
    if (!logged_status_ || *logged_status_ != status) {
      if (status == health_status::healthy) {
        if (logged_status_) {
          log().info("Health check status: healthy again (was " + std::string(to_string(*logged_status_)) +
                     " for " + elapsed_ms(status_since_) + " ms)");
        }
      } else {
        std::string text = describe();
        if (logged_status_) text += "; was " + std::string(to_string(*logged_status_));
        log().warn(text);
      }
      logged_status_ = status;
      status_since_ = now;
      last_logged_ = now;
      return;
    }
    if (status == health_status::healthy) return;
    const auto interval = infra::detail::saturating_duration_cast<typename Clock::duration>(options_.unhealthy_log_interval);
    if (infra::detail::saturating_sub(now, last_logged_) < interval) return;
    log().warn(describe() + "; still " + std::string(to_string(status)) + " after " + elapsed_ms(status_since_) + " ms");
    last_logged_ = now;
  }

  void report(const health_check_result& result) noexcept {
    try {
      log_status(result);
    } catch (...) {
    }
    if (!callback_) return;
    try {
      callback_(result);
    } catch (const std::exception& e) {
      try {
        log().error(std::string("Health monitor callback threw: ") + e.what() + "; the monitor keeps running");
      } catch (...) {
      }
    } catch (...) {
      log().error("Health monitor callback threw a non-standard exception; the monitor keeps running");
    }
  }

  Db& db_;
  health_monitor_options options_;
  health_check_options check_options_;
  detail::abort_source abort_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;           // wakes the monitor (stop) and check_now waiters
  std::condition_variable finished_cv_;  // the monitor thread has ended
  bool running_ = false;                 // between start() and stop()
  bool active_ = false;                  // the monitor thread exists and has not ended
  bool stop_requested_ = false;
  bool check_in_progress_ = false;
  std::thread thread_;
  std::thread::id monitor_id_;
  health_check_callback callback_;  // set by start() while no monitor thread exists
  std::optional<health_check_result> last_;
  std::optional<typename Clock::time_point> next_;
  // Status logging; touched by the monitor thread only (reset by start() before it exists).
  std::optional<health_status> logged_status_;
  typename Clock::time_point status_since_{};
  typename Clock::time_point last_logged_{};
};

}  // namespace kysera::infra::health
