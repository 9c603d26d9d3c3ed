// The helper process of the shutdown integration tests (built as kysera-shutdown-pg-child, not
// part of test-shutdown-it): a real connection_pool over the PostgreSQL test server with signal
// handlers registered. `kysera-shutdown-pg-child SCENARIO` prints "mark:ready" and waits for
// signals; lines are "mark:<event>" and "log:<level>:<message>" (support_child.hpp). The MariaDB
// counterpart of paused-server is child_mysql_main.cpp.
//
//   query-in-flight   a worker leases a connection and runs a 3 s query; SIGTERM must let it
//                     finish (pool close_for waits for the lease) before the pool closes
//   monitor-and-pool  a health_monitor on the pool; on_shutdown stops it, then the pool closes
//   paused-server     a worker leases a connection and runs a 60 s query; the test pauses the
//                     server and sends SIGTERM: at the 1 s shutdown deadline the pool cuts the
//                     session (logging its name) and the process exits with status 1
#include <kysera/infra/adapters/postgres.hpp>
#include <kysera/infra/health.hpp>
#include <kysera/infra/pool.hpp>
#include <kysera/infra/shutdown.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "support/servers.hpp"
#include "support_child.hpp"

namespace infra = kysera::infra;
namespace sd = kysera::infra::shutdown;
using namespace std::chrono_literals;
using pg_connection = infra::postgres::connection;
using pg_pool = infra::pool::connection_pool<pg_connection>;
using kysera::test::shutdown_child::block_forever;
using kysera::test::shutdown_child::child_logger;
using kysera::test::shutdown_child::mark;

namespace {

pg_pool& the_pool() {
  static pg_pool pool(
      [] {
        infra::postgres::connection_options options;
        options.application_name = "kysera-shutdown-pg-child";
        return std::make_unique<pg_connection>(kysera::test::servers::postgres_url(), options);
      },
      {.max_size = 2});
  return pool;
}

int query_in_flight() {
  auto& pool = the_pool();
  sd::register_shutdown_options options;
  options.timeout = 20s;
  options.logger = &child_logger();
  options.on_shutdown = [] { mark("on_shutdown"); };
  sd::register_shutdown_handlers(pool, options);
  std::thread([&pool] {
    try {
      auto lease = pool.acquire();
      mark("leased");
      auto result = lease->execute("SELECT 'kysera_shutdown_probe', pg_sleep(3), 42");
      mark(std::string("query-done:") + result[0][2].c_str());
    } catch (const std::exception& e) {
      mark(std::string("query-failed:") + e.what());
    }
  }).detach();
  mark("ready");
  block_forever();
}

int paused_server() {
  static pg_pool pool(
      [] {
        infra::postgres::connection_options options;
        options.application_name = "kysera-shutdown-pg-child";
        return std::make_unique<pg_connection>(kysera::test::servers::postgres_url(), options);
      },
      {.max_size = 2, .logger = &child_logger()});
  sd::register_shutdown_options options;
  options.timeout = 1s;
  options.logger = &child_logger();
  sd::register_shutdown_handlers(pool, options);
  std::thread([] {
    try {
      auto lease = pool.acquire();
      mark("leased");
      (void)lease->execute("SELECT 'kysera_shutdown_probe', pg_sleep(60)");
      mark("query-done");
    } catch (const std::exception& e) {
      mark(std::string("query-failed:") + e.what());
    }
  }).detach();
  mark("ready");
  block_forever();
}

int monitor_and_pool() {
  auto& pool = the_pool();
  static infra::health::health_monitor monitor(pool,
                                               {.pool = infra::pool::create_metrics_pool(pool),
                                                .interval = 100ms,
                                                .timeout = 5s,
                                                .logger = &child_logger()});
  static std::atomic<bool> stopped{false};
  sd::register_shutdown_options options;
  options.timeout = 20s;
  options.logger = &child_logger();
  options.on_shutdown = [] {
    monitor.stop();
    stopped = true;
    mark(monitor.is_running() ? "monitor-stopped:still-running" : "monitor-stopped");
  };
  sd::register_shutdown_handlers(pool, options);
  monitor.start([](const infra::health::health_check_result& r) {
    // Runs on the monitor's thread.
    mark(std::string(stopped ? "health-after-stop:" : "health:") +
         std::string(infra::health::to_string(r.status)));
  });
  mark("ready");
  block_forever();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kysera-shutdown-pg-child SCENARIO\n");
    return 64;
  }
  const std::string_view scenario = argv[1];
  try {
    if (scenario == "query-in-flight") return query_in_flight();
    if (scenario == "monitor-and-pool") return monitor_and_pool();
    if (scenario == "paused-server") return paused_server();
  } catch (const std::exception& e) {
    mark(std::string("exception:") + e.what());
    return 70;
  }
  mark("unknown-scenario");
  return 64;
}
