// The MariaDB helper process of the shutdown integration tests (built as
// kysera-shutdown-mysql-child, not part of test-shutdown-it): a real connection_pool over the
// MariaDB test server with signal handlers registered. `kysera-shutdown-mysql-child SCENARIO`
// prints "mark:ready" and waits for signals; lines are "mark:<event>" and
// "log:<level>:<message>" (support_child.hpp). Every session the pool opens is announced as
// "mark:session:<connection id>", so the test can look for the child's sessions on the server.
//
//   paused-server   a worker leases a connection and runs a 60 s statement; the test pauses the
//                   server and sends SIGTERM: at the 1 s shutdown deadline the pool cuts the
//                   session (logging its name) and the process exits with status 1
#include <kysera/infra/adapters/mysql.hpp>
#include <kysera/infra/pool.hpp>
#include <kysera/infra/shutdown.hpp>

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
using my_connection = infra::mysql::connection;
using my_pool = infra::pool::connection_pool<my_connection>;
using kysera::test::shutdown_child::block_forever;
using kysera::test::shutdown_child::child_logger;
using kysera::test::shutdown_child::mark;

namespace {

std::unique_ptr<my_connection> open_session() {
  auto c = std::make_unique<my_connection>(kysera::test::servers::mysql_url());
  mark("session:" + std::to_string(c->connection_id()));
  return c;
}

int paused_server() {
  static my_pool pool(open_session, {.max_size = 2, .logger = &child_logger()});
  sd::register_shutdown_options options;
  options.timeout = 1s;
  options.logger = &child_logger();
  sd::register_shutdown_handlers(pool, options);
  std::thread([] {
    try {
      auto lease = pool.acquire();
      mark("leased:" + std::to_string(lease->connection_id()));
      (void)lease->execute("SELECT 'kysera_shutdown_probe', SLEEP(60)");
      mark("query-done");
    } catch (const std::exception& e) {
      mark(std::string("query-failed:") + e.what());
    }
  }).detach();
  mark("ready");
  block_forever();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kysera-shutdown-mysql-child SCENARIO\n");
    return 64;
  }
  const std::string_view scenario = argv[1];
  try {
    if (scenario == "paused-server") return paused_server();
  } catch (const std::exception& e) {
    mark(std::string("exception:") + e.what());
    return 70;
  }
  mark("unknown-scenario");
  return 64;
}
