// Quick start: SQLite (no server), a pool with metrics, a health monitor with a callback, one
// query through a circuit breaker plus retry, and signal handlers for graceful shutdown.
//
// Usage: quickstart [DATABASE]   (a path or sqlite:// URL; default quickstart.db here)
#include <kysera/infra.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

namespace infra = kysera::infra;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : "quickstart.db";

  // 1. A pool of SQLite connections and a metrics handle for it.
  infra::pool::pool_options pool_options;
  pool_options.max_size = 2;
  infra::pool::connection_pool<infra::sqlite::connection> db(
      [path] { return std::make_unique<infra::sqlite::connection>(path); }, pool_options);
  auto metrics = infra::pool::create_metrics_pool(db);

  // 2. One health check now, then a monitor that checks every 30 s on its own thread.
  infra::health::health_check_options check_options;
  check_options.pool = metrics;
  auto health = infra::health::perform_health_check(db, check_options);
  std::printf("health: %s, %s\n", std::string(infra::health::to_string(health.status)).c_str(),
              health.checks.at(0).message.c_str());

  infra::health::health_monitor_options monitor_options;
  monitor_options.pool = metrics;
  infra::health::health_monitor monitor(db, monitor_options);
  monitor.start([](const infra::health::health_check_result& r) {
    if (r.status != infra::health::health_status::healthy) {
      std::printf("monitor: database is %s\n", std::string(infra::health::to_string(r.status)).c_str());
    }
  });

  // 3. SIGTERM/SIGINT: stop the monitor, close the pool, exit 0 (1 on failure or timeout).
  //    A controller, unlike register_shutdown_handlers, also lets main() run the same shutdown
  //    at a normal end and removes the handlers when it goes out of scope.
  infra::shutdown::register_shutdown_options shutdown_options;
  shutdown_options.timeout = 10s;
  shutdown_options.on_shutdown = [&] { monitor.stop(); };
  auto shutdown = infra::shutdown::create_shutdown_controller(db, shutdown_options);
  shutdown.register_signals();

  // 4. Queries through a circuit breaker and retry with exponential backoff.
  infra::resilience::circuit_breaker breaker(5, 30s);
  infra::resilience::retry_options retry;
  retry.max_attempts = 3;
  retry.delay = 100ms;
  retry.wait_for_circuit = true;  // an open circuit: wait for its next probe, not give up
  // The breaker inside the retry (the recommended nesting): it counts every attempt.
  auto count = infra::resilience::with_retry([&] {
    return breaker.execute([&] {
      db.execute("CREATE TABLE IF NOT EXISTS visits (at TEXT)");
      db.execute("INSERT INTO visits VALUES (datetime('now'))");
      return db.execute("SELECT COUNT(*) FROM visits").at(0, 0).value_or("0");
    });
  }, retry);
  std::printf("visits so far: %s\n", count.c_str());

  auto m = metrics.get_metrics();
  std::printf("pool: total %zu, idle %zu, active %zu, waiting %zu, max %zu\n", m.total, m.idle,
              m.active, m.waiting, m.max);
  std::printf("circuit: %s\n", std::string(infra::resilience::to_string(breaker.get_state().state)).c_str());

  // 5. A normal end: the same steps a signal would run (on_shutdown, then close the pool).
  shutdown.execute();
  std::printf("closed\n");
  return 0;
}
