#pragma once
/// \file
/// `shutdown_controller` and `create_shutdown_controller`: one shutdown that signals and
/// `execute()` share (POSIX: Linux, macOS).

#include <memory>
#include <stdexcept>
#include <utility>

#include "../database.hpp"
#include "signals.hpp"

namespace kysera::infra::shutdown {

class shutdown_controller;

template <database Db>
shutdown_controller create_shutdown_controller(Db& db, register_shutdown_options options = {});

/// Thread-safe: `execute()` and `is_shutting_down()` may be called from any thread at once;
/// `register_signals()`, moves and destruction must not race with other calls on the same object.
///
/// Owns one shutdown of one database: `graceful_shutdown(db, options)`, run at most once, whether
/// `execute()` or a registered signal starts it. `is_shutting_down()` turns true the moment it
/// starts (a readiness probe should read it) and stays true. Movable; a moved-from controller
/// only answers `is_shutting_down()` (false); its other members throw `std::logic_error`.
///
///     auto controller = kysera::infra::shutdown::create_shutdown_controller(pool, options);
///     controller.register_signals();        // SIGTERM/SIGINT: the same shutdown, then exit 0/1
///     ready_probe = [&] { return !controller.is_shutting_down(); };
///     ...
///     controller.execute();                 // normal end: the same shutdown, no exit
class shutdown_controller {
 public:
  shutdown_controller(shutdown_controller&& other) noexcept = default;
  shutdown_controller& operator=(shutdown_controller&& other) noexcept {
    if (this != &other) {
      release();
      state_ = std::move(other.state_);
    }
    return *this;
  }
  shutdown_controller(const shutdown_controller&) = delete;
  shutdown_controller& operator=(const shutdown_controller&) = delete;

  /// Removes this controller's signal handlers (the previous dispositions come back) and frees
  /// the process's registration; when signals are registered and a shutdown is running, waits
  /// for it first.
  ~shutdown_controller() { release(); }

  /// Installs handlers for the options' signals that run this controller's shutdown and then
  /// end the process (status 0 on success, 1 on failure or timeout), exactly as
  /// `register_shutdown_handlers` does. A signal that arrives while a shutdown runs (started by
  /// a signal or by `execute()`) starts nothing. When `execute()` finishes, the previous
  /// dispositions are restored, so later signals act as if none had been registered.
  ///
  /// One process has one set of shutdown handlers: calling this while any registration is
  /// active (a second call on this controller, another controller's, or
  /// `register_shutdown_handlers`) throws `std::logic_error`. Destroying the controller frees
  /// the slot.
  void register_signals() { checked_state().register_signals(); }

  /// Runs the shutdown on the calling thread (`on_shutdown` on a worker) and returns when it
  /// finished, throwing `shutdown_error` when it failed or timed out. It does not end the
  /// process. Idempotent: when a shutdown already ran or is running (from a signal or another
  /// `execute()`), it starts nothing, waits for that one to finish and reports its outcome
  /// (rethrows its error, if any).
  void execute() {
    auto& state = checked_state();
    switch (state.try_begin()) {
      case detail::shutdown_state::phase::idle:
        state.log().info("Shutdown requested");
        state.run_and_finish();
        state.restore_signals();
        break;
      case detail::shutdown_state::phase::running:
        state.log().debug("Shutdown already in progress; waiting for it to finish");
        state.wait_done();
        break;
      case detail::shutdown_state::phase::done:
        break;
    }
    if (auto error = state.error()) std::rethrow_exception(error);
  }

  /// True from the moment a shutdown starts (signal or `execute()`), and ever after.
  bool is_shutting_down() const noexcept { return state_ && state_->is_shutting_down(); }

 private:
  explicit shutdown_controller(std::shared_ptr<detail::shutdown_state> state) noexcept
      : state_(std::move(state)) {}

  template <database Db>
  friend shutdown_controller create_shutdown_controller(Db& db, register_shutdown_options options);

  detail::shutdown_state& checked_state() const {
    if (!state_) throw std::logic_error("kysera shutdown: use of a moved-from shutdown_controller");
    return *state_;
  }

  void release() noexcept {
    if (state_) state_->unregister_signals();
    state_.reset();
  }

  std::shared_ptr<detail::shutdown_state> state_;
};

/// A controller for `db`'s shutdown with `options` (validated here: `std::invalid_argument`
/// naming the field). Registers no signal handlers until `register_signals()`. `db` and the
/// logger must outlive the controller.
///
///     auto controller = kysera::infra::shutdown::create_shutdown_controller(
///         pool, {.timeout = 10s, .on_shutdown = [&] { monitor.stop(); }});
template <database Db>
shutdown_controller create_shutdown_controller(Db& db, register_shutdown_options options) {
  return shutdown_controller(detail::make_shutdown_state(db, std::move(options)));
}

}  // namespace kysera::infra::shutdown
