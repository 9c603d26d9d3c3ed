// The soak test: 8 threads write unique keys and read them back through connection_pool +
// circuit_breaker + with_retry against PostgreSQL and against MariaDB, while a fault driver on the
// test's own thread kills the pool's sessions server-side, restarts the server and pauses it
// (SIGSTOP) for longer than the health monitor's timeout. Afterwards every write the application
// saw succeed must be in the table exactly once, the pool's metrics must add up, the monitor must
// have reported each restart and pause, and the breaker must have opened and closed again.
//
// Bounded by a cycle count and a deadline (KYSERA_SOAK_CYCLES, KYSERA_SOAK_SECONDS override them
// for longer runs by hand). Prints one summary line per backend:
//   soak postgres: ops=N faults=K (kills=a restarts=b pauses=c) writes_verified=W unknown_landed=U
//   worst_recovery_ms=R breaker_opens=O monitor_unhealthy=M ...
//
// Worker threads never use Catch2 macros (not thread-safe in Catch2 2.x): they record what they
// saw, and the test thread asserts after every thread has been joined.

#include <kysera/infra/health.hpp>
#include <kysera/infra/pool.hpp>
#include <kysera/infra/resilience.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "reliability/support_soak.hpp"
#include "support/catch.hpp"
#include "support/servers.hpp"

