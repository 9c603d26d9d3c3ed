// The drain step of a shutdown: on_drain first and at once (readiness off), then the drain
// interval, then on_shutdown and close; default 0 keeps the old order and timing.
#include "support/catch.hpp"
#include "support/fake_database.hpp"
#include "support_log.hpp"

#include <kysera/infra/health/probes.hpp>
#include <kysera/infra/shutdown.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace health = kysera::infra::health;
namespace sd = kysera::infra::shutdown;
using kysera::test::fake_database;
using kysera::test::log_capture;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

TEST_CASE("graceful_shutdown: readiness turns off at once, on_shutdown waits out the drain", "[shutdown]") {
  fake_database db;
  log_capture log;
  health::probes probes;
  health::health_check_result ok;
  ok.status = health::health_status::healthy;
  probes.record(ok);
  REQUIRE(probes.readiness().ok);

  clock_type::time_point drained_at{}, shutdown_at{};
  bool ready_during_on_shutdown = true;
  const auto start = clock_type::now();
  sd::graceful_shutdown(db, {.timeout = 5s,
                             .on_shutdown =
                                 [&] {
                                   shutdown_at = clock_type::now();
                                   ready_during_on_shutdown = probes.readiness().ok;
                                 },
                             .logger = &log,
                             .drain = 150ms,
                             .on_drain =
                                 [&] {
                                   drained_at = clock_type::now();
                                   probes.begin_drain();
                                 }});
  CHECK(drained_at - start < 100ms);        // at once
  CHECK(shutdown_at - drained_at >= 150ms);  // after the whole drain
  CHECK_FALSE(ready_during_on_shutdown);
  CHECK(db.is_closed());
  CHECK(log.index_of("Draining for 150 ms") >= 0);
  CHECK(log.index_of("Draining for 150 ms") < log.index_of("Running on_shutdown"));
}

TEST_CASE("graceful_shutdown: no drain by default, and on_drain still runs first", "[shutdown]") {
  fake_database db;
  log_capture log;
  std::vector<std::string> steps;
  sd::graceful_shutdown(db, {.on_shutdown = [&] { steps.push_back("on_shutdown"); },
                             .logger = &log,
                             .on_drain = [&] { steps.push_back("on_drain"); }});
  CHECK(steps == std::vector<std::string>{"on_drain", "on_shutdown"});
  CHECK_FALSE(log.contains("Draining"));
  CHECK(db.is_closed());
}

TEST_CASE("graceful_shutdown: an on_drain that throws is logged and the shutdown goes on", "[shutdown]") {
  fake_database db;
  log_capture log;
  sd::graceful_shutdown(db, {.logger = &log, .on_drain = [] { throw std::runtime_error("boom"); }});
  CHECK(log.contains("on_drain threw: boom"));
  CHECK(db.is_closed());
}

TEST_CASE("graceful_shutdown and the controller reject a negative drain", "[shutdown]") {
  fake_database db;
  CHECK_THROWS_AS(sd::graceful_shutdown(db, {.drain = -1ms}), std::invalid_argument);
  CHECK_FALSE(db.is_closed());
  sd::register_shutdown_options o;
  o.drain = -1ms;
  CHECK_THROWS_AS(sd::create_shutdown_controller(db, o), std::invalid_argument);
}

TEST_CASE("shutdown_controller: execute() drains, and converts drain options", "[shutdown]") {
  fake_database db;
  log_capture log;
  std::atomic<bool> drained{false};
  sd::register_shutdown_options o;
  o.logger = &log;
  o.drain = 20ms;
  o.on_drain = [&] { drained = true; };
  const sd::shutdown_options converted = o;
  CHECK(converted.drain == 20ms);
  CHECK(converted.on_drain);
  auto controller = sd::create_shutdown_controller(db, o);
  controller.execute();
  CHECK(drained);
  CHECK(log.contains("Draining for 20 ms"));
  CHECK(db.is_closed());
}
