// perform_health_check / check_database_health against fakes: classification, messages, pool
// metrics, verbose, timeouts with and without cancel, options.

#include "support/catch.hpp"
#include "support/fake_database.hpp"
#include "support/manual_clock.hpp"
#include "health/support_health.hpp"

#include <kysera/infra/health.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
namespace health = kysera::infra::health;
using namespace std::chrono_literals;
using health::health_status;
using kysera::test::fake_database;
using kysera::test::manual_clock;
using kysera::test::minimal_database;
using kysera::test::health_support::capture_logger;
using kysera::test::health_support::fake_pool;
using kysera::test::health_support::gate_database;

namespace {

// Runs one check whose probe takes exactly `latency` on the manual clock.
health::health_check_result check_taking(std::chrono::nanoseconds latency, health::health_check_options o = {}) {
  manual_clock::reset();
  fake_database db;
  db.on_next([latency] { manual_clock::advance(latency); });
  o.logger = &infra::silent_logger();
  return health::perform_health_check<manual_clock>(db, o);
}

struct version_fails_database {
  void execute(std::string_view) {}
  void close() {}
  std::string server_version() { throw std::runtime_error("version query failed"); }
};

struct throws_int_database {
  void execute(std::string_view) { throw 42; }
  void close() {}
};

}  // namespace

TEST_CASE("to_string names the three statuses in lower case", "[health]") {
  STATIC_REQUIRE(health::to_string(health_status::healthy) == "healthy");
  STATIC_REQUIRE(health::to_string(health_status::degraded) == "degraded");
  STATIC_REQUIRE(health::to_string(health_status::unhealthy) == "unhealthy");
}

TEST_CASE("a successful check is healthy with one Database Connection check", "[health]") {
  fake_database db;
  const auto before = std::chrono::system_clock::now();
  auto r = health::check_database_health(db);
  CHECK(r.status == health_status::healthy);
  REQUIRE(r.checks.size() == 1);
  CHECK(r.checks[0].name == "Database Connection");
  CHECK(r.checks[0].status == health_status::healthy);
  CHECK(r.checks[0].message.rfind("Connected successfully (", 0) == 0);
  CHECK(r.checks[0].message.find(" ms)") != std::string::npos);
  CHECK(r.errors.empty());
  REQUIRE(r.metrics.check_latency.has_value());
  CHECK(*r.metrics.check_latency >= 0.0);
  CHECK_FALSE(r.metrics.pool_metrics.has_value());
  CHECK_FALSE(r.metrics.database_version.has_value());
  CHECK(r.timestamp >= before);
  CHECK(db.executed() == std::vector<std::string>{"SELECT 1"});
}

