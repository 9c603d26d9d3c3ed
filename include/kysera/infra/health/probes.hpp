#pragma once
/// \file
/// `probes`: Kubernetes' liveness, readiness and startup answers, computed from a
/// `health_monitor`'s results with failure/success hysteresis, and the readiness switch a
/// draining shutdown flips.

#include <atomic>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "../database.hpp"
#include "monitor.hpp"
#include "result.hpp"

namespace kysera::infra::health {

/// Options of `probes`. Invalid values throw `std::invalid_argument` naming the field.
struct probe_options {
  /// >= 1. Consecutive failed checks that turn a ready service not ready (Kubernetes' default).
  int failure_threshold = 3;
  /// >= 1. Consecutive successful checks that turn a not-ready service ready again.
  int success_threshold = 1;
  /// Optional liveness test of the process itself (a deadlock detector, a heartbeat age). It
  /// must never touch the database: a database outage must not get the process restarted.
  /// Called on the thread that asks `liveness()`; empty means "alive while it answers".
  std::function<bool()> liveness{};
};

/// One probe's answer: `ok` is what the HTTP status says (200 or 503); `reason` a short text.
struct probe_result {
  bool ok = false;
  std::string reason;
};

/// Thread-safe: every member may be called from any thread at once.
///
/// What the three answers mean (a "successful" check is one whose status is healthy or degraded):
/// - liveness: true unless `probe_options::liveness` says otherwise; never depends on checks.
/// - startup: false until the first successful check, true ever after.
/// - readiness: false at first; true after `success_threshold` consecutive successful checks;
///   false again after `failure_threshold` consecutive failed ones; false for good once
///   `begin_drain()` was called (a shutdown is draining: load balancers should stop sending).
///
/// Results reach it through `record()`; built over a monitor, `start()` starts that monitor
/// with a callback that records every periodic result (results of `check_now()` are recorded
/// only when passed to `record()`). The monitor must outlive the `probes`; destroying probes
/// that started it stops it.
///
///     kysera::infra::health::health_monitor monitor(pool, {.interval = 5s});
///     kysera::infra::health::probes probes(monitor);
///     probes.start();
///     if (!probes.readiness().ok) { ... }  // 503 on /readyz
class probes {
 public:
  /// Probes fed by `record()` only.
  explicit probes(probe_options options = {}) : options_(std::move(options)) { validate(options_); }

  /// Probes over `monitor`: `start()` starts it and records each periodic result.
  template <database Db, class Clock>
  explicit probes(health_monitor<Db, Clock>& monitor, probe_options options = {})
      : probes(std::move(options)) {
    start_monitor_ = [&monitor](health_check_callback callback) { monitor.start(std::move(callback)); };
    stop_monitor_ = [&monitor] { monitor.stop(); };
  }

  /// Stops the monitor when `start()` started it, so its callback never outlives these probes.
  ~probes() {
    if (started_monitor_ && stop_monitor_) stop_monitor_();
  }

  probes(const probes&) = delete;
  probes& operator=(const probes&) = delete;

  /// Starts the monitor given to the constructor; each periodic result is recorded, then passed
  /// to `callback` (may be empty; runs on the monitor thread). Throws `std::logic_error` when
  /// these probes have no monitor.
  void start(health_check_callback callback = {}) {
    if (!start_monitor_) throw std::logic_error("kysera::infra::health: probes::start() needs probes built over a monitor");
    start_monitor_([this, callback = std::move(callback)](const health_check_result& r) {
      record(r);
      if (callback) callback(r);
    });
    started_monitor_ = true;
  }

  /// Counts `result` towards readiness and startup and keeps it as the latest result.
  void record(const health_check_result& result) {
    const bool success = result.status != health_status::unhealthy;
    std::lock_guard lock(mutex_);
    last_ = result;
    if (success) {
      started_ = true;
      failures_ = 0;
      if (successes_ < options_.success_threshold) ++successes_;
      if (successes_ >= options_.success_threshold) ready_ = true;
    } else {
      successes_ = 0;
      if (failures_ < options_.failure_threshold) ++failures_;
      if (failures_ >= options_.failure_threshold) ready_ = false;
    }
  }

  /// Readiness turns false now and stays false (a draining shutdown calls this). Idempotent.
  void begin_drain() {
    std::lock_guard lock(mutex_);
    draining_ = true;
  }

  bool draining() const {
    std::lock_guard lock(mutex_);
    return draining_;
  }

  probe_result liveness() const {
    if (options_.liveness && !options_.liveness()) return {false, "not alive"};
    return {true, "alive"};
  }

  probe_result readiness() const {
    std::lock_guard lock(mutex_);
    if (draining_) return {false, "not ready: shutting down"};
    if (ready_) return {true, "ready"};
    if (!started_) return {false, "not ready: no successful health check yet"};
    std::string reason = "not ready: " + std::to_string(failures_) + " consecutive failed health check" +
                         (failures_ == 1 ? "" : "s");
    if (last_ && !last_->errors.empty()) reason += " (" + last_->errors.front() + ")";
    return {false, std::move(reason)};
  }

  probe_result startup() const {
    std::lock_guard lock(mutex_);
    if (started_) return {true, "started"};
    return {false, "not started: no successful health check yet"};
  }

  /// The latest recorded result, if any.
  std::optional<health_check_result> last_result() const {
    std::lock_guard lock(mutex_);
    return last_;
  }

 private:
  static void validate(const probe_options& o) {
    if (o.failure_threshold < 1) {
      throw std::invalid_argument("kysera::infra::health: probe_options.failure_threshold must be at least 1");
    }
    if (o.success_threshold < 1) {
      throw std::invalid_argument("kysera::infra::health: probe_options.success_threshold must be at least 1");
    }
  }

  const probe_options options_;
  std::function<void(health_check_callback)> start_monitor_;
  std::function<void()> stop_monitor_;
  std::atomic<bool> started_monitor_{false};
  mutable std::mutex mutex_;
  bool ready_ = false;
  bool started_ = false;
  bool draining_ = false;
  int successes_ = 0;  // consecutive, capped at success_threshold
  int failures_ = 0;   // consecutive, capped at failure_threshold
  std::optional<health_check_result> last_;
};

}  // namespace kysera::infra::health
