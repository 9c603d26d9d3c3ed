#pragma once
/// \file
/// Signal-driven shutdown (POSIX: Linux, macOS): `register_shutdown_options`,
/// `register_shutdown_handlers`, and the shared state the controller builds on.
///
/// How it works: the signal handler only writes the signal's number as one byte to a self-pipe
/// (async-signal-safe). A dedicated thread, started at registration with every signal blocked,
/// reads the pipe and starts the shutdown on threads of its own, so no library code runs inside
/// the handler. Only the listed signals are touched; their previous dispositions are kept and
/// restored when the registration ends.

#if !defined(__unix__) && !defined(__APPLE__)
#error "kysera/infra/shutdown/signals.hpp needs POSIX signals (Linux, macOS)"
#endif

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "../database.hpp"
#include "../detail/process_wide.hpp"
#include "../detail/time.hpp"
#include "../logger.hpp"
#include "detail/signal_thread.hpp"
#include "graceful.hpp"

namespace kysera::infra::shutdown {

/// Options of `register_shutdown_handlers` and `create_shutdown_controller`: those of
/// `shutdown_options` plus the signals to handle. Converts to `shutdown_options`.
struct register_shutdown_options {
  /// Bound on the whole shutdown (`on_shutdown` plus closing the database). Must be positive;
  /// a value too large for the clock (milliseconds::max()) means no limit.
  std::chrono::milliseconds timeout{30000};
  /// The application's own cleanup. Runs on a worker thread of the shutdown (see
  /// `graceful_shutdown`); during a signal-driven shutdown every signal is blocked on it.
  std::function<void()> on_shutdown{};
  /// Where each step is logged (non-owning; null means `default_logger()`); must outlive the
  /// registration or controller.
  infra::logger* logger = nullptr;
  /// The signals that start the shutdown; none other is touched. Duplicates are ignored. Not
  /// allowed: SIGKILL and SIGSTOP (they cannot be caught) and the program-error signals SIGSEGV,
  /// SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS, SIGABRT (a handler that returns cannot help).
  std::vector<int> signals{SIGTERM, SIGINT};
  /// As in `shutdown_options`: the wait after `on_drain`, before `on_shutdown` (>= 0).
  std::chrono::milliseconds drain{0};
  /// As in `shutdown_options`: called first, at once (turn readiness off here).
  std::function<void()> on_drain{};

  operator shutdown_options() const { return shutdown_options{timeout, on_shutdown, logger, drain, on_drain}; }
};

namespace detail {

/// Ends the process after a signal-driven shutdown. `std::_Exit` rather than `std::exit`: other
/// threads of the service may still run, and static destructors and atexit handlers racing them
/// are a classic crash at exit. C stdio buffers are flushed first.
[[noreturn]] inline void exit_process(int status) noexcept {
  std::fflush(nullptr);
  std::_Exit(status);
}

/// How much longer than `timeout` a signal-driven shutdown may take before the process ends
/// anyway (only reached when `close()` of a database without `close_for` does not return).
inline constexpr std::chrono::milliseconds exit_grace{500};

/// Thread-safe. The one state that signals and `execute()` share: which phase the shutdown is
/// in, its outcome, and (while signals are registered) the registration.
class shutdown_state : public std::enable_shared_from_this<shutdown_state> {
 public:
  enum class phase { idle, running, done };

  shutdown_state(std::function<void()> run, logger& log, std::chrono::milliseconds timeout,
                 std::vector<int> signals)
      : run_(std::move(run)), log_(log), timeout_(timeout), signals_(std::move(signals)) {}

  logger& log() const noexcept { return log_; }
  bool is_shutting_down() const noexcept { return started_.load(); }

  /// Moves idle -> running and returns the phase it found.
  phase try_begin() {
    std::lock_guard lock(mutex_);
    const phase found = phase_;
    if (found == phase::idle) {
      phase_ = phase::running;
      started_.store(true);
    }
    return found;
  }

  /// Runs the shutdown (the caller must have won `try_begin`) and records its outcome.
  void run_and_finish() noexcept {
    std::exception_ptr error;
    try {
      run_();
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(mutex_);
      error_ = std::move(error);
      phase_ = phase::done;
    }
    cv_.notify_all();
  }

