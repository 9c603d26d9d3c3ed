#pragma once
/// \file
/// `graceful_shutdown`: run the application's `on_shutdown`, then close the database, all within
/// a deadline; `shutdown_error` reports failure and timeout; `shutdown_database` just closes.

#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

#include "../database.hpp"
#include "../detail/time.hpp"
#include "../error.hpp"
#include "../logger.hpp"

namespace kysera::infra::shutdown {

/// Options of `graceful_shutdown`.
struct shutdown_options {
  /// Bound on the whole shutdown (`on_shutdown` plus closing the database). Must be positive;
  /// a value too large for the clock (milliseconds::max()) means no limit.
  std::chrono::milliseconds timeout{30000};
  /// The application's own cleanup (stop accepting work, stop monitors, flush). Runs on a
  /// worker thread that `graceful_shutdown` starts; when it overruns `timeout` it keeps running
  /// there, detached, so everything it captures must stay valid until it returns.
  std::function<void()> on_shutdown{};
  /// Where each step is logged (non-owning; null means `default_logger()`).
  infra::logger* logger = nullptr;
  /// >= 0. How long the service keeps serving after `on_drain`, before `on_shutdown` runs, so
  /// load balancers see it not ready and stop sending (Kubernetes: a few probe periods). Not
  /// part of `timeout`, which starts when the drain ends. 0 (default): no wait.
  std::chrono::milliseconds drain{0};
  /// Called first, at once, on the thread running the shutdown: turn readiness off here
  /// (`health::probes::begin_drain`). What it throws is logged and the shutdown goes on.
  std::function<void()> on_drain{};
};

/// The step a shutdown was in when it failed or ran out of time.
enum class shutdown_stage { on_shutdown, close };

constexpr std::string_view to_string(shutdown_stage s) noexcept {
  // clang-format off
  switch (s) {
    case shutdown_stage::on_shutdown: return "on_shutdown";
    case shutdown_stage::close: return "close";
  }
  // clang-format on
  return "unknown";
}

/// A failed or timed-out shutdown. Immutable, so safe to share between threads.
///
/// `code()` is `errc::timeout` when the deadline passed and `errc::shutting_down` when a step
/// threw; `stage()` names the step (the first one that went wrong); `cause()` holds the
/// exception `on_shutdown` or `close()` threw, if any (rethrow it with `std::rethrow_exception`).
///
///     try { kysera::infra::shutdown::graceful_shutdown(db, options); }
///     catch (const kysera::infra::shutdown::shutdown_error& e) {
///       if (e.timed_out()) { ... }  // e.what(): "graceful shutdown timed out after 30000 ms: ..."
///     }
class shutdown_error : public std::system_error {
 public:
  shutdown_error(errc code, const std::string& message, shutdown_stage stage,
                 std::exception_ptr cause = nullptr)
      : std::system_error(make_error_code(code), message),
        stage_(stage),
        cause_(std::move(cause)) {}

  shutdown_stage stage() const noexcept { return stage_; }
  const std::exception_ptr& cause() const noexcept { return cause_; }
  bool timed_out() const noexcept { return code() == errc::timeout; }

 private:
  shutdown_stage stage_;
  std::exception_ptr cause_;
};

namespace detail {

inline void validate_drain(std::chrono::milliseconds drain, const char* field) {
  if (drain < std::chrono::milliseconds::zero()) {
    throw std::invalid_argument(std::string(field) + " must not be negative (got " +
                                std::to_string(drain.count()) + " ms)");
  }
}

/// The drain step: `on_drain` (errors logged), then the wait.
inline void run_drain(const std::function<void()>& on_drain, std::chrono::milliseconds drain, logger& log) {
  if (on_drain) {
    try {
      on_drain();
    } catch (const std::exception& e) {
      log.warn(std::string("on_drain threw: ") + e.what() + "; shutting down anyway");
    } catch (...) {
      log.warn("on_drain threw a non-standard exception; shutting down anyway");
    }
  }
  if (drain > std::chrono::milliseconds::zero()) {
    log.info("Draining for " + std::to_string(drain.count()) + " ms");
    std::this_thread::sleep_for(drain);
  }
}

inline void validate_timeout(std::chrono::milliseconds timeout, const char* field) {
  if (timeout <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument(std::string(field) + " must be positive (got " +
                                std::to_string(timeout.count()) + " ms)");
  }
}

/// The message of an exception held in `e`, for logs and `shutdown_error` texts.
inline std::string describe(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    return x.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

/// Thread-safe: shared by the caller and the thread it starts. Runs `on_shutdown` on its own
/// thread. Heap-owned and shared with that thread, so the caller
/// may stop waiting (deadline) and return while the callable keeps running.
class on_shutdown_task {
 public:
  /// Starts `fn` on a new detached thread.
  static std::shared_ptr<on_shutdown_task> start(std::function<void()> fn) {
    auto task = std::make_shared<on_shutdown_task>();
    task->fn_ = std::move(fn);
    std::thread([task] { task->run(); }).detach();
    return task;
  }

  /// Whether it finished by `deadline` (which may be `time_point::max()`).
  bool wait_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return infra::detail::wait_until_capped(cv_, lock, deadline, [&] { return done_; });
  }

  /// Takes what it threw (null if it returned). Only meaningful after a successful wait. Moving
  /// it out leaves the worker thread no reference to the exception, so the exception is freed
  /// by the thread that last used it.
  std::exception_ptr take_error() {
    std::lock_guard lock(mutex_);
    return std::exchange(error_, nullptr);
  }

 private:
  void run() noexcept {
    std::exception_ptr error;
    try {
      fn_();
    } catch (...) {
      error = std::current_exception();
    }
    fn_ = nullptr;  // release what it captured as soon as it is done
    {
      std::lock_guard lock(mutex_);
      error_ = std::move(error);
      done_ = true;
    }
    cv_.notify_all();
  }

  std::function<void()> fn_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::exception_ptr error_;
};

inline std::string to_ms_text(std::chrono::steady_clock::duration d) {
  return std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()) + " ms";
}

}  // namespace detail

