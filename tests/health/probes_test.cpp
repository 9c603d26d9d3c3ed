// probes: liveness never follows the database; startup after the first success; readiness with
// failure/success hysteresis; a drain turns readiness off for good. Over a real monitor on the
// manual clock with the fake database.

#include "support/catch.hpp"
#include "health/support_probes.hpp"
#include "support/eventually.hpp"
#include "support/fake_database.hpp"
#include "support/manual_clock.hpp"

#include <kysera/infra/health.hpp>

#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
namespace health = kysera::infra::health;
using namespace std::chrono_literals;
using health::health_status;
using kysera::test::eventually;
using kysera::test::fake_database;
using kysera::test::manual_clock;

using kysera::test::health_support::result_of;

TEST_CASE("probes: nothing is ready or started before a check, but the process is alive", "[health]") {
  health::probes p;
  CHECK(p.liveness().ok);
  CHECK_FALSE(p.readiness().ok);
  CHECK(p.readiness().reason == "not ready: no successful health check yet");
  CHECK_FALSE(p.startup().ok);
  CHECK_FALSE(p.last_result());
}

TEST_CASE("probes: readiness needs failure_threshold failures in a row to drop (default 3)", "[health]") {
  health::probes p;
  p.record(result_of(health_status::healthy));
  CHECK(p.readiness().ok);
  CHECK(p.startup().ok);
  p.record(result_of(health_status::unhealthy));
  p.record(result_of(health_status::unhealthy));
  CHECK(p.readiness().ok);  // two failures: still ready
  p.record(result_of(health_status::healthy));
  p.record(result_of(health_status::unhealthy));
  p.record(result_of(health_status::unhealthy));
  CHECK(p.readiness().ok);  // the success in between restarted the count
  p.record(result_of(health_status::unhealthy));
  CHECK_FALSE(p.readiness().ok);
  CHECK(p.readiness().reason == "not ready: 3 consecutive failed health checks (refused)");
  CHECK(p.startup().ok);   // startup never goes back
  CHECK(p.liveness().ok);  // and liveness never depended on the database
  p.record(result_of(health_status::degraded));  // degraded counts as a success
  CHECK(p.readiness().ok);
}

TEST_CASE("probes: success_threshold successes in a row make it ready again", "[health]") {
  health::probes p({.failure_threshold = 1, .success_threshold = 2});
  p.record(result_of(health_status::healthy));
  CHECK_FALSE(p.readiness().ok);
  CHECK(p.startup().ok);
  p.record(result_of(health_status::healthy));
  CHECK(p.readiness().ok);
  p.record(result_of(health_status::unhealthy));
  CHECK_FALSE(p.readiness().ok);
  p.record(result_of(health_status::healthy));
  CHECK_FALSE(p.readiness().ok);
  p.record(result_of(health_status::healthy));
  CHECK(p.readiness().ok);
}

TEST_CASE("probes: begin_drain turns readiness off at once and for good", "[health]") {
  health::probes p;
  p.record(result_of(health_status::healthy));
  p.begin_drain();
  CHECK(p.draining());
  CHECK_FALSE(p.readiness().ok);
  CHECK(p.readiness().reason == "not ready: shutting down");
  p.record(result_of(health_status::healthy));
  CHECK_FALSE(p.readiness().ok);
  CHECK(p.liveness().ok);
}

TEST_CASE("probes: a liveness test of the process decides liveness alone", "[health]") {
  std::atomic<bool> alive{true};
  health::probes p({.liveness = [&] { return alive.load(); }});
  p.record(result_of(health_status::unhealthy));
  CHECK(p.liveness().ok);
  alive = false;
  CHECK_FALSE(p.liveness().ok);
}

TEST_CASE("probes: thresholds below 1 are rejected", "[health]") {
  CHECK_THROWS_AS(health::probes({.failure_threshold = 0}), std::invalid_argument);
  CHECK_THROWS_AS(health::probes({.success_threshold = 0}), std::invalid_argument);
  health::probes without_monitor;
  CHECK_THROWS_AS(without_monitor.start(), std::logic_error);
}

TEST_CASE("probes over a monitor follow its periodic checks of the fake database", "[health]") {
  manual_clock::reset();
  fake_database db;
  health::health_monitor_options o;
  o.interval = 10s;
  o.logger = &infra::silent_logger();
  health::health_monitor<fake_database, manual_clock> monitor(db, o);
  health::probes p(monitor, {.failure_threshold = 2});
  std::atomic<int> seen{0};
  p.start([&](const health::health_check_result&) { ++seen; });
  REQUIRE(eventually([&] { return seen.load() == 1; }));
  CHECK(p.readiness().ok);
  CHECK(p.startup().ok);

  db.fail_always(infra::errc::connection_refused);
  manual_clock::advance(10s);
  REQUIRE(eventually([&] { return seen.load() == 2; }));
  CHECK(p.readiness().ok);  // one failure of two
  manual_clock::advance(10s);
  REQUIRE(eventually([&] { return seen.load() == 3; }));
  CHECK_FALSE(p.readiness().ok);
  CHECK(p.liveness().ok);

  db.clear_failures();
  manual_clock::advance(10s);
  REQUIRE(eventually([&] { return seen.load() == 4; }));
  CHECK(p.readiness().ok);
  monitor.stop();
}

TEST_CASE("probes answer from many threads while results arrive", "[health]") {
  health::probes p({.failure_threshold = 1});
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  std::atomic<long> answers{0};
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&] {
      while (!stop) {
        (void)p.readiness();
        (void)p.startup();
        (void)p.last_result();
        ++answers;
      }
    });
  }
  // Record until the readers have answered many times while results changed under them.
  for (int i = 0; i < 2000 || answers.load() < 3000; ++i) {
    p.record(result_of(i % 2 ? health_status::healthy : health_status::unhealthy));
  }
  p.record(result_of(health_status::healthy));
  stop = true;
  for (auto& t : readers) t.join();
  CHECK(p.readiness().ok);  // the last one recorded was a success
  CHECK(answers.load() >= 3000);
}