// The soak runs against a server backend; a build without one has nothing to soak.
#if defined(KYSERA_INFRA_HAS_POSTGRES) || defined(KYSERA_INFRA_HAS_MYSQL)
namespace {

namespace infra = kysera::infra;
namespace res = kysera::infra::resilience;
namespace health = kysera::infra::health;
namespace servers = kysera::test::servers;
using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;
using namespace std::chrono_literals;

// ---------------------------------------------------------------------------------------------
// Configuration

struct soak_config {
  int workers = 8;
  int max_cycles = 3;                  // each cycle: kill, pause, kill, restart
  milliseconds fault_budget{30000};    // no new cycle starts after this (the first always runs)
  milliseconds pause_length{1500};     // > monitor timeout; held longer until the monitor noticed
  milliseconds pause_cap{10000};       // ... but never longer than this
  milliseconds recovery_limit{30000};  // a fault not recovered from by then fails the test
  milliseconds calm_gap{300};          // normal load between two faults
  milliseconds think_time{4};          // per operation and worker: keeps the load lean
  milliseconds monitor_interval{150};
  milliseconds monitor_timeout{500};
};

long env_number(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  long n = std::strtol(v, &end, 10);
  return (end != v && *end == '\0' && n > 0) ? n : fallback;
}

soak_config config_from_env() {
  soak_config c;
  c.max_cycles = static_cast<int>(env_number("KYSERA_SOAK_CYCLES", c.max_cycles));
  c.fault_budget = std::chrono::seconds(env_number("KYSERA_SOAK_SECONDS", 30));
  return c;
}

// ---------------------------------------------------------------------------------------------
// What the threads record

std::int64_t ticks(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

double ms_between(steady::time_point a, steady::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

/// Owned by one worker thread while it runs; read by the test thread after the join.
struct worker_log {
  std::vector<std::int64_t> succeeded;           // keys whose INSERT the application saw succeed
  std::vector<steady::time_point> succeeded_at;  // when each of those calls returned (ascending)
  std::vector<std::int64_t> unresolved;          // keys whose INSERT failed after it may have run
  std::uint64_t writes_failed = 0;
  std::uint64_t duplicates_resolved = 0;  // a retry hit "duplicate key": the earlier try had landed
  std::uint64_t reads_ok = 0;
  std::uint64_t reads_failed = 0;
  std::vector<std::string> problems;  // unexpected errors and wrong read results (capped)

  void problem(std::string what) {
    if (problems.size() < 20) problems.push_back(std::move(what));
  }
};

/// Shared between the workers, the monitor callback, the breaker callback and the driver.
struct shared_state {
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> ops{0};
  std::atomic<std::uint64_t> writes_ok{0};
  std::atomic<std::uint64_t> retries{0};
  std::atomic<std::int64_t> last_write_ok{0};  // ticks() of the latest successful write

  std::atomic<int> breaker_opens{0};
  std::atomic<int> breaker_closes{0};

  std::mutex monitor_mutex;
  std::vector<std::pair<steady::time_point, health::health_status>> monitor_events;  // guarded
  std::atomic<int> monitor_unhealthy{0};
  std::atomic<bool> stop_monitor_after_answer{false};

  void note_write(steady::time_point t) {
    const std::int64_t v = ticks(t);
    std::int64_t seen = last_write_ok.load();
    while (seen < v && !last_write_ok.compare_exchange_weak(seen, v)) {
    }
    writes_ok.fetch_add(1);
  }

  void note_health(steady::time_point t, health::health_status s) {
    std::lock_guard lock(monitor_mutex);
    monitor_events.emplace_back(t, s);
    if (s == health::health_status::unhealthy) monitor_unhealthy.fetch_add(1);
  }

  /// Whether the monitor reported an outage (unhealthy) at or after `since`.
  bool monitor_unhealthy_since(steady::time_point since) {
    std::lock_guard lock(monitor_mutex);
    return std::any_of(monitor_events.begin(), monitor_events.end(),
                       [&](const auto& e) { return e.first >= since && !answered(e.second); });
  }

  /// Whether the monitor saw the server answer in time (healthy or degraded) at or after `since`.
  bool monitor_answered_since(steady::time_point since) {
    std::lock_guard lock(monitor_mutex);
    return std::any_of(monitor_events.begin(), monitor_events.end(),
                       [&](const auto& e) { return e.first >= since && answered(e.second); });
  }

  /// Healthy or degraded: the probe got its answer within the unhealthy threshold. A loaded CI
  /// machine can make a loopback ping slower than the 100 ms degraded threshold.
  static bool answered(health::health_status s) { return s != health::health_status::unhealthy; }

  std::vector<std::pair<steady::time_point, health::health_status>> monitor_snapshot() {
    std::lock_guard lock(monitor_mutex);
    return monitor_events;
  }
};

/// Errors the faults are expected to cause; anything else is a finding.
bool expected_failure(const std::exception& e) {
  const auto* se = dynamic_cast<const std::system_error*>(&e);
  if (se == nullptr || se->code().category() != infra::error_category()) return false;
  switch (static_cast<infra::errc>(se->code().value())) {
    case infra::errc::circuit_open:
    case infra::errc::connection_refused:
    case infra::errc::connection_lost:
    case infra::errc::timeout:
    case infra::errc::too_many_connections:
    case infra::errc::outcome_unknown:
    case infra::errc::pool_exhausted:
      return true;
    default:
      return false;
  }
}

/// Transient errors, plus the two that prove nothing ran: the breaker's rejection and a pool
/// that had no connection free. outcome_unknown stays excluded (is_transient_error says no).
bool worth_retrying(const std::exception& e) {
  if (res::is_transient_error(e)) return true;
  const auto* se = dynamic_cast<const std::system_error*>(&e);
  return se != nullptr &&
         (se->code() == infra::errc::circuit_open || se->code() == infra::errc::pool_exhausted);
}

// ---------------------------------------------------------------------------------------------
// Workers

template <class Backend>
using soak_pool = infra::pool::connection_pool<typename Backend::connection>;

constexpr std::int64_t key_stride = 100'000'000;  // worker w writes keys (w+1)*stride + seq

template <class Backend>
void run_worker(int id, const soak_config& cfg, soak_pool<Backend>& pool,
                res::circuit_breaker& breaker, shared_state& shared, worker_log& log) {
  res::retry_options retry;
  retry.max_attempts = 5;
  retry.delay = 25ms;
  retry.max_delay = 400ms;
  retry.should_retry = worth_retrying;
  retry.on_retry = [&shared](int, const std::exception&) { shared.retries.fetch_add(1); };

  for (std::int64_t seq = 1; !shared.stop.load(); ++seq) {
    if (seq % 3 == 0 && !log.succeeded.empty()) {
      // Read back one of this worker's own acknowledged writes: it must be there.
      const std::int64_t key =
          log.succeeded[static_cast<std::size_t>(seq * 7919) % log.succeeded.size()];
      try {
        const std::size_t n = res::with_retry(
            [&] {
              return breaker.execute([&]() -> std::size_t {
                return static_cast<std::size_t>(pool.execute(Backend::select_sql(key)).size());
              });
            },
            retry);
        ++log.reads_ok;
        if (n != 1) {
          log.problem("read of acknowledged key " + std::to_string(key) + " found " +
                      std::to_string(n) + " rows");
        }
      } catch (const std::exception& e) {
        ++log.reads_failed;
        if (!expected_failure(e)) log.problem(std::string("read failed unexpectedly: ") + e.what());
      }
    } else {
      const std::int64_t key = (id + 1) * key_stride + seq;
      const std::string sql = Backend::insert_sql(key, id);
      int tries = 0;  // attempts that got past the breaker: the INSERT may have reached the server
      try {
        const bool duplicate = res::with_retry(
            [&] {
              return breaker.execute([&] {
                const bool earlier_try = tries > 0;
                ++tries;
                try {
                  pool.execute(sql);
                  return false;
                } catch (const infra::database_error& e) {
                  // Idempotent retry: after a try whose outcome we do not know, "duplicate key"
                  // means that try committed. The first try can never see one (keys are unique).
                  if (earlier_try && e.code() == infra::errc::constraint_violation) return true;
                  throw;
                }
              });
            },
            retry);
        const auto now = steady::now();
        log.succeeded.push_back(key);
        log.succeeded_at.push_back(now);
        if (duplicate) ++log.duplicates_resolved;
        shared.note_write(now);
      } catch (const std::exception& e) {
        ++log.writes_failed;
        if (tries > 0) log.unresolved.push_back(key);
        if (!expected_failure(e)) {
          log.problem(std::string("write failed unexpectedly: ") + e.what());
        }
      }
    }
    shared.ops.fetch_add(1);
    std::this_thread::sleep_for(cfg.think_time);  // workload pacing, not synchronisation
  }
}

// ---------------------------------------------------------------------------------------------
// Faults

enum class fault_kind { kill, pause, restart };

const char* to_text(fault_kind k) {
  switch (k) {
    case fault_kind::kill:
      return "kill";
    case fault_kind::pause:
      return "pause";
    case fault_kind::restart:
      return "restart";
  }
  return "?";
}

struct fault_record {
  fault_kind kind = fault_kind::kill;
  steady::time_point start{};
  steady::time_point end{};  // server back / resumed / killed sessions gone
  int sessions_killed = 0;
  bool recovered = false;             // a write succeeded and the monitor got answers again
  std::optional<double> recovery_ms;  // end -> first successful write that returned after end
  bool monitor_saw_outage = false;    // unhealthy within [start, first answered check after end]
};

/// Runs `fn` on a fresh admin session to `url`, retrying while the server is still coming back.
template <class Backend, class F>
auto with_admin(const std::string& url, F&& fn) {
  res::retry_options o;
  o.max_attempts = 20;
  o.delay = 100ms;
  o.max_delay = 1000ms;
  return res::with_retry(
      [&] {
        auto admin = Backend::open_admin(url);
        return fn(*admin);
      },
      o);
}

/// Checks a pool snapshot; returns a description of what is wrong, or nothing.
std::optional<std::string> metrics_problem(const infra::pool::pool_metrics& m,
                                           std::size_t max_waiting) {
  std::ostringstream out;
  if (m.total != m.idle + m.active) out << " total != idle + active;";
  if (m.total > m.max) out << " total > max;";
  if (m.max != 8) out << " max != 8;";
  if (m.waiting > max_waiting) out << " waiting > callers;";
  if (out.str().empty()) return std::nullopt;
  out << " (total " << m.total << ", idle " << m.idle << ", active " << m.active << ", waiting "
      << m.waiting << ", max " << m.max << ")";
  return out.str();
}

/// Resumes and (re)starts the server when a fault was interrupted by an error.
struct server_restorer {
  std::string server;
  ~server_restorer() {
    try {
      servers::control("resume", server);
    } catch (...) {
    }
    try {
      servers::control("start", server);
    } catch (...) {
    }
  }
};

/// Runs `fn` when it goes out of scope (the test thread's cleanup on every path).
struct at_exit {
  std::function<void()> fn;
  ~at_exit() {
    if (fn) fn();
  }
};

// ---------------------------------------------------------------------------------------------
// The soak run for one backend

template <class Backend>
void run_soak() {
  const soak_config cfg = config_from_env();
  const auto test_start = steady::now();
  const std::string admin_url = Backend::admin_url();  // read once: restarts rewrite the env file

  with_admin<Backend>(admin_url, [](auto& admin) {
    Backend::create_table(admin);
    return 0;
  });

  shared_state shared;
  std::vector<worker_log> logs(static_cast<std::size_t>(cfg.workers));
  std::vector<fault_record> faults;
  std::vector<std::string> driver_problems;
  std::vector<std::string> metrics_problems;
  const std::size_t max_waiting =
      static_cast<std::size_t>(cfg.workers) + 1;  // + the monitor's probe

  infra::pool::pool_options po;
  po.max_size = 8;
  po.acquire_timeout = 3s;
  po.logger = &infra::silent_logger();
  soak_pool<Backend> pool([url = Backend::worker_url()] { return Backend::open_worker(url); }, po);

  res::circuit_breaker_options bo;
  bo.threshold = 5;
  bo.reset_time = 300ms;
  bo.on_state_change = [&shared](res::circuit_state next, res::circuit_state) {
    if (next == res::circuit_state::open) shared.breaker_opens.fetch_add(1);
    if (next == res::circuit_state::closed) shared.breaker_closes.fetch_add(1);
  };
  res::circuit_breaker breaker(bo);

  health::health_monitor_options mo;
  mo.pool = infra::pool::create_metrics_pool(pool);
  mo.interval = cfg.monitor_interval;
  mo.timeout = cfg.monitor_timeout;
  mo.logger = &infra::silent_logger();
  health::health_monitor<soak_pool<Backend>> monitor(pool, mo);

  std::vector<std::thread> threads;
  bool cleaned_up = false;
  auto cleanup = [&] {
    if (cleaned_up) return;
    cleaned_up = true;
    shared.stop.store(true);
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
    monitor.stop();
  };
  at_exit on_exit{cleanup};
  // Destroyed before on_exit runs the joins, so a server left paused or stopped cannot hang them.
  server_restorer restorer{Backend::server};

  auto sample_metrics = [&] {
    if (auto p = metrics_problem(pool.get_metrics(), max_waiting)) {
      if (metrics_problems.size() < 10) metrics_problems.push_back(*p);
    }
  };
  // Polls `done` (sampling the pool meanwhile) until it holds or `deadline` passes.
  auto wait_until = [&](steady::time_point deadline, auto&& done) {
    for (;;) {
      if (done()) return true;
      if (steady::now() >= deadline) return false;
      sample_metrics();
      std::this_thread::sleep_for(10ms);
    }
  };

  monitor.start([&shared, &monitor](const health::health_check_result& r) {
    shared.note_health(steady::now(), r.status);
    // Stopping from the callback guarantees no probe is in flight afterwards.
    if (shared.stop_monitor_after_answer.load() && shared_state::answered(r.status)) monitor.stop();
  });
  for (int i = 0; i < cfg.workers; ++i) {
    threads.emplace_back([&, i] {
      run_worker<Backend>(i, cfg, pool, breaker, shared, logs[static_cast<std::size_t>(i)]);
    });
  }

  // Warm-up: the load runs and the monitor has seen the server healthy.
  const bool warmed_up = wait_until(steady::now() + 20s, [&] {
    return shared.writes_ok.load() >= 50 && shared.monitor_answered_since(test_start);
  });

  auto run_fault = [&](fault_kind kind) {
    fault_record f;
    f.kind = kind;
    f.start = steady::now();
    try {
      switch (kind) {
        case fault_kind::kill:
          f.sessions_killed = with_admin<Backend>(
              admin_url, [](auto& admin) { return Backend::kill_sessions(admin); });
          break;
        case fault_kind::pause: {
          servers::pause_guard paused(Backend::server);
          // At least pause_length; longer (up to pause_cap) until the monitor has noticed.
          const auto min_end = f.start + cfg.pause_length;
          wait_until(f.start + cfg.pause_cap, [&] {
            return steady::now() >= min_end && shared.monitor_unhealthy_since(f.start);
          });
          paused.resume();
          break;
        }
        case fault_kind::restart: {
          // Stop, then start again once the monitor has seen the server gone (bounded by
          // pause_cap): a restart quicker than the monitor's interval would be invisible to it.
          servers::stop_guard stopped(Backend::server);
          wait_until(f.start + cfg.pause_cap, [&] { return shared.monitor_unhealthy_since(f.start); });
          stopped.start();
          break;
        }
      }
    } catch (const std::exception& e) {
      driver_problems.push_back(std::string(to_text(kind)) + " failed: " + e.what());
    }
    f.end = steady::now();
    // Recovered: a write succeeded after the fault ended, and the monitor got an answer again.
    const auto end_ticks = ticks(f.end);
    f.recovered = wait_until(f.end + cfg.recovery_limit, [&] {
      return shared.last_write_ok.load() >= end_ticks && shared.monitor_answered_since(f.end);
    });
    faults.push_back(f);
    // Normal load before the next fault (pacing; nothing below depends on it).
    wait_until(steady::now() + cfg.calm_gap, [] { return false; });
  };

  const auto fault_deadline = steady::now() + cfg.fault_budget;
  const fault_kind cycle[] = {fault_kind::kill, fault_kind::pause, fault_kind::kill,
                              fault_kind::restart};
  if (warmed_up) {
    for (int c = 0; c < cfg.max_cycles; ++c) {
      bool out_of_time = false;
      for (fault_kind k : cycle) {
        if (c > 0 && steady::now() >= fault_deadline) {
          out_of_time = true;
          break;
        }
        run_fault(k);
      }
      if (out_of_time || !driver_problems.empty()) break;
    }
  }

  // Calm phase: no faults; the breaker must close again and the writes go through.
  const auto calm_start = steady::now();
  const auto writes_before_calm = shared.writes_ok.load();
  const bool calmed = wait_until(calm_start + 20s, [&] {
    return breaker.is_closed() && shared.writes_ok.load() >= writes_before_calm + 40 &&
           shared.monitor_answered_since(calm_start);
  });

  // Stop the workers, then the monitor from its callback right after a check that got an
  // answer: no probe can still hold a lease when the pool's metrics are read below.
  shared.stop.store(true);
  for (auto& t : threads) t.join();
  shared.stop_monitor_after_answer.store(true);
  const bool monitor_stopped_quietly =
      wait_until(steady::now() + 10s, [&] { return !monitor.is_running(); });
  cleanup();

  const auto final_metrics = pool.get_metrics();
  const auto final_breaker = breaker.get_state();
  const auto stats = pool.get_statistics();
  const bool drained = pool.close_for(10s);
  const auto closed_stats = pool.get_statistics();

  // Verification through a fresh admin session.
  const auto counts = with_admin<Backend>(
      admin_url, [](auto& admin) { return Backend::ints(admin, Backend::count_sql()); });
  const auto rows = with_admin<Backend>(
      admin_url, [](auto& admin) { return Backend::ints(admin, Backend::all_keys_sql()); });
  std::vector<std::int64_t> in_db;
  in_db.reserve(rows.size());
  for (const auto& r : rows) in_db.push_back(r.at(0));
  std::sort(in_db.begin(), in_db.end());

  std::vector<std::int64_t> acknowledged, unresolved;
  std::uint64_t writes_failed = 0, duplicates_resolved = 0, reads_ok = 0, reads_failed = 0;
  std::vector<std::string> worker_problems;
  for (const auto& l : logs) {
    acknowledged.insert(acknowledged.end(), l.succeeded.begin(), l.succeeded.end());
    unresolved.insert(unresolved.end(), l.unresolved.begin(), l.unresolved.end());
    writes_failed += l.writes_failed;
    duplicates_resolved += l.duplicates_resolved;
    reads_ok += l.reads_ok;
    reads_failed += l.reads_failed;
    worker_problems.insert(worker_problems.end(), l.problems.begin(), l.problems.end());
  }
  std::sort(acknowledged.begin(), acknowledged.end());
  std::sort(unresolved.begin(), unresolved.end());
  const auto present = [&](std::int64_t k) {
    return std::binary_search(in_db.begin(), in_db.end(), k);
  };

  std::vector<std::int64_t> lost;  // acknowledged but missing
  for (auto k : acknowledged) {
    if (!present(k)) lost.push_back(k);
  }
  std::size_t unknown_landed = 0;
  std::vector<std::int64_t> phantoms;  // in the table though never possibly written
  for (auto k : in_db) {
    if (std::binary_search(acknowledged.begin(), acknowledged.end(), k)) continue;
    if (std::binary_search(unresolved.begin(), unresolved.end(), k)) {
      ++unknown_landed;
    } else {
      phantoms.push_back(k);
    }
  }

  // Recovery and monitor figures per fault.
  const auto monitor_events = shared.monitor_snapshot();
  double worst_recovery = 0;
  int kills = 0, pauses = 0, restarts = 0, sessions_killed = 0;
  std::ostringstream fault_table;
  for (auto& f : faults) {
    std::optional<steady::time_point> first;
    for (const auto& l : logs) {
      auto it = std::lower_bound(l.succeeded_at.begin(), l.succeeded_at.end(), f.end);
      if (it != l.succeeded_at.end() && (!first || *it < *first)) first = *it;
    }
    if (first) f.recovery_ms = ms_between(f.end, *first);
    if (f.recovery_ms) worst_recovery = std::max(worst_recovery, *f.recovery_ms);
    std::optional<steady::time_point> healthy_again;
    for (const auto& [t, s] : monitor_events) {
      if (t >= f.end && shared_state::answered(s)) {
        healthy_again = t;
        break;
      }
    }
    for (const auto& [t, s] : monitor_events) {
      if (t >= f.start && (!healthy_again || t <= *healthy_again) &&
          s == health::health_status::unhealthy) {
        f.monitor_saw_outage = true;
      }
    }
    switch (f.kind) {
      case fault_kind::kill:
        ++kills;
        sessions_killed += f.sessions_killed;
        break;
      case fault_kind::pause:
        ++pauses;
        break;
      case fault_kind::restart:
        ++restarts;
        break;
    }
    fault_table << to_text(f.kind) << " at +" << static_cast<long>(ms_between(test_start, f.start))
                << " ms, " << static_cast<long>(ms_between(f.start, f.end)) << " ms long, recovery "
                << (f.recovery_ms ? std::to_string(static_cast<long>(*f.recovery_ms)) + " ms"
                                  : "none")
                << (f.kind == fault_kind::kill ? ", killed " + std::to_string(f.sessions_killed)
                                               : "")
                << ", monitor " << (f.monitor_saw_outage ? "saw it" : "did not see it") << "\n";
    if (!f.monitor_saw_outage && f.kind != fault_kind::kill) {
      // What the monitor reported around an outage it missed, to tell a slow monitor from a
      // fault the probe could not observe.
      fault_table << "  monitor around it:";
      for (const auto& [t, s] : monitor_events) {
        if (t + 1s >= f.start && t <= f.end + 1s) {
          fault_table << " +" << static_cast<long>(ms_between(test_start, t)) << ":"
                      << health::to_string(s);
        }
      }
      fault_table << "\n";
    }
  }

  const double elapsed_s = std::chrono::duration<double>(steady::now() - test_start).count();
  char summary[512];
  std::snprintf(
      summary, sizeof summary,
      "soak %s: ops=%llu faults=%zu (kills=%d restarts=%d pauses=%d) writes_verified=%zu "
      "unknown_landed=%zu worst_recovery_ms=%.0f breaker_opens=%d monitor_unhealthy=%d "
      "reads=%llu failed_ops=%llu retries=%llu duplicates_resolved=%llu sessions_killed=%d "
      "pool_created=%llu elapsed_s=%.1f",
      Backend::name, static_cast<unsigned long long>(shared.ops.load()), faults.size(), kills,
      restarts, pauses, acknowledged.size() - lost.size(), unknown_landed, worst_recovery,
      shared.breaker_opens.load(), shared.monitor_unhealthy.load(),
      static_cast<unsigned long long>(reads_ok),
      static_cast<unsigned long long>(writes_failed + reads_failed),
      static_cast<unsigned long long>(shared.retries.load()),
      static_cast<unsigned long long>(duplicates_resolved), sessions_killed,
      static_cast<unsigned long long>(stats.created), elapsed_s);
  std::cout << summary << std::endl;

  // The table has served its purpose (a failing run's figures are in the messages below).
  with_admin<Backend>(admin_url, [](auto& admin) {
    Backend::drop_table(admin);
    return 0;
  });

  INFO(summary);
  INFO("faults:\n" << fault_table.str());
  for (const auto& p : driver_problems) UNSCOPED_INFO("driver: " << p);
  CHECK(driver_problems.empty());
  for (const auto& p : worker_problems) UNSCOPED_INFO("worker: " << p);
  CHECK(worker_problems.empty());
  for (const auto& p : metrics_problems) UNSCOPED_INFO("pool metrics during the run:" << p);
  CHECK(metrics_problems.empty());
  REQUIRE(warmed_up);

  // The faults happened, each was recovered from, and the monitor reported each outage.
  CHECK(kills >= 2);
  CHECK(pauses >= 1);
  CHECK(restarts >= 1);
  CHECK(sessions_killed >= 1);
  for (const auto& f : faults) {
    INFO(to_text(f.kind) << " at +" << static_cast<long>(ms_between(test_start, f.start)) << " ms");
    CHECK(f.recovered);
    CHECK(f.recovery_ms.has_value());
    if (f.kind != fault_kind::kill) CHECK(f.monitor_saw_outage);
  }
  CHECK(calmed);

  // Every acknowledged write is in the table exactly once; nothing appeared that was never sent.
  REQUIRE(counts.size() == 1);
  CHECK(counts[0].at(0) == counts[0].at(1));  // COUNT(*) == COUNT(DISTINCT id)
  CHECK(static_cast<std::size_t>(counts[0].at(0)) == in_db.size());
  CHECK(acknowledged.size() >= 100);
  auto first_keys = [](const std::vector<std::int64_t>& keys) {
    std::string out;
    for (std::size_t i = 0; i < keys.size() && i < 10; ++i) out += std::to_string(keys[i]) + " ";
    return out;
  };
  INFO("acknowledged but missing: " << first_keys(lost));
  CHECK(lost.empty());
  INFO("present but never sent: " << first_keys(phantoms));
  CHECK(phantoms.empty());
  CHECK(std::adjacent_find(in_db.begin(), in_db.end()) == in_db.end());
  CHECK(in_db.size() == acknowledged.size() + unknown_landed);
  CHECK(std::adjacent_find(acknowledged.begin(), acknowledged.end()) == acknowledged.end());

  // Pool metrics add up once every worker and the monitor are gone.
  INFO("final metrics: total " << final_metrics.total << ", idle " << final_metrics.idle
                               << ", active " << final_metrics.active << ", waiting "
                               << final_metrics.waiting);
  CHECK(monitor_stopped_quietly);
  CHECK(final_metrics.total == final_metrics.idle + final_metrics.active);
  CHECK(final_metrics.active == 0);
  CHECK(final_metrics.waiting == 0);
  CHECK(final_metrics.total <= final_metrics.max);
  CHECK(final_metrics.max == 8);
  CHECK(drained);
  // The counters agree with the snapshot: what was opened and not yet closed is what is open.
  CHECK(stats.created - stats.closed() == final_metrics.total);
  CHECK(closed_stats.created == closed_stats.closed());
  CHECK(pool.get_metrics().total == 0);

  // The breaker opened under the faults and closed again.
  CHECK(shared.breaker_opens.load() >= 1);
  CHECK(shared.breaker_closes.load() >= 1);
  CHECK(final_breaker.state == res::circuit_state::closed);
  CHECK(shared.monitor_unhealthy.load() >= 1);
}

}  // namespace

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres soak under session kills restarts and pauses", "[reliability][postgres]") {
  run_soak<kysera::test::soak::postgres_backend>();
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql soak under session kills restarts and pauses", "[reliability][mysql]") {
  run_soak<kysera::test::soak::mysql_backend>();
}
#endif
#endif  // a server backend
