// Shutdown with the other modules on real servers: a query in flight when SIGTERM arrives
// finishes before the pool closes; a health_monitor and a pool shut down in the documented order
// (on_shutdown stops the monitor, then the pool closes); is_shutting_down() is what a readiness
// probe reads (PostgreSQL). SIGTERM while the server is paused cuts the leased session at the
// shutdown deadline (PostgreSQL and MariaDB).
#include "support/catch.hpp"
#include "support/eventually.hpp"

// Each backend's tests only in builds that have its adapter (kysera::infra-postgres,
// kysera::infra-mysql linked).
#if defined(KYSERA_INFRA_HAS_POSTGRES) || defined(KYSERA_INFRA_HAS_MYSQL)
#include "support/servers.hpp"
#include "support_log.hpp"
#include "support_process.hpp"

#include <kysera/infra/pool.hpp>
#include <kysera/infra/shutdown.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
namespace sd = kysera::infra::shutdown;
using kysera::test::child_process;
using kysera::test::log_capture;
using namespace std::chrono_literals;

namespace {

void require_line(child_process& child, std::string_view needle) {
  const bool seen = child.wait_for(needle, 30s);
  INFO("waiting for: " << needle << "\nchild output:\n" << child.output());
  REQUIRE(seen);
}

}  // namespace
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include <kysera/infra/adapters/postgres.hpp>
#include <kysera/infra/health.hpp>

#ifndef KYSERA_SHUTDOWN_PG_CHILD
#error \
    "KYSERA_SHUTDOWN_PG_CHILD must name the kysera-shutdown-pg-child executable (tests/shutdown/tests.cmake)"
#endif

namespace health = kysera::infra::health;
using pg_connection = infra::postgres::connection;
using pg_pool = infra::pool::connection_pool<pg_connection>;

namespace {

/// Polls (with a deadline) until the server shows the probe statement running in another session.
bool probe_running_on_server(pg_connection& observer, std::chrono::seconds timeout) {
  return kysera::test::eventually(
      [&] {
        auto r = observer.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
            "AND query LIKE '%kysera_shutdown_probe%'");
        return r[0][0].as<long>() > 0;
      },
      timeout, 20ms);
}

pg_pool make_pool(std::size_t max_size) {
  return pg_pool(
      [] { return std::make_unique<pg_connection>(kysera::test::servers::postgres_url()); },
      {.max_size = max_size});
}

}  // namespace

TEST_CASE("a PostgreSQL query in flight when SIGTERM arrives finishes before the pool closes",
          "[shutdown][postgres]") {
  pg_connection observer(kysera::test::servers::postgres_url());
  child_process child({KYSERA_SHUTDOWN_PG_CHILD, "query-in-flight"});
  require_line(child, "mark:ready");
  require_line(child, "mark:leased");
  {
    const bool running = probe_running_on_server(observer, 20s);
    INFO(child.output());
    REQUIRE(running);
  }
  child.send(SIGTERM);
  const auto status = child.wait_exit(40s);
  const auto& out = child.output();
  INFO(out);
  REQUIRE(status.has_value());
  CHECK(status->exited);
  CHECK(status->code == 0);
  CHECK(child.count("mark:query-done:42") == 1);
  CHECK(child.count("query-failed") == 0);
  CHECK(child.count("mark:on_shutdown") == 1);
  // The pool began closing while the query ran, waited for its lease, then the shutdown finished.
  const auto closing = child.position("log:info:Closing database");
  const auto done = child.position("mark:query-done");
  const auto complete = child.position("log:info:Shutdown complete");
  REQUIRE(closing != std::string::npos);
  REQUIRE(done != std::string::npos);
  CHECK(closing < done);
  CHECK(done < complete);
  CHECK(child.count("connections still in use") == 0);
  CHECK(child.count("Sanitizer") == 0);
}

