#pragma once
/// \file
/// Health checks: `health_status`, the result types, `perform_health_check` and
/// `check_database_health`.
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

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "../database.hpp"
#include "../detail/process_wide.hpp"
#include "../detail/time.hpp"
#include "../logger.hpp"
#include "../pool/metrics.hpp"

namespace kysera::infra::health {

/// The outcome of a health check, from best to worst.
enum class health_status { healthy, degraded, unhealthy };

/// "healthy", "degraded" or "unhealthy".
constexpr std::string_view to_string(health_status status) noexcept {
  switch (status) {
    case health_status::healthy: return "healthy";
    case health_status::degraded: return "degraded";
    case health_status::unhealthy: return "unhealthy";
  }
  return "unknown";
}

/// One named check inside a result (today always "Database Connection").
struct health_check {
  std::string name{};
  health_status status = health_status::unhealthy;
  std::string message{};
};

/// Figures gathered by a check.
struct health_metrics {
  std::optional<double> check_latency{};            ///< ms, 2 decimals; absent on failure
  std::optional<pool::pool_metrics> pool_metrics{}; ///< when a pool was given (success and failure)
  std::optional<std::string> database_version{};    ///< verbose checks of databases that can tell
};

/// What a health check found. A value type.
struct health_check_result {
  health_status status = health_status::unhealthy;
  std::vector<health_check> checks{};
  std::vector<std::string> errors{};///< the failure message on failure, else empty
  health_metrics metrics{};
  std::chrono::system_clock::time_point timestamp{};///< when the check finished (wall clock)
};

/// Options of `perform_health_check`. Invalid values throw `std::invalid_argument` naming the field.
struct health_check_options {
  std::optional<pool::metrics_pool> pool{};  ///< pool metrics to add to the result
  bool verbose = false;                     ///< also ask the server for its version
  infra::logger* logger = nullptr;          ///< null: `default_logger()`
  std::chrono::milliseconds timeout{5000};  ///< > 0; the check returns by then (plus scheduling);
                                            ///< huge values (milliseconds::max()) mean no limit
  std::chrono::milliseconds degraded_threshold{100};   ///< >= 0; latency from here on: degraded
  std::chrono::milliseconds unhealthy_threshold{500};  ///< >= degraded_threshold; from here: unhealthy
};

/// The latency class: healthy below `degraded`, degraded below `unhealthy`, else unhealthy.
///
///     classify_latency(99.99, 100ms, 500ms) == health_status::healthy
constexpr health_status classify_latency(double latency_ms, std::chrono::milliseconds degraded,
                                         std::chrono::milliseconds unhealthy) noexcept {
  if (latency_ms < static_cast<double>(degraded.count())) return health_status::healthy;
  if (latency_ms < static_cast<double>(unhealthy.count())) return health_status::degraded;
  return health_status::unhealthy;
}

namespace detail {

inline constexpr std::string_view check_name = "Database Connection";

/// Rounds to 2 decimals, halves away from zero (like JavaScript's Math.round for positives).
inline double round2(double value) noexcept { return std::round(value * 100.0) / 100.0; }

/// "12.34" for 12.34.
inline std::string format_fixed2(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, 2);
  if (ec != std::errc()) return "?";
  return std::string(buffer, end);
}

inline void validate(const health_check_options& o) {
  if (o.timeout <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("kysera::infra::health: timeout must be greater than zero");
  }
  if (o.degraded_threshold < std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("kysera::infra::health: degraded_threshold must not be negative");
  }
  if (o.unhealthy_threshold < o.degraded_threshold) {
    throw std::invalid_argument(
        "kysera::infra::health: unhealthy_threshold must not be below degraded_threshold");
  }
}

/// Copies an exception's message without letting a failed allocation escape a noexcept path.
inline void store_message(std::string& out, const char* text) noexcept {
  try {
    out = (text && *text) ? text : "unknown error";
  } catch (...) {
    out.clear();
  }
}

/// A pause hint for spin loops.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/// Spins until `ready()` or until `budget` has passed, yielding now and then; returns `ready()`.
/// Both sides of the probe hand-off spin briefly before they sleep: a thread that is put to
/// sleep and woken again costs ~5-20 us per hop, as much as a loopback `SELECT 1`.
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::nanoseconds budget) noexcept {
  const auto end = std::chrono::steady_clock::now() + budget;
  for (unsigned i = 1;; ++i) {
    if (ready()) return true;
    if (i % 64 == 0) {
      if (std::chrono::steady_clock::now() >= end) return ready();
      std::this_thread::yield();
    } else {
      cpu_relax();
    }
  }
}

/// The longest a caller spins for its probe's answer before it sleeps: a loopback round trip.
/// The caller spins only about twice the recent probe time (`recent_probe_ns`), so checks of a
/// remote database, which take longer than this anyway, do not spin at all.
inline constexpr std::chrono::microseconds caller_spin{200};
/// How long an idle worker spins for the next probe before it sleeps.
inline constexpr std::chrono::microseconds worker_spin{100};

