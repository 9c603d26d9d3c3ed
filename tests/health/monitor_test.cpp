// health_monitor: schedule on a stepped clock, no overlap, prompt stop, restart, callbacks.

#include "support/catch.hpp"
#include "support/fake_database.hpp"
#include "support/manual_clock.hpp"
#include "health/support_health.hpp"

#include <kysera/infra/health.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <stdexcept>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
namespace health = kysera::infra::health;
using namespace std::chrono_literals;
using health::health_status;
using kysera::test::fake_database;
using kysera::test::manual_clock;
using kysera::test::health_support::capture_logger;
using kysera::test::health_support::eventually;
using kysera::test::health_support::gate_database;

namespace {

/// Collects callback invocations: how many, and the manual-clock time of each.
struct recorder {
  std::mutex mutex;
  std::condition_variable cv;
  std::vector<manual_clock::time_point> times;
  std::vector<health_status> statuses;

  health::health_check_callback callback() {
    return [this](const health::health_check_result& r) {
      {
        std::lock_guard lock(mutex);
        times.push_back(manual_clock::now());
        statuses.push_back(r.status);
      }
      cv.notify_all();
    };
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return times.size();
  }
  /// Waits (real time, with a deadline) until at least `n` callbacks ran.
  bool wait_for(std::size_t n) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, 20s, [&] { return times.size() >= n; });
  }
};

health::health_monitor_options quiet(std::chrono::milliseconds interval, capture_logger* log = nullptr) {
  health::health_monitor_options o;
  o.interval = interval;
  o.logger = log ? static_cast<infra::logger*>(log) : &infra::silent_logger();
  return o;
}

}  // namespace

TEST_CASE("the monitor checks at start and then once per interval on a stepped clock", "[health]") {
  manual_clock::reset();
  const auto t0 = manual_clock::now();
  fake_database db;
  recorder rec;
  health::health_monitor<fake_database, manual_clock> monitor(db, quiet(10s));
  CHECK_FALSE(monitor.is_running());
  CHECK_FALSE(monitor.get_last_check().has_value());
  monitor.start(rec.callback());
  CHECK(monitor.is_running());

  REQUIRE(rec.wait_for(1));
  CHECK(monitor.next_check_time() == t0 + 10s);
  REQUIRE(monitor.get_last_check().has_value());
  CHECK(monitor.get_last_check()->status == health_status::healthy);

  manual_clock::advance(10s);
  REQUIRE(rec.wait_for(2));
  CHECK(monitor.next_check_time() == t0 + 20s);

  manual_clock::advance(9s);  // not due yet: the schedule stays put
  CHECK(monitor.next_check_time() == t0 + 20s);
  manual_clock::advance(1s);
  REQUIRE(rec.wait_for(3));
  CHECK(monitor.next_check_time() == t0 + 30s);

  monitor.stop();
  CHECK_FALSE(monitor.is_running());
  CHECK_FALSE(monitor.next_check_time().has_value());
  CHECK(rec.times == std::vector<manual_clock::time_point>{t0, t0 + 10s, t0 + 20s});
  CHECK(db.execute_count() == 3);
}

TEST_CASE("a check that outlasts the interval is never overlapped and missed ticks are skipped", "[health]") {
  manual_clock::reset();
  const auto t0 = manual_clock::now();
  gate_database db;
  db.hold();
  recorder rec;
  auto o = quiet(10s);
  o.timeout = 60s;  // real time: the gate, not the timeout, ends the first check
  health::health_monitor<gate_database, manual_clock> monitor(db, o);
  monitor.start(rec.callback());
  db.wait_for_in_flight(1);

  manual_clock::advance(35s);  // ticks at 10, 20 and 30 s pass while the first check runs
  CHECK(db.executed() == 1);
  db.let_go();

  REQUIRE(rec.wait_for(1));
  CHECK(monitor.next_check_time() == t0 + 40s);
  CHECK(rec.statuses[0] == health_status::unhealthy);  // took 35 s on the manual clock

  manual_clock::advance(5s);
  REQUIRE(rec.wait_for(2));
  CHECK(monitor.next_check_time() == t0 + 50s);
  monitor.stop();
  CHECK(rec.count() == 2);
  CHECK(db.max_in_flight() == 1);
}

