#pragma once
/// \file
/// Health checks: `perform_health_check` and `check_database_health` (result types in
/// result.hpp, the probe threads in probe.hpp).
///
/// How the timeout works, two ways:
///  - Databases that can bound a ping themselves (`database_with_bounded_ping`: our three
///    adapters, pools of them, and `with_debug` over either) are probed on the calling thread: the adapter arms a
///    process-wide watchdog that, at the deadline, shuts the session's socket down (PostgreSQL,
///    MySQL; the next call reconnects); SQLite stops waiting for a lock. No thread hand-off,
///    so a check costs what the ping costs. Used by direct calls that are not verbose.
///  - Everything else (user types, verbose checks, the monitor's own checks, an adapter whose
///    session must be reopened first, a pool with no idle connection) runs the probe on a worker thread taken from
///    a small process-wide cache, and the caller waits for it until the deadline. Threads are
///    reused from check to check; both sides spin briefly before sleeping. When the deadline
///    passes the caller asks the database to cancel (`infra::try_cancel`, which never blocks),
///    reports "Health check timed out after N ms" and returns; the probe finishes in the
///    background and the worker then goes back to the cache. The probe cannot simply run on the
///    calling thread: a paused server (SIGSTOP) ignores cancel requests until it resumes.
///    At most one abandoned probe per database object exists: a check that finds the previous
///    probe of the same object still stuck waits for it (within its own deadline) instead of
///    piling another blocked thread onto the same connection.

#include <chrono>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

#include "../database.hpp"
#include "../detail/time.hpp"
#include "../logger.hpp"
#include "probe.hpp"
#include "result.hpp"