TEST_CASE("latency is classified with the default thresholds on a manual clock", "[health]") {
  struct row {
    std::chrono::nanoseconds latency;
    health_status status;
    const char* message;
  };
  const row rows[] = {
      {0ms, health_status::healthy, "Connected successfully (0.00 ms)"},
      {99'990us, health_status::healthy, "Connected successfully (99.99 ms)"},
      {100ms, health_status::degraded, "Connected successfully (100.00 ms)"},
      {499'990us, health_status::degraded, "Connected successfully (499.99 ms)"},
      {500ms, health_status::unhealthy, "Connected successfully (500.00 ms)"},
      {2s, health_status::unhealthy, "Connected successfully (2000.00 ms)"},
  };
  for (const auto& x : rows) {
    auto r = check_taking(x.latency);
    INFO(x.message);
    CHECK(r.status == x.status);
    REQUIRE(r.checks.size() == 1);
    CHECK(r.checks[0].status == x.status);  // the check's status follows the latency class
    CHECK(r.checks[0].message == x.message);
    CHECK(r.metrics.check_latency == std::chrono::duration<double, std::milli>(x.latency).count());
    CHECK(r.errors.empty());
  }
}

TEST_CASE("latency thresholds are configurable", "[health]") {
  health::health_check_options o;
  o.degraded_threshold = 10ms;
  o.unhealthy_threshold = 20ms;
  CHECK(check_taking(9ms, o).status == health_status::healthy);
  CHECK(check_taking(10ms, o).status == health_status::degraded);
  CHECK(check_taking(19ms, o).status == health_status::degraded);
  CHECK(check_taking(20ms, o).status == health_status::unhealthy);
  o.degraded_threshold = 0ms;
  o.unhealthy_threshold = 0ms;
  CHECK(check_taking(0ms, o).status == health_status::unhealthy);
}

TEST_CASE("the latency is rounded to 2 decimals and classified after rounding", "[health]") {
  auto up = check_taking(12'346us);
  CHECK(up.metrics.check_latency == 12.35);
  CHECK(up.checks[0].message == "Connected successfully (12.35 ms)");
  auto down = check_taking(12'344us);
  CHECK(down.metrics.check_latency == 12.34);
  auto edge = check_taking(99'996us);  // reported as 100.00, so degraded
  CHECK(edge.metrics.check_latency == 100.0);
  CHECK(edge.status == health_status::degraded);
}

TEST_CASE("a failing probe is unhealthy and carries the error message", "[health]") {
  fake_database db;
  db.fail_next(infra::errc::connection_refused, "fake: could not connect (connecting to fake://db)");
  const std::string expected =
      infra::database_error(infra::errc::connection_refused, "fake: could not connect (connecting to fake://db)")
          .what();
  auto r = health::check_database_health(db);
  CHECK(r.status == health_status::unhealthy);
  REQUIRE(r.checks.size() == 1);
  CHECK(r.checks[0].name == "Database Connection");
  CHECK(r.checks[0].status == health_status::unhealthy);
  CHECK(r.checks[0].message == expected);  // the error's what(), unchanged
  CHECK(r.errors == std::vector<std::string>{expected});
  CHECK_FALSE(r.metrics.check_latency.has_value());
}

TEST_CASE("non-standard exceptions from the database become an unhealthy result", "[health]") {
  throws_int_database db;
  health::health_check_result r;
  REQUIRE_NOTHROW(r = health::check_database_health(db));
  CHECK(r.status == health_status::unhealthy);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("non-standard exception") != std::string::npos);
}

TEST_CASE("pool metrics are added on success and on failure", "[health]") {
  fake_pool pool;
  pool.metrics = {4, 1, 3, 2, 10};
  auto handle = infra::pool::create_metrics_pool(pool);
  fake_database db;
  auto ok = health::check_database_health(db, handle);
  CHECK(ok.status == health_status::healthy);
  CHECK(ok.metrics.pool_metrics == infra::pool::pool_metrics{4, 1, 3, 2, 10});

  db.fail_next(infra::errc::connection_lost, "fake: connection lost");
  health::health_check_options o;
  o.pool = handle;
  o.logger = &infra::silent_logger();
  auto bad = health::perform_health_check(db, o);
  CHECK(bad.status == health_status::unhealthy);
  CHECK(bad.metrics.pool_metrics == infra::pool::pool_metrics{4, 1, 3, 2, 10});

  SECTION("a pool whose metrics throw is left out and logged, the check still answers") {
    pool.throw_on_metrics = true;
    capture_logger log;
    o.logger = &log;
    health::health_check_result r;
    REQUIRE_NOTHROW(r = health::perform_health_check(db, o));
    CHECK(r.status == health_status::healthy);
    CHECK_FALSE(r.metrics.pool_metrics.has_value());
    CHECK(log.count(infra::log_level::warn, "pool metrics unavailable") == 1);
  }
}

TEST_CASE("verbose asks the database for its real version where it can tell", "[health]") {
  health::health_check_options o;
  o.logger = &infra::silent_logger();
  fake_database fake;
  CHECK_FALSE(health::perform_health_check(fake, o).metrics.database_version.has_value());
  o.verbose = true;
  CHECK(health::perform_health_check(fake, o).metrics.database_version == std::optional<std::string>("fake 1.0"));

  minimal_database minimal;  // no server_version(): nothing is made up
  auto r = health::perform_health_check(minimal, o);
  CHECK(r.status == health_status::healthy);
  CHECK_FALSE(r.metrics.database_version.has_value());

  version_fails_database failing;  // a failing version query does not fail the check
  capture_logger log;
  o.logger = &log;
  auto v = health::perform_health_check(failing, o);
  CHECK(v.status == health_status::healthy);
  CHECK_FALSE(v.metrics.database_version.has_value());
  CHECK(log.count(infra::log_level::debug, "version query failed") == 1);
}

TEST_CASE("invalid health check options throw invalid_argument naming the field", "[health]") {
  fake_database db;
  auto throws_naming = [&](health::health_check_options o, const std::string& field) {
    try {
      (void)health::perform_health_check(db, o);
      FAIL("accepted bad " << field);
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find(field) != std::string::npos);
    }
  };
  health::health_check_options o;
  o.timeout = 0ms;
  throws_naming(o, "timeout");
  o = {};
  o.degraded_threshold = -1ms;
  throws_naming(o, "degraded_threshold");
  o = {};
  o.unhealthy_threshold = 50ms;
  throws_naming(o, "unhealthy_threshold");
  CHECK(db.execute_count() == 0);  // rejected before any work
}

TEST_CASE("a probe that outlives the timeout is cancelled and reported unhealthy in time", "[health]") {
  fake_database db;
  db.block_next();
  capture_logger log;
  health::health_check_options o;
  o.timeout = 250ms;  // long enough for the probe to reach the database on a busy machine
  o.logger = &log;
  const auto start = std::chrono::steady_clock::now();
  auto r = health::perform_health_check(db, o);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed >= 250ms);
  CHECK(elapsed < 250ms + 1s);  // generous scheduling margin on a shared 2-core machine
  CHECK(r.status == health_status::unhealthy);
  REQUIRE(r.checks.size() == 1);
  CHECK(r.checks[0].message == "Health check timed out after 250 ms");
  CHECK(r.errors == std::vector<std::string>{"Health check timed out after 250 ms"});
  CHECK_FALSE(r.metrics.check_latency.has_value());
  CHECK(db.cancel_calls() == 1);
  CHECK(log.count(infra::log_level::warn, "timed out after 250 ms; the probe was cancelled") == 1);

  // The cancelled probe ends; the next check works (and waits for the old probe first).
  o.timeout = 10s;
  CHECK(health::perform_health_check(db, o).status == health_status::healthy);
}

TEST_CASE("a probe that cannot be cancelled finishes in the background and the next check waits for it",
          "[health]") {
  gate_database db;
  db.hold();
  health::health_check_options o;
  o.timeout = 50ms;
  o.logger = &infra::silent_logger();
  auto first = health::perform_health_check(db, o);
  CHECK(first.status == health_status::unhealthy);
  CHECK(first.errors == std::vector<std::string>{"Health check timed out after 50 ms"});
  db.wait_for_in_flight(1);  // the probe runs on in the background (it may start late on a busy machine)

  // A second check does not stack another blocked probe on the same database.
  auto second = health::perform_health_check(db, o);
  CHECK(second.status == health_status::unhealthy);
  REQUIRE(second.errors.size() == 1);
  CHECK(second.errors[0].find("an earlier health probe of this database has not returned yet") != std::string::npos);
  CHECK(db.max_in_flight() == 1);
  CHECK(db.executed() == 1);

  db.let_go();
  o.timeout = 10s;
  auto third = health::perform_health_check(db, o);
  CHECK(third.status == health_status::healthy);
  CHECK(db.executed() == 2);
  CHECK(db.max_in_flight() == 1);
}

TEST_CASE("concurrent checks of one database from many threads all answer", "[health]") {
  fake_database db;
  std::vector<std::thread> threads;
  std::atomic<int> healthy{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (health::check_database_health(db).status != health_status::unhealthy) ++healthy;
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(healthy == 200);
  CHECK(db.execute_count() == 200);
}

TEST_CASE("a timeout too large for the clock means no limit instead of timing out at once", "[health]") {
  // milliseconds::max() (and 300 years) overflow steady_clock's nanoseconds: the deadline
  // saturates at time_point::max(), it does not wrap into the past.
  for (auto timeout : {std::chrono::milliseconds::max(), std::chrono::milliseconds(std::chrono::hours(24 * 365 * 300))}) {
    INFO("timeout " << timeout.count() << " ms");
    fake_database db;
    health::health_check_options o;
    o.timeout = timeout;
    o.logger = &infra::silent_logger();
    auto r = health::perform_health_check(db, o);
    CHECK(r.status == health_status::healthy);
    REQUIRE(r.checks.size() == 1);
    CHECK(r.checks[0].message.rfind("Connected successfully (", 0) == 0);
    CHECK(r.errors.empty());
  }
}

TEST_CASE("a check with a huge timeout waits for a slow probe and reports it healthy", "[health]") {
  gate_database db;
  db.hold();
  health::health_check_options o;
  o.timeout = std::chrono::milliseconds::max();
  o.unhealthy_threshold = std::chrono::milliseconds::max();  // latency on a busy machine is no concern here
  o.degraded_threshold = std::chrono::milliseconds::max();
  o.logger = &infra::silent_logger();
  auto pending = std::async(std::launch::async, [&] { return health::perform_health_check(db, o); });
  db.wait_for_in_flight(1);
  // Still waiting well after the probe started: a wrapped deadline would have returned at once.
  CHECK(pending.wait_for(100ms) == std::future_status::timeout);
  db.let_go();
  auto r = pending.get();
  CHECK(r.status == health_status::healthy);
  CHECK(r.errors.empty());
  CHECK(db.executed() == 1);
}