/// A moving average of recent probe times (ns) across all databases; only steers spinning.
inline std::atomic<std::int64_t>& recent_probe_ns() noexcept {
  static std::atomic<std::int64_t> value{0};
  return value;
}

/// How long a caller should spin now.
inline std::chrono::nanoseconds caller_spin_budget() noexcept {
  const std::int64_t recent = recent_probe_ns().load(std::memory_order_relaxed);
  const std::chrono::nanoseconds limit = caller_spin;
  if (recent >= limit.count()) return std::chrono::nanoseconds::zero();
  return std::min(limit, std::chrono::nanoseconds(2 * recent + 20'000));
}

/// Folds one probe time into the average (racy read-modify-write is fine for a hint).
inline void note_probe_time(std::chrono::nanoseconds t) noexcept {
  auto& avg = recent_probe_ns();
  const std::int64_t sample = std::min<std::int64_t>(t.count(), 1'000'000);  // a stall must not linger
  const std::int64_t old = avg.load(std::memory_order_relaxed);
  avg.store(old + (sample - old) / 4, std::memory_order_relaxed);
}

/// One probe, shared between the caller that waits for it and the worker that runs it (the
/// caller may give up and return while the worker still holds it).
struct probe_state {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;  // the worker finished (guarded by mutex)
  std::atomic<bool> finished{false};  // the same, readable without the mutex (spinning)

  // Set before submission, read by the worker.
  void (*run)(probe_state&) noexcept = nullptr;
  void* db = nullptr;
  const void* key = nullptr;
  bool want_version = false;

  // Written by the worker before `done`; read by the caller only after seeing `done`.
  bool ok = false;
  double latency_ms = 0.0;
  std::string error;
  std::optional<std::string> version;
  std::string version_error;

  void finish() noexcept {
    {
      std::lock_guard lock(mutex);
      done = true;
    }
    finished.store(true, std::memory_order_release);  // after `done`: a spinner that sees it finds `done`
    cv.notify_all();
  }
};

/// The probe body for a database type: ping, time it with `Clock`, then the version if asked.
template <class Clock, class DB>
void run_probe(probe_state& p) noexcept {
  DB& db = *static_cast<DB*>(p.db);
  const auto start = Clock::now();
  try {
    infra::ping(db);
    p.ok = true;
  } catch (const std::exception& e) {
    store_message(p.error, e.what());
  } catch (...) {
    store_message(p.error, "unknown error (a non-standard exception was thrown)");
  }
  p.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (p.ok && p.want_version) {
    try {
      p.version = infra::server_version(db);
    } catch (const std::exception& e) {
      store_message(p.version_error, e.what());
    } catch (...) {
      store_message(p.version_error, "unknown error");
    }
  }
}

/// A process-wide cache of probe threads. Thread-safe. Never destroyed (a worker may still be
/// blocked in a probe of a hung server when static destructors run), so it is leaked on purpose.
class probe_executor {
 public:
  // Shared across shared libraries (process_wide.hpp): a private copy would work, at the cost of
  // one more thread cache per library.
  KYSERA_INFRA_PROCESS_WIDE static probe_executor& instance() {
    static probe_executor* const executor = new probe_executor();
    return *executor;
  }

  /// Runs `job` on an idle worker, or on a new one when all are busy. Throws `std::system_error`
  /// when no thread can be started.
  void submit(const std::shared_ptr<probe_state>& job) {
    std::shared_ptr<worker> w;
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        w = std::move(idle_.back());
        idle_.pop_back();
        w->job = job;
        w->has_job.store(true, std::memory_order_release);
      }
    }
    if (w) {
      w->cv.notify_one();
      return;
    }
    auto fresh = std::make_shared<worker>();
    fresh->job = job;
    fresh->has_job.store(true, std::memory_order_relaxed);
    std::thread([this, fresh] { work(fresh); }).detach();
  }

  /// The abandoned probe of `key` that has not returned yet, if any.
  std::shared_ptr<probe_state> stuck_probe(const void* key) {
    std::lock_guard lock(mutex_);
    auto it = stuck_.find(key);
    return it == stuck_.end() ? nullptr : it->second;
  }

  /// The caller gives up on `job`: remembers it as stuck unless it finished meanwhile.
  /// Returns false when it had finished (the caller can use its result after all).
  bool abandon(const std::shared_ptr<probe_state>& job) {
    std::scoped_lock lock(mutex_, job->mutex);
    if (job->done) return false;
    stuck_[job->key] = job;
    return true;
  }

 private:
  struct worker {
    std::condition_variable cv;
    std::shared_ptr<probe_state> job;  // guarded by the executor's mutex
    std::atomic<bool> has_job{false};  // `job` is set; readable without the mutex (spinning)
  };

  static constexpr std::size_t max_idle = 8;
  static constexpr std::chrono::seconds idle_timeout{60};

  probe_executor() = default;

  void work(const std::shared_ptr<worker>& self) noexcept {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!self->job) {
        try {
          idle_.push_back(self);
        } catch (...) {
          return;
        }
        lock.unlock();
        spin_until([&] { return self->has_job.load(std::memory_order_acquire); }, worker_spin);
        lock.lock();
        bool got_job = self->cv.wait_for(lock, idle_timeout, [&] { return self->job != nullptr; });
        if (!got_job) {
          idle_.erase(std::remove(idle_.begin(), idle_.end(), self), idle_.end());
          return;
        }
      }
      std::shared_ptr<probe_state> job = std::move(self->job);
      self->job = nullptr;
      self->has_job.store(false, std::memory_order_relaxed);
      lock.unlock();
      const auto started = std::chrono::steady_clock::now();
      job->run(*job);
      note_probe_time(std::chrono::steady_clock::now() - started);
      job->finish();
      lock.lock();
      if (auto it = stuck_.find(job->key); it != stuck_.end() && it->second == job) stuck_.erase(it);
      job.reset();
      if (idle_.size() >= max_idle) return;
    }
  }

  std::mutex mutex_;
  std::vector<std::shared_ptr<worker>> idle_;  // most recently idle last
  std::unordered_map<const void*, std::shared_ptr<probe_state>> stuck_;
};