TEST_CASE("SIGTERM while the server is paused cuts the leased session at the deadline and exits with status 1",
          "[shutdown][postgres][deadline]") {
  pg_connection observer(kysera::test::servers::postgres_url());
  child_process child({KYSERA_SHUTDOWN_PG_CHILD, "paused-server"});
  require_line(child, "mark:ready");
  require_line(child, "mark:leased");
  {
    const bool running = probe_running_on_server(observer, 20s);
    INFO(child.output());
    REQUIRE(running);
  }
  std::optional<child_process::exit_status> status;
  std::chrono::steady_clock::duration took{};
  {
    kysera::test::servers::pause_guard paused("postgres");
    const auto sent = std::chrono::steady_clock::now();
    child.send(SIGTERM);
    status = child.wait_exit(30s);
    took = std::chrono::steady_clock::now() - sent;
  }
  const auto& out = child.output();
  INFO(out);
  REQUIRE(status.has_value());
  CHECK(status->exited);
  CHECK(status->code == 1);
  CHECK(took < 1s + 2s);  // the 1 s shutdown timeout plus a margin for a loaded machine
  CHECK(child.count("Closing pool: cut 1 session(s) still running a statement at the deadline: postgres ") == 1);
  CHECK(child.count("mark:query-done") == 0);
  CHECK(child.count("Sanitizer") == 0);
  // Nothing of the child is left on the server once it runs again.
  CHECK(kysera::test::eventually(
      [&] {
        auto r = observer.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'kysera-shutdown-pg-child'");
        return r[0][0].as<long>() == 0;
      },
      20s, 20ms));
}

TEST_CASE("SIGTERM stops a health monitor in on_shutdown and then closes its pool",
          "[shutdown][postgres]") {
  child_process child({KYSERA_SHUTDOWN_PG_CHILD, "monitor-and-pool"});
  require_line(child, "mark:ready");
  require_line(child, "mark:health:");  // the monitor has checked the pool at least once
  child.send(SIGTERM);
  const auto status = child.wait_exit(40s);
  INFO(child.output());
  REQUIRE(status.has_value());
  CHECK(status->exited);
  CHECK(status->code == 0);
  CHECK(child.count("mark:monitor-stopped\n") == 1);
  CHECK(child.count("health-after-stop") == 0);
  const auto stopped = child.position("mark:monitor-stopped");
  const auto closing = child.position("log:info:Closing database");
  const auto complete = child.position("log:info:Shutdown complete");
  REQUIRE(stopped != std::string::npos);
  CHECK(stopped < closing);
  CHECK(closing < complete);
  CHECK(child.count("Sanitizer") == 0);
}

TEST_CASE("a controller shuts a monitor and a pool down in order, and readiness follows it",
          "[shutdown][postgres]") {
  auto pool = make_pool(3);
  log_capture log;
  std::mutex events_mutex;
  std::vector<std::string> events;
  auto record = [&](std::string e) {
    std::lock_guard lock(events_mutex);
    events.push_back(std::move(e));
  };

  health::health_monitor monitor(pool, {.pool = infra::pool::create_metrics_pool(pool),
                                        .interval = 50ms,
                                        .timeout = 5s,
                                        .logger = &log});
  std::atomic<int> checks{0};
  std::atomic<bool> monitor_stopped{false};
  std::atomic<int> checks_after_stop{0};
  monitor.start([&](const health::health_check_result&) {
    ++checks;
    if (monitor_stopped) ++checks_after_stop;
  });

  sd::register_shutdown_options options;
  options.timeout = 20s;
  options.logger = &log;
  std::atomic<const sd::shutdown_controller*> controller_ptr{nullptr};
  options.on_shutdown = [&] {
    // What a readiness probe reads: false from the moment the shutdown started.
    record(controller_ptr.load()->is_shutting_down() ? "not ready" : "still ready");
    monitor.stop();
    monitor_stopped = true;
    record(monitor.is_running() ? "monitor running" : "monitor stopped");
    // The pool is still open here: on_shutdown may drain work through it.
    pool.execute("SELECT 1");
    record("pool usable in on_shutdown");
  };
  auto controller = sd::create_shutdown_controller(pool, options);
  controller_ptr = &controller;
  auto ready = [&] { return !controller.is_shutting_down(); };

  // Let the monitor check a few times first.
  REQUIRE(kysera::test::eventually([&] { return checks >= 2; }, 20s, 10ms));
  CHECK(ready());

  controller.execute();
  CHECK_FALSE(ready());
  CHECK_FALSE(monitor.is_running());
  CHECK(checks_after_stop == 0);
  {
    std::lock_guard lock(events_mutex);
    CHECK(events ==
          std::vector<std::string>{"not ready", "monitor stopped", "pool usable in on_shutdown"});
  }
  // Closed: no connection left open, new work refused with pool_closed.
  CHECK(pool.get_metrics().total == 0);
  try {
    pool.execute("SELECT 1");
    FAIL("the pool still accepted work");
  } catch (const infra::database_error& e) {
    CHECK(e.code() == infra::errc::pool_closed);
  }
  const int running = log.index_of("info: Running on_shutdown");
  const int closing = log.index_of("info: Closing database");
  const int complete = log.index_of("info: Shutdown complete");
  REQUIRE(running >= 0);
  CHECK(running < closing);
  CHECK(closing < complete);
  // A second execute is a no-op that reports the same success.
  controller.execute();
  CHECK(checks_after_stop == 0);
}