/// Closes `db` (just `db.close()`; kept for parity with the TypeScript package).
///
///     kysera::infra::shutdown::shutdown_database(pool);
template <database Db>
void shutdown_database(Db& db) {
  db.close();
}

/// Calls `options.on_drain` and waits `options.drain` (both optional), then runs
/// `options.on_shutdown` (on a worker thread), then closes `db` on the calling thread, and
/// returns when both are done, all within `options.timeout`. Throws `shutdown_error`:
///  - `errc::shutting_down` when `on_shutdown` or `close` threw (`db` is closed even when
///    `on_shutdown` threw; the message says which step failed and why);
///  - `errc::timeout` when the deadline passed. If `on_shutdown` is still running then, this call
///    returns at the deadline without touching `db` again and `on_shutdown` runs on, detached.
///    Where `db` models `database_with_timed_close` (our pools), closing waits for leased
///    connections at most for the time left (`db.close_for(remaining)`); otherwise `db.close()`
///    cannot be interrupted and a close that ends after the deadline is reported as a timeout
///    when it returns.
/// Each step is logged: "Running on_shutdown", "Closing database", then "Shutdown complete",
/// "Shutdown failed: ..." or "Shutdown timed out after N ms: ...". Invalid options
/// (a timeout that is not positive, a negative drain) throw `std::invalid_argument` before
/// anything runs. `timeout` starts when the drain ends.
///
///     kysera::infra::shutdown::graceful_shutdown(pool, {.timeout = 10s,
///                                                       .on_shutdown = [&] { monitor.stop(); }});
template <database Db>
void graceful_shutdown(Db& db, shutdown_options options = {}) {
  using clock = std::chrono::steady_clock;
  detail::validate_timeout(options.timeout, "shutdown_options.timeout");
  detail::validate_drain(options.drain, "shutdown_options.drain");
  logger& log = infra::detail::resolve(options.logger);
  detail::run_drain(options.on_drain, options.drain, log);
  const std::string timeout_text = std::to_string(options.timeout.count()) + " ms";
  const auto start = clock::now();
  // Saturating: a timeout too large for the clock means no deadline, not one in the past.
  const auto deadline = infra::detail::saturating_add(start, options.timeout);

  auto timed_out = [&](shutdown_stage stage, const std::string& why, std::exception_ptr cause) {
    log.error("Shutdown timed out after " + timeout_text + ": " + why);
    return shutdown_error(errc::timeout,
                          "graceful shutdown timed out after " + timeout_text + ": " + why, stage,
                          std::move(cause));
  };

  std::exception_ptr on_shutdown_error;
  if (options.on_shutdown) {
    log.info("Running on_shutdown");
    std::shared_ptr<detail::on_shutdown_task> task;
    try {
      task = detail::on_shutdown_task::start(std::move(options.on_shutdown));
    } catch (...) {
      on_shutdown_error = std::current_exception();  // no thread could be started
    }
    if (task) {
      if (!task->wait_until(deadline)) {
        throw timed_out(shutdown_stage::on_shutdown, "on_shutdown still running", nullptr);
      }
      on_shutdown_error = task->take_error();
    }
    if (on_shutdown_error) {
      log.warn("on_shutdown failed: " + detail::describe(on_shutdown_error) +
               "; closing the database anyway");
    }
    if (clock::now() >= deadline) {
      throw timed_out(shutdown_stage::on_shutdown, "no time left to close the database",
                      on_shutdown_error);
    }
  }

  log.info("Closing database");
  std::exception_ptr close_error;
  bool closed_in_time = true;
  try {
    if constexpr (database_with_timed_close<Db>) {
      auto remaining = infra::detail::saturating_ceil<std::chrono::milliseconds>(
          infra::detail::saturating_sub(deadline, clock::now()));
      if (remaining <= std::chrono::milliseconds::zero()) remaining = std::chrono::milliseconds(1);
      if (!static_cast<bool>(db.close_for(remaining))) {
        log.warn("Closing database: connections still in use after " +
                 std::to_string(remaining.count()) + " ms; they close when their leases end");
        closed_in_time = false;
      }
    } else {
      db.close();
    }
  } catch (...) {
    close_error = std::current_exception();
  }
  const auto finished = clock::now();
  const auto elapsed = finished - start;

  std::string failure;
  if (on_shutdown_error) failure = "on_shutdown threw: " + detail::describe(on_shutdown_error);
  if (close_error) {
    if (!failure.empty()) failure += "; ";
    failure += "closing the database threw: " + detail::describe(close_error);
  }

  if (!closed_in_time || (!close_error && finished > deadline)) {
    std::string why = closed_in_time ? "closing the database ended after the deadline (" +
                                           detail::to_ms_text(elapsed) + " in all)"
                                     : "connections still in use when closing the database";
    if (!failure.empty()) why += "; " + failure;
    throw timed_out(shutdown_stage::close, why, on_shutdown_error);
  }
  if (!failure.empty()) {
    if (!close_error) failure += " (the database was closed)";
    log.error("Shutdown failed: " + failure);
    const auto stage = on_shutdown_error ? shutdown_stage::on_shutdown : shutdown_stage::close;
    throw shutdown_error(errc::shutting_down, "graceful shutdown failed: " + failure, stage,
                         on_shutdown_error ? on_shutdown_error : close_error);
  }
  log.info("Shutdown complete");
}

}  // namespace kysera::infra::shutdown
