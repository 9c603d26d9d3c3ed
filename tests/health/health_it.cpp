// The health module against the real servers (PostgreSQL, MariaDB) and a real SQLite file:
// healthy checks with the real version, stopped servers, paused servers (SIGSTOP) and the
// timeout, pools, the monitor and with_debug.

#include "support/catch.hpp"
#include "support/servers.hpp"
#include "health/support_health.hpp"

#if defined(KYSERA_INFRA_HAS_MYSQL)
#include <kysera/infra/adapters/mysql.hpp>
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include <kysera/infra/adapters/postgres.hpp>
#endif
#if defined(KYSERA_INFRA_HAS_SQLITE)
#include <kysera/infra/adapters/sqlite.hpp>
#endif
#include <kysera/infra/health.hpp>
#include <kysera/infra/pool/connection_pool.hpp>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

namespace infra = kysera::infra;
namespace health = kysera::infra::health;
namespace servers = kysera::test::servers;
using namespace std::chrono_literals;
using health::health_status;
using kysera::test::health_support::eventually;

namespace {

health::health_check_options quiet(std::chrono::milliseconds timeout = 5s) {
  health::health_check_options o;
  o.timeout = timeout;
  o.logger = &infra::silent_logger();
  return o;
}

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

/// Every text of a result, for the password checks.
[[maybe_unused]] std::string all_text(const health::health_check_result& r) {  // server tests only
  std::string text;
  for (const auto& c : r.checks) text += c.name + "\n" + c.message + "\n";
  for (const auto& e : r.errors) text += e + "\n";
  if (r.metrics.database_version) text += *r.metrics.database_version;
  return text;
}

/// A check of `db` that fails, then checks after the server is back.
template <class Connection>
void check_stopped_server(Connection& db, const std::string& server, const std::string& password) {
  REQUIRE(health::perform_health_check(db, quiet()).status == health_status::healthy);
  servers::stop_guard stopped(server);
  for (int attempt = 0; attempt < 2; ++attempt) {  // the broken session, then the failed reconnect
    const auto start = std::chrono::steady_clock::now();
    auto r = health::perform_health_check(db, quiet());
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    INFO(all_text(r));
    CHECK(r.status == health_status::unhealthy);
    REQUIRE(r.errors.size() == 1);
    CHECK(r.checks[0].message == r.errors[0]);
    CHECK(contains(r.errors[0], std::string(Connection::backend_name)));  // names the backend
    CHECK(contains(r.errors[0], "connection"));                           // and the problem
    CHECK_FALSE(contains(r.errors[0], "timed out"));  // it failed, it did not hang
    CHECK_FALSE(contains(all_text(r), password));
    CHECK_FALSE(r.metrics.check_latency.has_value());
  }
  stopped.start();
  CHECK(eventually([&] { return health::perform_health_check(db, quiet()).status != health_status::unhealthy; }));
}

/// A paused server: the check reports the timeout on time; after SIGCONT the connection works.
template <class Connection>
void check_paused_server(Connection& db, const std::string& server, const std::string& password) {
  REQUIRE(health::perform_health_check(db, quiet()).status == health_status::healthy);
  {
    servers::pause_guard paused(server);
    const auto start = std::chrono::steady_clock::now();
    kysera::test::health_support::capture_logger log;
    auto o = quiet(1000ms);
    o.logger = &log;
    auto r = health::perform_health_check(db, o);
    const auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(elapsed >= 1000ms);
    CHECK(elapsed < 1000ms + 750ms);  // the timeout plus a scheduling margin
    CHECK(r.status == health_status::unhealthy);
    CHECK(r.errors == std::vector<std::string>{"Health check timed out after 1000 ms"});
    CHECK_FALSE(contains(all_text(r), password));
    // The probe ran on this thread and the adapter shut the session down at the deadline.
    CHECK(log.count(infra::log_level::warn, "no answer by the deadline; the session was shut down") == 1);
    for (const auto& entry : log.entries()) CHECK_FALSE(contains(entry.second, password));

    // The session is gone: the second check reconnects on a probe thread, which the paused
    // server holds up. It still answers on time.
    const auto again = std::chrono::steady_clock::now();
    auto second = health::perform_health_check(db, quiet(300ms));
    CHECK(std::chrono::steady_clock::now() - again < 300ms + 750ms);
    CHECK(second.status == health_status::unhealthy);
    paused.resume();
  }
  // The stuck reconnect finishes once the server runs again; the session is usable.
  CHECK(eventually([&] { return health::perform_health_check(db, quiet(10s)).status == health_status::healthy; }));
  CHECK_NOTHROW(db.execute("SELECT 1"));
}

}  // namespace