#endif  // KYSERA_INFRA_HAS_POSTGRES

#if defined(KYSERA_INFRA_HAS_MYSQL)
#include <kysera/infra/adapters/mysql.hpp>

#ifndef KYSERA_SHUTDOWN_MYSQL_CHILD
#error \
    "KYSERA_SHUTDOWN_MYSQL_CHILD must name the kysera-shutdown-mysql-child executable (tests/shutdown/tests.cmake)"
#endif

using my_connection = infra::mysql::connection;

namespace {

long long my_scalar(my_connection& c, const std::string& sql) {
  return std::stoll(c.execute(sql).at(0, 0).value());
}

/// The connection ids of the child's sessions, from its "mark:session:<id>" lines.
std::vector<std::string> announced_sessions(const std::string& output) {
  constexpr std::string_view tag = "mark:session:";
  std::vector<std::string> ids;
  for (auto at = output.find(tag); at != std::string::npos; at = output.find(tag, at)) {
    at += tag.size();
    const auto end = output.find('\n', at);
    if (end == std::string::npos) break;
    ids.push_back(output.substr(at, end - at));
  }
  return ids;
}

/// The name the pool logs for a session on the test server: the URL without its password.
std::string mysql_session_name() {
  std::string url = kysera::test::servers::mysql_url();
  const std::string secret = ":" + kysera::test::servers::mysql_password() + "@";
  const auto at = url.find(secret);
  if (at != std::string::npos) url.replace(at, secret.size(), "@");
  return "mysql " + url;
}

}  // namespace

TEST_CASE("SIGTERM while MariaDB is paused cuts the leased session at the deadline and exits with status 1",
          "[shutdown][mysql][deadline]") {
  my_connection observer(kysera::test::servers::mysql_url());
  child_process child({KYSERA_SHUTDOWN_MYSQL_CHILD, "paused-server"});
  require_line(child, "mark:ready");
  require_line(child, "mark:leased:");
  {
    const bool running = kysera::test::eventually(
        [&] {
          return my_scalar(observer,
                           "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() "
                           "AND INFO LIKE '%kysera_shutdown_probe%'") > 0;
        },
        20s, 20ms);
    INFO(child.output());
    REQUIRE(running);
  }
  std::optional<child_process::exit_status> status;
  std::chrono::steady_clock::duration took{};
  {
    kysera::test::servers::pause_guard paused("mysql");
    const auto sent = std::chrono::steady_clock::now();
    child.send(SIGTERM);
    status = child.wait_exit(30s);
    took = std::chrono::steady_clock::now() - sent;
  }
  const auto& out = child.output();
  INFO(out);
  INFO("exit after SIGTERM: " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  REQUIRE(status.has_value());
  CHECK(status->exited);
  CHECK(status->code == 1);
  CHECK(took < 1s + 2s);  // the 1 s shutdown timeout plus a margin for a loaded machine
  CHECK(child.count("log:error:Closing pool: cut 1 session(s) still running a statement at the deadline: " +
                    mysql_session_name() + "\n") == 1);
  CHECK(child.count("mark:query-done") == 0);
  CHECK(child.count("Sanitizer") == 0);
  // Nothing of the child is left on the server once it runs again: none of its sessions, and no
  // session still running the probe.
  const auto ids = announced_sessions(out);
  REQUIRE_FALSE(ids.empty());
  std::string id_list;
  for (const auto& id : ids) id_list += (id_list.empty() ? "" : ", ") + id;
  CHECK(kysera::test::eventually(
      [&] {
        return my_scalar(observer,
                         "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() AND (ID IN (" +
                             id_list + ") OR INFO LIKE '%kysera_shutdown_probe%')") == 0;
      },
      20s, 20ms));
}

#endif  // KYSERA_INFRA_HAS_MYSQL
