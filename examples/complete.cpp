// The complete example: a pool with metrics, query metrics through with_debug, a health monitor,
// a circuit breaker with a state-change callback, retried queries, and a graceful shutdown that
// prints the final metrics and recommendations.
//
// Usage: complete [URL] [--seconds N] [--listen 127.0.0.1:PORT]
//   URL defaults to $KYSERA_DATABASE_URL, then sqlite://kysera-demo.db. The same binary runs on
//   sqlite://..., postgres://... and mysql://... (each where its adapter was built).
// It works for N seconds (default 3), then shuts down; Ctrl-C or SIGTERM shut it down early.
// --listen serves /livez, /readyz, /startupz, /healthz and /metrics there (builds with the
// `http` component only); on shutdown /readyz turns 503 for a 1 s drain before the endpoint stops.
#include <kysera/infra.hpp>
#if defined(KYSERA_INFRA_HAS_HTTP)
#include <kysera/infra/http.hpp>
#endif

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

namespace infra = kysera::infra;
using namespace std::chrono_literals;

namespace {

std::string scheme_of(const std::string& url) { return url.substr(0, url.find(':')); }

// A portable "current time" column type, so one schema works on all three backends.
template <class Connection>
void create_schema(Connection& db) {
  db.execute("CREATE TABLE IF NOT EXISTS kysera_demo_events (id INTEGER PRIMARY KEY, note VARCHAR(64))");
  db.execute("DELETE FROM kysera_demo_events");
}

template <class Connection>
int run(const std::string& url, std::chrono::seconds work_time, const std::string& listen) {
  infra::pool::pool_options pool_options;
  pool_options.max_size = 4;
  pool_options.min_idle = 1;
  pool_options.acquire_timeout = 5s;
  infra::pool::connection_pool<Connection> pool(
      [url] { return std::make_unique<Connection>(url); }, pool_options);
  auto pool_handle = infra::pool::create_metrics_pool(pool);

  // Every query through `db` is timed into a ring buffer of the last 1000.
  infra::health::debug_options debug;
  debug.max_metrics = 1000;
  auto db = infra::health::with_debug(pool, debug);
  create_schema(db);

  infra::health::health_monitor_options monitor_options;
  monitor_options.pool = pool_handle;
  monitor_options.interval = 1s;
  monitor_options.timeout = 2s;
  infra::health::health_monitor monitor(db, monitor_options);
  infra::health::probes probes(monitor);  // liveness, readiness, startup from the monitor
  probes.start([](const infra::health::health_check_result& r) {
    // Runs on the monitor's thread.
    std::printf("health: %s (%s)\n", std::string(infra::health::to_string(r.status)).c_str(),
                r.checks.empty() ? "" : r.checks.front().message.c_str());
  });

  infra::resilience::circuit_breaker_options breaker_options;
  breaker_options.threshold = 3;
  breaker_options.reset_time = 2s;
  breaker_options.on_state_change = [](infra::resilience::circuit_state now,
                                       infra::resilience::circuit_state before) {
    std::printf("circuit: %s -> %s\n", std::string(infra::resilience::to_string(before)).c_str(),
                std::string(infra::resilience::to_string(now)).c_str());
  };
  infra::resilience::circuit_breaker breaker(breaker_options);

  infra::resilience::retry_options retry;
  retry.max_attempts = 3;
  retry.delay = 50ms;
  retry.max_delay = 500ms;
  retry.wait_for_circuit = true;  // an open circuit: wait (up to max_delay) for its next probe
  retry.on_retry = [](int attempt, const std::exception& e) {
    std::printf("retry: attempt %d failed: %s\n", attempt, e.what());
  };

  // What operators scrape: the pool, the breaker, the retries and the monitor, in OpenTelemetry
  // names (served on /metrics with --listen).
  infra::resilience::retry_counters retry_counts;
  retry.counters = &retry_counts;
  infra::metrics::registry registry;
  auto pool_series = registry.add_pool("complete", pool);
  auto breaker_series = registry.add_circuit_breaker("database", breaker);
  auto retry_series = registry.add_retry("queries", retry_counts);
  auto monitor_series = registry.add_health_monitor("database", monitor);

  infra::shutdown::register_shutdown_options shutdown_options;
  shutdown_options.timeout = 10s;
  shutdown_options.on_shutdown = [&] {
    monitor.stop();
    infra::health::get_metrics_options metrics_options;
    metrics_options.pool = pool_handle;
    metrics_options.period = "1h";
    auto m = infra::health::get_metrics(db, metrics_options);
    if (m.queries) {
      std::printf("queries: %zu total, avg %.2f ms, p95 %.2f ms, p99 %.2f ms, slow %zu\n",
                  static_cast<std::size_t>(m.queries->total), m.queries->avg_duration,
                  m.queries->p95_duration, m.queries->p99_duration,
                  static_cast<std::size_t>(m.queries->slow_count));
    }
    if (m.connections) {
      std::printf("connections: total %zu, active %zu, idle %zu, max %zu\n",
                  static_cast<std::size_t>(m.connections->total), static_cast<std::size_t>(m.connections->active),
                  static_cast<std::size_t>(m.connections->idle), static_cast<std::size_t>(m.connections->max));
    }
    for (const auto& r : m.recommendations) std::printf("recommendation: %s\n", r.c_str());
  };
#if defined(KYSERA_INFRA_HAS_HTTP)
  std::unique_ptr<infra::http::server> endpoint;
  if (!listen.empty()) {
    const auto address = infra::http::parse_listen_address(listen);
    infra::http::server_options http_options;
    http_options.host = address.host;
    http_options.port = address.port;
    http_options.metrics = [&registry](infra::http::metrics_format format) {
      const auto f = format == infra::http::metrics_format::openmetrics ? infra::metrics::exposition_format::openmetrics
                                                                         : infra::metrics::exposition_format::prometheus_text;
      return infra::http::metrics_text{infra::metrics::to_prometheus(registry, f),
                                       std::string(infra::metrics::content_type(f))};
    };
    endpoint = std::make_unique<infra::http::server>(probes, http_options);
    shutdown_options.drain = 1s;
    endpoint->attach(shutdown_options);  // readiness off, drain, then the endpoint stops
    std::printf("listening on http://%s:%d\n", address.host.c_str(), endpoint->port());
    std::fflush(stdout);  // a script waits for this line while the program runs
  }
#else
  if (!listen.empty()) throw std::runtime_error("--listen needs the http component (cpp-httplib)");
#endif
  auto controller = infra::shutdown::create_shutdown_controller(db, shutdown_options);
  controller.register_signals();  // SIGTERM/SIGINT run the same shutdown as execute() below

  auto deadline = std::chrono::steady_clock::now() + work_time;
  int id = 0;
  std::size_t failed = 0;
  while (std::chrono::steady_clock::now() < deadline && !controller.is_shutting_down()) {
    ++id;
    try {
      // The recommended nesting: the breaker inside the retry, so it sees every attempt.
      infra::resilience::with_retry(
          [&] {
            breaker.execute([&] {
              db.execute("INSERT INTO kysera_demo_events (id, note) VALUES (" + std::to_string(id) +
                         ", 'event')");
              db.execute("SELECT COUNT(*) FROM kysera_demo_events");
            });
          },
          retry);
    } catch (const std::exception& e) {
      ++failed;
      std::printf("query failed: %s\n", e.what());
    }
    std::this_thread::sleep_for(10ms);  // pacing of the demo's workload, not synchronisation
  }
  std::printf("work done: %d iterations, %zu failed\n", id, failed);

  try {
    controller.execute();  // on_shutdown, then closes the pool; idempotent after a signal
    std::printf("shutdown complete\n");
    return failed == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::printf("shutdown failed: %s\n", e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  std::chrono::seconds work_time = 3s;
  std::string listen;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--seconds" && i + 1 < argc) {
      work_time = std::chrono::seconds(std::atoi(argv[++i]));
    } else if (arg == "--listen" && i + 1 < argc) {
      listen = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      std::printf("usage: complete [URL] [--seconds N] [--listen HOST:PORT]\n");
      return 0;
    } else {
      url = std::string(arg);
    }
  }
  if (url.empty()) {
    const char* env = std::getenv("KYSERA_DATABASE_URL");
    url = env && *env ? env : "sqlite://kysera-demo.db";
  }
  std::string scheme = scheme_of(url);
  try {
#if defined(KYSERA_INFRA_HAS_SQLITE)
    if (scheme == "sqlite") return run<infra::sqlite::connection>(url, work_time, listen);
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
    if (scheme == "postgres" || scheme == "postgresql") return run<infra::postgres::connection>(url, work_time, listen);
#endif
#if defined(KYSERA_INFRA_HAS_MYSQL)
    if (scheme == "mysql" || scheme == "mariadb") return run<infra::mysql::connection>(url, work_time, listen);
#endif
  } catch (const std::exception& e) {
    std::fprintf(stderr, "complete: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "complete: no adapter for '%s' in this build\n", scheme.c_str());
  return 1;
}