// ------------------------------------------------------------------------------- healthy

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres: a live server is healthy and verbose reports its real version", "[health][postgres]") {
  infra::postgres::connection db(servers::postgres_url());
  auto o = quiet();
  o.verbose = true;
  auto r = health::perform_health_check(db, o);
  INFO(all_text(r));
  CHECK(r.status != health_status::unhealthy);
  REQUIRE(r.metrics.check_latency.has_value());
  CHECK(*r.metrics.check_latency < 500.0);
  REQUIRE(r.metrics.database_version.has_value());
  CHECK(contains(*r.metrics.database_version, "PostgreSQL"));
  CHECK(health::check_database_health(db).status != health_status::unhealthy);
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql: a live server is healthy and verbose reports its real version", "[health][mysql]") {
  infra::mysql::connection db(servers::mysql_url());
  auto o = quiet();
  o.verbose = true;
  auto r = health::perform_health_check(db, o);
  INFO(all_text(r));
  CHECK(r.status != health_status::unhealthy);
  REQUIRE(r.metrics.database_version.has_value());
  CHECK(contains(*r.metrics.database_version, "MariaDB"));
  CHECK(health::check_database_health(db).status != health_status::unhealthy);
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("sqlite: a database file is healthy and counts as a pool of one", "[health][sqlite]") {
  const std::string path = std::string(KYSERA_TEST_BINARY_DIR) + "/health_it.sqlite";
  std::remove(path.c_str());
  infra::sqlite::connection db(path);
  auto o = quiet();
  o.verbose = true;
  o.pool = infra::pool::create_metrics_pool(db);
  auto r = health::perform_health_check(db, o);
  CHECK(r.status == health_status::healthy);
  CHECK(r.metrics.database_version == std::optional<std::string>(sqlite3_libversion()));
  CHECK(r.metrics.pool_metrics == infra::pool::pool_metrics{1, 0, 1, 0, 1});

  // A closed connection is the "stopped server" of SQLite: unhealthy, named, metrics still there.
  db.close();
  auto closed = health::perform_health_check(db, o);
  CHECK(closed.status == health_status::unhealthy);
  REQUIRE(closed.errors.size() == 1);
  CHECK(contains(closed.errors[0], "closed"));
  CHECK(closed.metrics.pool_metrics == infra::pool::pool_metrics{0, 0, 0, 0, 1});
  std::remove(path.c_str());
}
#endif

// ------------------------------------------------------------------------------- stopped

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres: a stopped server gives unhealthy naming the problem without the password",
          "[health][postgres]") {
  infra::postgres::connection db(servers::postgres_url());
  check_stopped_server(db, "postgres", servers::postgres_password());
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql: a stopped server gives unhealthy naming the problem without the password", "[health][mysql]") {
  infra::mysql::connection db(servers::mysql_url());
  check_stopped_server(db, "mysql", servers::mysql_password());
}
#endif

// ------------------------------------------------------------------------------- paused

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres: a paused server is reported unhealthy within the timeout and works after SIGCONT",
          "[health][postgres]") {
  infra::postgres::connection db(servers::postgres_url());
  check_paused_server(db, "postgres", servers::postgres_password());
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql: a paused server is reported unhealthy within the timeout and works after SIGCONT",
          "[health][mysql]") {
  infra::mysql::connection db(servers::mysql_url());
  check_paused_server(db, "mysql", servers::mysql_password());
}
#endif

// ------------------------------------------------------------------------------- pools, monitor, metrics

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres: a pool is checked with its metrics on success and on failure", "[health][postgres]") {
  const std::string url = servers::postgres_url();
  infra::pool::pool_options po;
  po.max_size = 4;
  po.acquire_timeout = 2s;
  po.housekeeping_interval = 0ms;
  po.logger = &infra::silent_logger();
  infra::pool::connection_pool<infra::postgres::connection> pool(
      [url] { return std::make_unique<infra::postgres::connection>(url); }, po);
  auto handle = infra::pool::create_metrics_pool(pool);
  auto ok = health::check_database_health(pool, handle);
  CHECK(ok.status != health_status::unhealthy);
  REQUIRE(ok.metrics.pool_metrics.has_value());
  CHECK(ok.metrics.pool_metrics->max == 4);
  CHECK(ok.metrics.pool_metrics->total == 1);
  CHECK(ok.metrics.pool_metrics->active == 0);  // the probe's lease has ended

  {
    servers::stop_guard stopped("postgres");
    auto bad = health::check_database_health(pool, handle);
    INFO(all_text(bad));
    CHECK(bad.status == health_status::unhealthy);
    REQUIRE(bad.metrics.pool_metrics.has_value());
    CHECK(bad.metrics.pool_metrics->max == 4);
    CHECK_FALSE(contains(all_text(bad), servers::postgres_password()));
  }
  CHECK(eventually([&] { return health::check_database_health(pool, handle).status != health_status::unhealthy; }));
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql: a monitor reports the live server and stops promptly", "[health][mysql]") {
  infra::mysql::connection db(servers::mysql_url());
  health::health_monitor_options o;
  o.interval = 1h;
  o.logger = &infra::silent_logger();
  health::health_monitor monitor(db, o);
  std::atomic<int> healthy{0};
  monitor.start([&](const health::health_check_result& r) {
    if (r.status != health_status::unhealthy) ++healthy;
  });
  REQUIRE(eventually([&] { return healthy.load() == 1; }));
  const auto start = std::chrono::steady_clock::now();
  monitor.stop();
  CHECK(std::chrono::steady_clock::now() - start < 500ms);
  CHECK(monitor.check_now().status != health_status::unhealthy);
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres: with_debug records real queries for get_metrics", "[health][postgres]") {
  infra::postgres::connection db(servers::postgres_url());
  auto dbg = health::with_debug(db, {.max_metrics = 100, .record_sql = true, .max_sql_length = 16});
  for (int i = 0; i < 10; ++i) dbg.execute("SELECT " + std::to_string(i) + " AS value_of_the_loop");
  CHECK_THROWS_AS(dbg.execute("SELECT * FROM no_such_table_here"), infra::database_error);
  CHECK(health::check_database_health(dbg).status != health_status::unhealthy);  // ping: not recorded
  auto m = dbg.query_metrics();
  REQUIRE(m.size() == 11);
  CHECK(m[0].sql == "SELECT 0 AS valu");
  CHECK(m[0].sql_truncated);
  CHECK(m[10].failed);
  auto r = health::get_metrics(dbg, {.period = "5m"});
  REQUIRE(r.queries.has_value());
  CHECK(r.queries->total == 11);
  CHECK(r.queries->error_count == 1);
  CHECK(r.queries->min_duration > 0.0);
  CHECK(r.queries->p99_duration >= r.queries->p95_duration);
  CHECK(r.queries->max_duration >= r.queries->p99_duration);
}
#endif