TEST_CASE("stop returns within milliseconds in the middle of an interval", "[health]") {
  fake_database db;
  recorder rec;
  health::health_monitor monitor(db, quiet(1h));
  monitor.start(rec.callback());
  REQUIRE(rec.wait_for(1));
  const auto start = std::chrono::steady_clock::now();
  monitor.stop();
  CHECK(std::chrono::steady_clock::now() - start < 500ms);
  CHECK_FALSE(monitor.is_running());
  CHECK(rec.count() == 1);
}

TEST_CASE("stop returns at once while a check is blocked and cancels its probe", "[health]") {
  fake_database db;
  db.block_next();
  recorder rec;
  auto o = quiet(1h);
  o.timeout = 1h;
  {
    health::health_monitor monitor(db, o);
    monitor.start(rec.callback());
    db.wait_until_blocked();
    const auto start = std::chrono::steady_clock::now();
    monitor.stop();
    CHECK(std::chrono::steady_clock::now() - start < 500ms);
    CHECK(rec.count() == 0);  // the abandoned check is not reported
    CHECK(db.cancel_calls() == 1);
  }
  // The cancelled probe ends in the background; a new check waits for it, then succeeds.
  health::health_check_options co;
  co.timeout = 10s;
  CHECK(health::perform_health_check(db, co).status == health_status::healthy);
}

TEST_CASE("start after stop begins a new run with the new callback", "[health]") {
  manual_clock::reset();
  fake_database db;
  recorder first;
  recorder second;
  health::health_monitor<fake_database, manual_clock> monitor(db, quiet(10s));
  monitor.start(first.callback());
  REQUIRE(first.wait_for(1));
  monitor.stop();
  monitor.start(second.callback());
  CHECK(monitor.is_running());
  REQUIRE(second.wait_for(1));  // the first check of the new run happens at start
  manual_clock::advance(10s);
  REQUIRE(second.wait_for(2));
  monitor.stop();
  CHECK(first.count() == 1);
  CHECK(second.count() == 2);
}

TEST_CASE("a second start while running is a no-op that keeps the first callback", "[health]") {
  manual_clock::reset();
  fake_database db;
  recorder first;
  recorder second;
  health::health_monitor<fake_database, manual_clock> monitor(db, quiet(10s));
  monitor.start(first.callback());
  monitor.start(second.callback());
  REQUIRE(first.wait_for(1));
  manual_clock::advance(10s);
  REQUIRE(first.wait_for(2));
  monitor.stop();
  CHECK(first.count() == 2);
  CHECK(second.count() == 0);
  CHECK(db.execute_count() == 2);  // one thread only
}

TEST_CASE("a throwing callback is logged once per throw and the monitor keeps running", "[health]") {
  manual_clock::reset();
  fake_database db;
  capture_logger log;
  std::atomic<int> calls{0};
  health::health_monitor<fake_database, manual_clock> monitor(db, quiet(10s, &log));
  monitor.start([&](const health::health_check_result&) {
    ++calls;
    throw std::runtime_error("callback exploded");
  });
  REQUIRE(eventually([&] { return log.count(infra::log_level::error, "callback exploded") == 1; }));
  manual_clock::advance(10s);
  REQUIRE(eventually([&] { return log.count(infra::log_level::error, "callback exploded") == 2; }));
  CHECK(monitor.is_running());
  monitor.stop();
  CHECK(calls == 2);  // never called twice for one result
  CHECK(db.execute_count() == 2);
  CHECK(log.count(infra::log_level::error, "callback exploded") == 2);

  SECTION("a non-standard exception is survived as well") {
    monitor.start([](const health::health_check_result&) { throw 7; });
    REQUIRE(eventually([&] { return log.count(infra::log_level::error, "non-standard exception") == 1; }));
    CHECK(monitor.is_running());
  }
}

TEST_CASE("unhealthy periodic results are logged as warnings", "[health]") {
  manual_clock::reset();
  fake_database db;
  db.fail_always(infra::errc::connection_refused);
  capture_logger log;
  recorder rec;
  health::health_monitor<fake_database, manual_clock> monitor(db, quiet(10s, &log));
  monitor.start(rec.callback());
  REQUIRE(rec.wait_for(1));
  monitor.stop();
  CHECK(rec.statuses[0] == health_status::unhealthy);
  CHECK(log.count(infra::log_level::warn, "Health check status: unhealthy (scripted failure") == 1);
}

