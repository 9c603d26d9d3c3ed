#pragma once
// A scene for the metrics tests and the promtool check: pools, breakers, retries, monitors, an
// instrumented database and histograms, registered in one registry, some with names full of
// quotes, backslashes and newlines. Not thread-safe; one per test.

#include <kysera/infra/cluster/state.hpp>
#include <kysera/infra/health.hpp>
#include <kysera/infra/metrics.hpp>
#include <kysera/infra/pool.hpp>
#include <kysera/infra/resilience.hpp>

#include "support/fake_database.hpp"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace kysera::test::metrics_support {

namespace infra = kysera::infra;
namespace km = kysera::infra::metrics;

using fake_pool = infra::pool::connection_pool<fake_database>;

inline infra::pool::pool_options quiet_pool(std::size_t max, std::size_t min_idle = 0, bool timings = false) {
  infra::pool::pool_options o;
  o.record_timings = timings;
  o.max_size = max;
  o.min_idle = min_idle;
  o.housekeeping_interval = std::chrono::milliseconds(0);
  o.acquire_timeout = std::chrono::milliseconds(1);
  o.logger = &infra::silent_logger();
  return o;
}

inline std::unique_ptr<fake_pool> make_pool(std::size_t max, std::size_t min_idle = 0, bool timings = false) {
  return std::make_unique<fake_pool>([] { return std::make_unique<fake_database>(); },
                                     quiet_pool(max, min_idle, timings));
}

/// Stands in for a cluster: the registry reads only its state() snapshot.
struct cluster_snapshot {
  std::shared_ptr<const infra::cluster::cluster_state> snapshot;
  std::shared_ptr<const infra::cluster::cluster_state> state() const { return snapshot; }
};

/// Everything the exporter can show, with activity recorded so no series is trivially zero.
struct scene {
  km::registry reg;
  std::vector<std::unique_ptr<fake_pool>> pools;
  std::vector<fake_pool::lease> leases;
  std::vector<std::unique_ptr<infra::resilience::circuit_breaker>> breakers;
  std::vector<std::unique_ptr<infra::resilience::retry_counters>> retries;
  fake_database monitored_db;
  std::optional<infra::health::health_monitor<fake_database>> monitor;
  fake_database queried_db;
  fake_database debugged_db;
  std::optional<infra::health::debug_database<fake_database>> debugged;
  cluster_snapshot cluster;
  km::histogram user_histogram{0.5, 1.0};
  std::vector<km::registration> handles;  // declared last: deregistered first

  static constexpr const char* nasty = "we\"ird\\name\nline two";

  scene() {
    pools.push_back(make_pool(4, 1));
    pools.push_back(make_pool(2));
    pools.push_back(make_pool(3));
    pools.push_back(make_pool(2, 0, true));  // records timings
    {
      auto lease = pools[0]->acquire();  // one used, then idle again
    }
    leases.push_back(pools[1]->acquire());
    leases.push_back(pools[1]->acquire());
    try {
      leases.push_back(pools[1]->acquire(std::chrono::milliseconds(1)));  // full: times out
    } catch (const infra::database_error&) {
    }
    handles.push_back(reg.add_pool("main", *pools[0]));
    handles.push_back(reg.add_pool(nasty, *pools[1]));
    handles.push_back(reg.add_pool("reports", infra::pool::create_metrics_pool(*pools[2])));
    {
      auto first = pools[3]->acquire();  // opens a connection
      auto second = pools[3]->acquire();  // and another
    }
    leases.push_back(pools[3]->acquire());  // a lease still out: not in use_time yet
    handles.push_back(reg.add_pool("timed", *pools[3]));

    for (int i = 0; i < 2; ++i) {
      breakers.push_back(std::make_unique<infra::resilience::circuit_breaker>(1, std::chrono::hours(1)));
    }
    (void)breakers[0]->execute([] { return 1; });
    try {
      breakers[1]->execute([]() -> int { throw std::runtime_error("down"); });
    } catch (...) {
    }
    try {
      breakers[1]->execute([] { return 1; });
    } catch (...) {
    }
    handles.push_back(reg.add_circuit_breaker("db", *breakers[0]));
    handles.push_back(reg.add_circuit_breaker(nasty, *breakers[1]));

    retries.push_back(std::make_unique<infra::resilience::retry_counters>());
    infra::resilience::retry_options ro;
    ro.counters = retries[0].get();
    ro.sleep = [](std::chrono::milliseconds) {};
    (void)infra::resilience::with_retry([] { return 1; }, ro);
    handles.push_back(reg.add_retry("queries", *retries[0]));

    infra::health::health_monitor_options mo;
    mo.logger = &infra::silent_logger();
    monitor.emplace(monitored_db, mo);
    (void)monitor->check_now();
    handles.push_back(reg.add_health_monitor("primary", *monitor));

    auto db = km::instrument(queried_db, reg, {km::db_system::postgresql, nasty});
    db.execute("SELECT 1");
    db.execute("  insert into t values (1)");
    queried_db.fail_next(infra::errc::deadlock);
    try {
      db.execute("UPDATE t SET a = 1");
    } catch (...) {
    }
    db.execute("frobnicate");

    debugged.emplace(debugged_db);
    debugged->execute("SELECT 1");
    debugged_db.fail_next(infra::errc::deadlock);
    try {
      debugged->execute("SELECT 2");
    } catch (...) {
    }
    handles.push_back(reg.add_debug_database(nasty, *debugged));

    {
      auto s = std::make_shared<infra::cluster::cluster_state>();
      using namespace std::chrono_literals;
      s->hosts.push_back({.name = "postgres://app@db1:5432/app", .role = infra::cluster::host_role::primary,
                          .replication_lag = 0ms, .round_trip = 800us});
      s->hosts.push_back({.name = nasty, .role = infra::cluster::host_role::replica, .replication_lag = 1500ms,
                          .round_trip = 2ms});
      s->primary = 0;
      cluster.snapshot = std::move(s);
    }
    handles.push_back(reg.add_cluster(nasty, cluster));

    user_histogram.record(0.75);
    user_histogram.record(3.0);
    handles.push_back(reg.add_histogram("app.job.duration", "s", "Job durations with a \"quoted\"\nhelp.",
                                        {{"job", nasty}}, user_histogram));
  }
};

}  // namespace kysera::test::metrics_support