namespace kysera::infra::health {

namespace detail {

inline health_check_result failure_result(std::string message) {
  health_check_result r;
  r.status = health_status::unhealthy;
  r.checks.push_back(health_check{std::string(check_name), health_status::unhealthy, message});
  r.errors.push_back(std::move(message));
  return r;
}

inline void add_pool_metrics(health_check_result& r, const health_check_options& o, logger& log) {
  if (!o.pool) return;
  try {
    r.metrics.pool_metrics = o.pool->get_metrics();
  } catch (const std::exception& e) {
    log.warn(std::string("Health check: reading the pool metrics failed: ") + e.what());
  } catch (...) {
    log.warn("Health check: reading the pool metrics failed");
  }
}

inline std::string timeout_message(std::chrono::milliseconds timeout) {
  return "Health check timed out after " + std::to_string(timeout.count()) + " ms";
}

/// The result of a probe that answered in `latency_ms`.
inline health_check_result answered_result(double latency_ms, const health_check_options& o) {
  const double latency = round2(latency_ms);
  const health_status status = classify_latency(latency, o.degraded_threshold, o.unhealthy_threshold);
  std::string message;
  message.reserve(48);
  message.append("Connected successfully (").append(format_fixed2(latency)).append(" ms)");
  health_check_result r;
  r.status = status;
  r.checks.push_back(health_check{std::string(check_name), status, std::move(message)});
  r.metrics.check_latency = latency;
  return r;
}

/// The probe on the calling thread, for databases that can bound a ping themselves
/// (`database_with_bounded_ping`): no thread hand-off, so the check costs what the ping costs.
/// Empty when the database could not bound this ping; the caller then uses a probe thread.
template <class Clock, class Db>
std::optional<health_check_result> probe_on_caller(Db& db, const health_check_options& o, logger& log,
                                                   std::chrono::steady_clock::time_point now,
                                                   std::chrono::steady_clock::time_point deadline) {
  typename Clock::time_point start;
  if constexpr (std::is_same_v<Clock, std::chrono::steady_clock>) {
    start = now;  // read a moment ago for the deadline: one clock read less
  } else {
    (void)now;
    start = Clock::now();
  }
  std::string error;
  try {
    if (!db.try_ping_until(deadline)) return std::nullopt;
  } catch (const std::exception& e) {
    store_message(error, e.what());
  } catch (...) {
    store_message(error, "unknown error (a non-standard exception was thrown)");
  }
  const auto end = Clock::now();
  health_check_result r;
  if (error.empty()) {
    r = answered_result(std::chrono::duration<double, std::milli>(end - start).count(), o);
  } else if (std::chrono::steady_clock::now() >= deadline) {
    r = failure_result(timeout_message(o.timeout));
    log.warn(timeout_message(o.timeout) + ": " + error);
  } else {
    r = failure_result(std::move(error));
  }
  add_pool_metrics(r, o, log);
  r.timestamp = std::chrono::system_clock::now();
  return r;
}

/// The whole check; `abort` (may be null) lets the monitor stop waiting. Throws only for
/// invalid options.
template <class Clock, class Db>
health_check_result run_check(Db& db, const health_check_options& o, logger& log, abort_source* abort) {
  validate(o);
  try {
    // Saturating: a timeout too large for the clock means "no deadline", not one in the past.
    const auto now = std::chrono::steady_clock::now();
    const auto deadline = infra::detail::saturating_add(now, o.timeout);

    // The monitor's own checks keep the probe thread, so that stop() never waits for a probe
    // in flight; verbose checks too, as the version query has no bounded form. (A probe thread
    // still stuck from an earlier check holds the connection, so the bounded ping times out on
    // its lock: the same answer the stuck-probe wait below gives.)
    if constexpr (database_with_bounded_ping<Db>) {
      if (abort == nullptr && !o.verbose) {
        if (auto r = probe_on_caller<Clock>(db, o, log, now, deadline)) return std::move(*r);
      }
    }

    auto& executor = probe_executor::instance();
    const void* key = static_cast<const void*>(std::addressof(db));

    // A probe abandoned by an earlier check of this object still holds a thread and, usually,
    // the connection's lock: wait for it rather than stacking a second blocked probe on top.
    if (auto previous = executor.stuck_probe(key)) {
      if (!wait_for_probe(previous, deadline, abort)) {
        std::string message = (abort && abort->aborted()) ? std::string("Health check abandoned: the monitor is stopping")
                                      : timeout_message(o.timeout) +
                                            " (an earlier health probe of this database has not returned yet)";
        (void)infra::try_cancel(db);
        auto r = failure_result(std::move(message));
        add_pool_metrics(r, o, log);
        r.timestamp = std::chrono::system_clock::now();
        return r;
      }
    }

    auto job = std::make_shared<probe_state>();
    job->run = &run_probe<Clock, Db>;
    job->db = static_cast<void*>(std::addressof(db));
    job->key = key;
    job->want_version = o.verbose;
    try {
      executor.submit(job);
    } catch (const std::exception& e) {
      auto r = failure_result(std::string("Health check could not start its probe thread: ") + e.what());
      add_pool_metrics(r, o, log);
      r.timestamp = std::chrono::system_clock::now();
      return r;
    }

    bool finished = wait_for_probe(job, deadline, abort);
    if (!finished) finished = !executor.abandon(job);  // it may have finished just now
    health_check_result r;
    if (!finished) {
      const bool cancelled = infra::try_cancel(db);
      if (abort && abort->aborted()) {
        r = failure_result("Health check abandoned: the monitor is stopping");
      } else {
        r = failure_result(timeout_message(o.timeout));
        log.warn(timeout_message(o.timeout) +
                 (cancelled ? "; the probe was cancelled"
                            : "; the database cannot cancel, so the probe finishes in the background"));
      }
    } else if (job->ok) {
      r = answered_result(job->latency_ms, o);
      if (o.verbose) {
        r.metrics.database_version = std::move(job->version);
        if (!job->version_error.empty()) {
          log.debug("Health check: reading the server version failed: " + job->version_error);
        }
      }
    } else {
      r = failure_result(std::move(job->error));
    }
    add_pool_metrics(r, o, log);
    r.timestamp = std::chrono::system_clock::now();
    return r;
  } catch (...) {
    // Only an allocation failure gets here; report it without allocating any further.
    health_check_result r;
    r.status = health_status::unhealthy;
    r.timestamp = std::chrono::system_clock::now();
    return r;
  }
}

}  // namespace detail

/// Checks `db` once with `options`. Does not throw for anything the database does: failures,
/// timeouts and exceptions become an unhealthy result whose message is the error's text
/// (adapters keep passwords out of it). Only invalid options throw `std::invalid_argument`.
/// The latency is measured with `Clock` around the probe alone and rounded to 2 decimals; the
/// check's status is its latency class, and so is the result's. Where `db` can bound a ping
/// (`try_ping_until`) and the check is not verbose, the probe runs on the calling thread and `db`
/// cuts it at the deadline (our PostgreSQL and MySQL adapters by ending the session). Otherwise
/// the probe runs on a probe thread; one still running at the deadline is cancelled where `db`
/// has `cancel()` and otherwise finishes in the background: `db` must outlive it (our adapters'
/// and pools' `close()` waits for it).
///
///     health_check_options o;
///     o.timeout = 2s;
///     o.verbose = true;
///     auto r = kysera::infra::health::perform_health_check(db, o);
///     if (r.status != health_status::healthy) alert(r.checks.front().message);
template <class Clock = std::chrono::steady_clock, database Db>
health_check_result perform_health_check(Db& db, const health_check_options& options = {}) {
  return detail::run_check<Clock>(db, options, infra::detail::resolve(options.logger), nullptr);
}

/// Checks `db` with the default options (5 s timeout, 100/500 ms thresholds). Never throws, and
/// never logs.
///
///     auto r = kysera::infra::health::check_database_health(db);
template <database Db>
health_check_result check_database_health(Db& db) {
  health_check_options o;
  return detail::run_check<std::chrono::steady_clock>(db, o, silent_logger(), nullptr);
}

/// The same, adding `pool`'s metrics to the result (on success and on failure).
///
///     auto r = check_database_health(db, kysera::infra::pool::create_metrics_pool(my_pool));
template <database Db>
health_check_result check_database_health(Db& db, const pool::metrics_pool& pool) {
  health_check_options o;
  o.pool = pool;
  return detail::run_check<std::chrono::steady_clock>(db, o, silent_logger(), nullptr);
}

}  // namespace kysera::infra::health