TEST_CASE("stop from inside the callback does not deadlock", "[health]") {
  manual_clock::reset();
  fake_database db;
  std::atomic<int> calls{0};
  std::atomic<bool> start_threw{false};
  health::health_monitor<fake_database, manual_clock> monitor(db, quiet(10s));
  monitor.start([&](const health::health_check_result&) {
    monitor.stop();
    try {
      monitor.start();
    } catch (const std::logic_error&) {
      start_threw = true;
    }
    ++calls;
  });
  REQUIRE(eventually([&] { return calls.load() == 1; }));
  CHECK_FALSE(monitor.is_running());
  CHECK(start_threw);
  monitor.stop();  // from another thread: waits for the monitor thread to end
  manual_clock::advance(10s);
  CHECK(calls == 1);
  CHECK(db.execute_count() == 1);

  SECTION("and the monitor can be started again from outside") {
    recorder rec;
    monitor.start(rec.callback());
    REQUIRE(rec.wait_for(1));
    monitor.stop();
  }
}

TEST_CASE("the destructor stops the monitor promptly", "[health]") {
  fake_database db;
  recorder rec;
  std::optional<health::health_monitor<fake_database>> monitor;
  monitor.emplace(db, quiet(1h));
  monitor->start(rec.callback());
  REQUIRE(rec.wait_for(1));
  const auto start = std::chrono::steady_clock::now();
  monitor.reset();
  CHECK(std::chrono::steady_clock::now() - start < 500ms);
  CHECK(rec.count() == 1);
}

TEST_CASE("check_now works from several threads while running and checks never overlap", "[health]") {
  manual_clock::reset();
  gate_database db;
  recorder rec;
  health::health_monitor<gate_database, manual_clock> monitor(db, quiet(10s));
  monitor.start(rec.callback());
  REQUIRE(rec.wait_for(1));
  std::atomic<int> healthy{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20; ++i) {
        // (the status may be degraded: the test thread moves the manual clock meanwhile)
        if (monitor.check_now().errors.empty()) ++healthy;
      }
    });
  }
  for (int i = 0; i < 5; ++i) {
    manual_clock::advance(10s);
    REQUIRE(rec.wait_for(static_cast<std::size_t>(2 + i)));
  }
  for (auto& t : threads) t.join();
  monitor.stop();
  CHECK(healthy == 60);
  CHECK(rec.count() == 6);
  CHECK(db.executed() == 66);
  CHECK(db.max_in_flight() == 1);
  REQUIRE(monitor.get_last_check().has_value());
}

TEST_CASE("check_now works when the monitor is not running", "[health]") {
  fake_database db;
  health::health_monitor monitor(db, quiet(1h));
  auto r = monitor.check_now();
  CHECK(r.status == health_status::healthy);
  REQUIRE(monitor.get_last_check().has_value());
  CHECK(monitor.get_last_check()->checks[0].message == r.checks[0].message);
  CHECK_FALSE(monitor.is_running());
}

TEST_CASE("invalid monitor options throw invalid_argument naming the field", "[health]") {
  fake_database db;
  auto throws_naming = [&](const health::health_monitor_options& o, const std::string& field) {
    try {
      health::health_monitor<fake_database> monitor(db, o);
      FAIL("accepted bad " << field);
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find(field) != std::string::npos);
    }
  };
  throws_naming(quiet(0ms), "interval");
  auto o = quiet(1s);
  o.timeout = 0ms;
  throws_naming(o, "timeout");
  o = quiet(1s);
  o.unhealthy_threshold = 1ms;
  throws_naming(o, "unhealthy_threshold");
  CHECK(db.execute_count() == 0);
}

TEST_CASE("an interval too large for the clock checks once and schedules the next check never", "[health]") {
  // milliseconds::max() and 300 years overflow the clocks' nanoseconds: the next tick saturates
  // at time_point::max() instead of wrapping into the past (which made a busy loop of checks).
  for (auto interval : {std::chrono::milliseconds::max(), std::chrono::milliseconds(std::chrono::hours(24 * 365 * 300))}) {
    INFO("interval " << interval.count() << " ms");
    manual_clock::reset();
    fake_database db;
    recorder rec;
    health::health_monitor<fake_database, manual_clock> monitor(db, quiet(interval));
    monitor.start(rec.callback());
    REQUIRE(rec.wait_for(1));
    CHECK(monitor.next_check_time() == manual_clock::time_point::max());
    manual_clock::advance(std::chrono::hours(24 * 365 * 200));  // two centuries later: still not due
    CHECK(kysera::test::health_support::eventually([&] { return rec.count() > 1; }, 50ms) == false);
    monitor.stop();
    CHECK(rec.count() == 1);
    CHECK(db.execute_count() == 1);
  }
}