  void wait_done() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return phase_ == phase::done; });
  }

  bool wait_done_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return infra::detail::wait_until_capped(cv_, lock, deadline, [&] { return phase_ == phase::done; });
  }

  /// What the finished shutdown threw (null on success).
  std::exception_ptr error() const {
    std::lock_guard lock(mutex_);
    return error_;
  }

  /// Installs the handlers; throws `std::logic_error` when the process already has a set.
  void register_signals() {
    auto registration =
        std::make_unique<signal_registration>(signals_, [this](int sig) { on_signal(sig); });
    std::lock_guard lock(registration_mutex_);
    registration_ = std::move(registration);
    std::string names;
    for (int sig : signals_) names += (names.empty() ? "" : ", ") + signal_name(sig);
    log_.debug("Shutdown handlers registered for " + names);
  }

  /// The dispositions from before the registration come back (the registration itself stays,
  /// so the process still counts as registered).
  void restore_signals() noexcept {
    std::lock_guard lock(registration_mutex_);
    if (registration_) registration_->restore();
  }

  /// Ends the registration: restores the handlers, stops the signal thread, frees the process's
  /// slot. A shutdown that is running is waited for first.
  void unregister_signals() noexcept {
    std::unique_ptr<signal_registration> registration;
    {
      std::lock_guard lock(registration_mutex_);
      registration = std::move(registration_);
    }
    if (!registration) return;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return phase_ != phase::running; });
    }
    registration.reset();
  }

 private:
  /// Called on the signal thread for each signal that arrives. Does not block.
  void on_signal(int sig) noexcept {
    const std::string name = signal_name(sig);
    log_.info("Shutdown signal received (" + name + ")");
    switch (try_begin()) {
      case phase::running:
        log_.warn("Shutdown already in progress; ignoring " + name);
        return;
      case phase::done:
        // Only reachable in the instant between an `execute()` finishing and it restoring the
        // handlers: hand the signal to whatever the process had before.
        log_.info("Shutdown already finished; passing " + name + " on to the previous handler");
        restore_signals();
        ::kill(::getpid(), sig);
        return;
      case phase::idle:
        break;
    }
    auto self = shared_from_this();
    try {
      std::thread([self] { self->supervise_and_exit(); }).detach();
    } catch (...) {
      supervise_and_exit();
    }
  }

  /// Runs the shutdown on one more thread and ends the process when it finished, or at the
  /// deadline plus `exit_grace` when closing never returns.
  [[noreturn]] void supervise_and_exit() noexcept {
    // Saturating: a huge timeout means waiting for the shutdown however long it takes.
    const auto deadline = infra::detail::saturating_add(
        infra::detail::saturating_deadline<std::chrono::steady_clock>(timeout_), exit_grace);
    bool started = false;
    try {
      std::thread([self = shared_from_this()] { self->run_and_finish(); }).detach();
      started = true;
    } catch (...) {
      run_and_finish();  // no thread to spare: run it here, without the extra guard
    }
    const bool finished = !started || wait_done_until(deadline);
    int status = 1;
    if (finished) {
      status = error() ? 1 : 0;
    } else {
      log_.error("Shutdown timed out after " + std::to_string(timeout_.count()) +
                 " ms: closing the database did not return; exiting anyway");
    }
    log_.info("Exiting with status " + std::to_string(status));
    exit_process(status);
  }

  std::function<void()> run_;
  logger& log_;
  std::chrono::milliseconds timeout_;
  std::vector<int> signals_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  phase phase_ = phase::idle;
  std::exception_ptr error_;
  std::atomic<bool> started_{false};

  std::mutex registration_mutex_;
  std::unique_ptr<signal_registration> registration_;
};

/// Validates `options` and builds the state whose shutdown is `graceful_shutdown(db, options)`.
template <database Db>
std::shared_ptr<shutdown_state> make_shutdown_state(Db& db, register_shutdown_options options) {
  validate_timeout(options.timeout, "register_shutdown_options.timeout");
  auto signals = validate_signals(options.signals);
  logger& log = infra::detail::resolve(options.logger);
  validate_drain(options.drain, "register_shutdown_options.drain");
  // The exit watchdog of a signal-driven shutdown allows for the drain too (saturating).
  const auto timeout = options.drain > std::chrono::milliseconds::max() - options.timeout
                           ? std::chrono::milliseconds::max()
                           : options.timeout + options.drain;
  shutdown_options graceful{options.timeout, std::move(options.on_shutdown), options.logger, options.drain,
                            std::move(options.on_drain)};
  return std::make_shared<shutdown_state>([&db, graceful] { graceful_shutdown(db, graceful); }, log,
                                          timeout, std::move(signals));
}

}  // namespace detail

/// Installs handlers for `options.signals` (default SIGTERM and SIGINT) that shut the process
/// down: on the first of them, `graceful_shutdown(db, options)` runs off the signal handler, on
/// threads of its own, and the process ends with status 0 on success and 1 on failure or
/// timeout (through `std::_Exit` after flushing stdio: static destructors and atexit handlers do
/// not run, so flush what you must in `on_shutdown`). Further signals while it runs start nothing
/// (they are logged). Steps are logged: "Shutdown signal received (SIGTERM)", "Running
/// on_shutdown", "Closing database", "Shutdown complete" (or failed / timed out), "Exiting with
/// status N".
///
/// The registration lasts for the rest of the process: `db` (and the logger) must stay alive
/// until the process ends; use `create_shutdown_controller` for handlers that can be removed.
/// One process has one set of shutdown handlers: registering again (or while a controller holds
/// them) throws `std::logic_error`. Signals not in the list are left alone, so the application
/// may handle others itself. POSIX only (Linux, macOS).
///
///     kysera::infra::shutdown::register_shutdown_handlers(pool, {.timeout = 10s,
///                                                                .on_shutdown = [&] {
///                                                                server.stop(); }});
template <database Db>
void register_shutdown_handlers(Db& db, register_shutdown_options options = {}) {
  auto state = detail::make_shutdown_state(db, std::move(options));
  state->register_signals();
  auto& slot = detail::signal_slot::get();
  std::lock_guard lock(slot.mutex);
  slot.permanent = std::move(state);
}

}  // namespace kysera::infra::shutdown