/// Lets another thread stop a check's wait early (the monitor's `stop()`). Thread-safe.
class abort_source {
 public:
  /// Called by `stop()`: the check in flight (and any later one) stops waiting at once.
  void abort() noexcept {
    aborted_.store(true);
    std::lock_guard lock(mutex_);
    if (current_) {
      // Taking the probe's mutex orders the flag before the waiter's predicate check, so the
      // wake-up cannot be lost.
      { std::lock_guard probe_lock(current_->mutex); }
      current_->cv.notify_all();
    }
  }
  /// Clears the flag for the next run.
  void reset() noexcept {
    std::lock_guard lock(mutex_);
    aborted_.store(false);
    current_.reset();
  }
  bool aborted() const noexcept { return aborted_.load(); }
  void attach(const std::shared_ptr<probe_state>& p) noexcept {
    std::lock_guard lock(mutex_);
    current_ = p;
  }
  void detach() noexcept {
    std::lock_guard lock(mutex_);
    current_.reset();
  }

 private:
  std::atomic<bool> aborted_{false};
  std::mutex mutex_;
  std::shared_ptr<probe_state> current_;
};

/// Waits for `p` until `deadline` or an abort; true when it finished.
inline bool wait_for_probe(const std::shared_ptr<probe_state>& p,
                           std::chrono::steady_clock::time_point deadline, abort_source* abort) {
  if (abort) abort->attach(p);
  if (!p->finished.load(std::memory_order_acquire)) {
    spin_until([&] { return p->finished.load(std::memory_order_acquire) || (abort && abort->aborted()); },
               std::min<std::chrono::nanoseconds>(caller_spin_budget(), deadline - std::chrono::steady_clock::now()));
  }
  bool finished;
  {
    std::unique_lock lock(p->mutex);
    infra::detail::wait_until_capped(p->cv, lock, deadline, [&] { return p->done || (abort && abort->aborted()); });
    finished = p->done;
  }
  if (abort) abort->detach();
  return finished;
}

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
template <class Clock, class DB>
std::optional<health_check_result> probe_on_caller(DB& db, const health_check_options& o, logger& log,
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
template <class Clock, class DB>
health_check_result run_check(DB& db, const health_check_options& o, logger& log, abort_source* abort) {
  validate(o);
  try {
    // Saturating: a timeout too large for the clock means "no deadline", not one in the past.
    const auto now = std::chrono::steady_clock::now();
    const auto deadline = infra::detail::saturating_add(now, o.timeout);

    // The monitor's own checks keep the probe thread, so that stop() never waits for a probe
    // in flight; verbose checks too, as the version query has no bounded form. (A probe thread
    // still stuck from an earlier check holds the connection, so the bounded ping times out on
    // its lock: the same answer the stuck-probe wait below gives.)
    if constexpr (database_with_bounded_ping<DB>) {
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
    job->run = &run_probe<Clock, DB>;
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
template <class Clock = std::chrono::steady_clock, database DB>
health_check_result perform_health_check(DB& db, const health_check_options& options = {}) {
  return detail::run_check<Clock>(db, options, infra::detail::resolve(options.logger), nullptr);
}

/// Checks `db` with the default options (5 s timeout, 100/500 ms thresholds). Never throws, and
/// never logs.
///
///     auto r = kysera::infra::health::check_database_health(db);
template <database DB>
health_check_result check_database_health(DB& db) {
  health_check_options o;
  return detail::run_check<std::chrono::steady_clock>(db, o, silent_logger(), nullptr);
}

/// The same, adding `pool`'s metrics to the result (on success and on failure).
///
///     auto r = check_database_health(db, kysera::infra::pool::create_metrics_pool(my_pool));
template <database DB>
health_check_result check_database_health(DB& db, const pool::metrics_pool& pool) {
  health_check_options o;
  o.pool = pool;
  return detail::run_check<std::chrono::steady_clock>(db, o, silent_logger(), nullptr);
}

}  // namespace kysera::infra::health