TEST_CASE("a steady clock monitor with a huge interval sleeps and stops promptly", "[health]") {
  fake_database db;
  recorder rec;
  health::health_monitor monitor(db, quiet(std::chrono::milliseconds::max()));
  monitor.start(rec.callback());
  REQUIRE(rec.wait_for(1));
  CHECK(monitor.next_check_time() == std::chrono::steady_clock::time_point::max());
  CHECK_FALSE(kysera::test::health_support::eventually([&] { return db.execute_count() > 1; }, 100ms));
  const auto start = std::chrono::steady_clock::now();
  monitor.stop();
  CHECK(std::chrono::steady_clock::now() - start < 500ms);
  CHECK(rec.count() == 1);
}

TEST_CASE("the monitor logs an outage once, reminds at most once per interval, and logs the recovery", "[health]") {
  manual_clock::reset();
  fake_database db;
  db.fail_always(infra::errc::connection_refused);
  capture_logger log;
  recorder rec;
  auto o = quiet(10s, &log);
  o.unhealthy_log_interval = 60s;
  health::health_monitor<fake_database, manual_clock> monitor(db, o);
  auto warnings = [&] { return log.count(infra::log_level::warn, "Health check status: unhealthy"); };
  monitor.start(rec.callback());
  REQUIRE(rec.wait_for(1));
  CHECK(warnings() == 1);
  // Five more failed checks within the minute: no new line (before: one warning per check).
  for (std::size_t n = 2; n <= 6; ++n) {
    manual_clock::advance(10s);
    REQUIRE(rec.wait_for(n));
  }
  CHECK(warnings() == 1);
  manual_clock::advance(10s);  // 60 s since the first line: one reminder
  REQUIRE(rec.wait_for(7));
  CHECK(warnings() == 2);
  CHECK(log.count(infra::log_level::warn, "still unhealthy after 60000 ms") == 1);
  db.clear_failures();
  manual_clock::advance(10s);
  REQUIRE(rec.wait_for(8));
  CHECK(log.count(infra::log_level::info, "Health check status: healthy again (was unhealthy for 70000 ms)") == 1);
  manual_clock::advance(10s);
  REQUIRE(rec.wait_for(9));
  monitor.stop();
  CHECK(warnings() == 2);
  CHECK(log.count(infra::log_level::info, "Health check status") == 1);  // healthy checks are quiet
  CHECK(rec.count() == 9);  // the callback still sees every result
}

TEST_CASE("unhealthy_log_interval 0 logs every failed check and must not be negative", "[health]") {
  manual_clock::reset();
  fake_database db;
  db.fail_always(infra::errc::connection_refused);
  capture_logger log;
  recorder rec;
  auto o = quiet(10s, &log);
  o.unhealthy_log_interval = 0ms;
  {
    health::health_monitor<fake_database, manual_clock> monitor(db, o);
    monitor.start(rec.callback());
    REQUIRE(rec.wait_for(1));
    manual_clock::advance(10s);
    REQUIRE(rec.wait_for(2));
    monitor.stop();
  }
  CHECK(log.count(infra::log_level::warn, "Health check status: unhealthy") == 2);
  o.unhealthy_log_interval = -1ms;
  try {
    health::health_monitor<fake_database> bad(db, o);
    FAIL("accepted a negative unhealthy_log_interval");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("unhealthy_log_interval") != std::string::npos);
  }
}

TEST_CASE("a monitor with a null logger logs to the process-wide default logger", "[health]") {
  manual_clock::reset();
  capture_logger log;
  infra::logger* previous = infra::set_default_logger(&log);
  fake_database db;
  db.fail_always(infra::errc::connection_refused);
  recorder rec;
  health::health_monitor_options o;
  o.interval = 10s;  // o.logger stays null
  {
    health::health_monitor<fake_database, manual_clock> monitor(db, o);
    monitor.start(rec.callback());
    REQUIRE(rec.wait_for(1));
    monitor.stop();
  }
  infra::set_default_logger(previous);
  CHECK(log.count(infra::log_level::warn, "Health check status: unhealthy") == 1);
  CHECK(&infra::default_logger() == (previous ? previous : &infra::console_logger()));
}
