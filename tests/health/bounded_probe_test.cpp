// The health check's probe on the calling thread, for databases with `try_ping_until`
// (database_with_bounded_ping): which thread probes, latency, the fallback to a probe thread, the
// deadline, failures, and where the probe thread is still used (verbose, the monitor).

#include "support/catch.hpp"
#include "support/manual_clock.hpp"
#include "health/support_health.hpp"

#include <kysera/infra/health.hpp>
#include <kysera/infra/pool/connection_pool.hpp>

#include <chrono>
#include <memory>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
namespace health = kysera::infra::health;
using namespace std::chrono_literals;
using health::health_status;
using kysera::test::manual_clock;
using kysera::test::health_support::capture_logger;
using kysera::test::health_support::eventually;

namespace {

/// A database that can bound its own ping, with a scripted outcome. Records which thread ran
/// each kind of probe. Thread-safe.
class bounded_database {
 public:
  enum class outcome { answer, decline, hang_until_deadline, fail };

  void script(outcome o, std::chrono::nanoseconds latency = {}) {
    std::lock_guard lock(mutex_);
    outcome_ = o;
    latency_ = latency;
  }

  void execute(std::string_view) {}
  void close() {}

  void ping() {
    std::lock_guard lock(mutex_);
    ping_threads_.push_back(std::this_thread::get_id());
  }

  std::string server_version() { return "fake 1.0"; }

  bool try_ping_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    bounded_threads_.push_back(std::this_thread::get_id());
    switch (outcome_) {
      case outcome::answer:
        manual_clock::advance(latency_);
        return true;
      case outcome::decline:
        return false;
      case outcome::hang_until_deadline:
        // A server that never answers: nothing wakes this wait before the deadline.
        hang_.wait_until(lock, deadline, [] { return false; });
        throw infra::database_error(infra::errc::timeout, "fake: no answer by the deadline", "fake");
      case outcome::fail:
        throw std::runtime_error("fake: connection refused");
    }
    return false;
  }

  std::vector<std::thread::id> bounded_threads() const {
    std::lock_guard lock(mutex_);
    return bounded_threads_;
  }
  std::vector<std::thread::id> ping_threads() const {
    std::lock_guard lock(mutex_);
    return ping_threads_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable hang_;
  outcome outcome_ = outcome::answer;
  std::chrono::nanoseconds latency_{0};
  std::vector<std::thread::id> bounded_threads_;
  std::vector<std::thread::id> ping_threads_;
};

static_assert(infra::database_with_bounded_ping<bounded_database>);

health::health_check_options quiet(std::chrono::milliseconds timeout = 5s, infra::logger* log = nullptr) {
  health::health_check_options o;
  o.timeout = timeout;
  o.logger = log ? log : &infra::silent_logger();
  return o;
}

}  // namespace

TEST_CASE("a database that bounds its own ping is probed on the calling thread", "[health]") {
  bounded_database db;
  auto r = health::perform_health_check(db, quiet());
  CHECK(r.status == health_status::healthy);
  CHECK(r.checks.at(0).message.rfind("Connected successfully (", 0) == 0);
  CHECK(db.bounded_threads() == std::vector<std::thread::id>{std::this_thread::get_id()});
  CHECK(db.ping_threads().empty());
  // check_database_health takes the same path.
  CHECK(health::check_database_health(db).status == health_status::healthy);
  CHECK(db.bounded_threads().size() == 2);
}

TEST_CASE("the calling-thread probe measures and classifies its latency on the given clock", "[health]") {
  manual_clock::reset();
  bounded_database db;
  db.script(bounded_database::outcome::answer, 150ms);
  auto r = health::perform_health_check<manual_clock>(db, quiet());
  CHECK(r.status == health_status::degraded);
  CHECK(r.metrics.check_latency == 150.0);
  CHECK(r.checks.at(0).message == "Connected successfully (150.00 ms)");
  db.script(bounded_database::outcome::answer, 500ms);
  CHECK(health::perform_health_check<manual_clock>(db, quiet()).status == health_status::unhealthy);
}

TEST_CASE("a bounded ping that declines falls back to a probe thread", "[health]") {
  bounded_database db;
  db.script(bounded_database::outcome::decline);
  auto r = health::perform_health_check(db, quiet());
  CHECK(r.status == health_status::healthy);
  CHECK(db.bounded_threads().size() == 1);
  REQUIRE(db.ping_threads().size() == 1);
  CHECK(db.ping_threads()[0] != std::this_thread::get_id());
}

TEST_CASE("a bounded ping that runs into its deadline is reported as the timeout, with its reason logged",
          "[health]") {
  bounded_database db;
  db.script(bounded_database::outcome::hang_until_deadline);
  capture_logger log;
  const auto start = std::chrono::steady_clock::now();
  auto r = health::perform_health_check(db, quiet(100ms, &log));
  const auto elapsed = std::chrono::steady_clock::now() - start;
  CHECK(elapsed >= 100ms);
  CHECK(elapsed < 100ms + 750ms);
  CHECK(r.status == health_status::unhealthy);
  CHECK(r.errors == std::vector<std::string>{"Health check timed out after 100 ms"});
  CHECK(r.checks.at(0).message == r.errors[0]);
  CHECK_FALSE(r.metrics.check_latency.has_value());
  CHECK(log.count(infra::log_level::warn, "fake: no answer by the deadline") == 1);
  CHECK(db.ping_threads().empty());  // no second probe on another thread
}

TEST_CASE("a bounded ping that fails before its deadline reports the database's error", "[health]") {
  bounded_database db;
  db.script(bounded_database::outcome::fail);
  auto r = health::perform_health_check(db, quiet());
  CHECK(r.status == health_status::unhealthy);
  CHECK(r.errors == std::vector<std::string>{"fake: connection refused"});
  CHECK_FALSE(r.metrics.check_latency.has_value());
}

TEST_CASE("verbose checks use the probe thread and report the version", "[health]") {
  bounded_database db;
  auto o = quiet();
  o.verbose = true;
  auto r = health::perform_health_check(db, o);
  CHECK(r.status == health_status::healthy);
  CHECK(r.metrics.database_version == std::optional<std::string>("fake 1.0"));
  CHECK(db.bounded_threads().empty());
  CHECK(db.ping_threads().size() == 1);
}

TEST_CASE("the monitor's own checks use the probe thread, check_now the calling thread", "[health]") {
  bounded_database db;
  health::health_monitor_options o;
  o.interval = 1h;
  o.logger = &infra::silent_logger();
  health::health_monitor monitor(db, o);
  monitor.start();
  REQUIRE(eventually([&] { return monitor.get_last_check().has_value(); }));
  CHECK(db.bounded_threads().empty());
  CHECK(db.ping_threads().size() == 1);
  auto r = monitor.check_now();
  CHECK(r.status == health_status::healthy);
  CHECK(db.bounded_threads() == std::vector<std::thread::id>{std::this_thread::get_id()});
  monitor.stop();
}

TEST_CASE("with_debug forwards try_ping_until without recording it", "[health]") {
  bounded_database db;
  auto dbg = health::with_debug(db);
  STATIC_REQUIRE(infra::database_with_bounded_ping<decltype(dbg)>);
  CHECK(health::perform_health_check(dbg, quiet()).status == health_status::healthy);
  CHECK(db.bounded_threads().size() == 1);
  CHECK(dbg.recorded_queries() == 0);
}

TEST_CASE("a pool of such connections pings an idle one on the calling thread, else on a probe thread",
          "[health]") {
  bounded_database* made = nullptr;
  infra::pool::pool_options po;
  po.max_size = 1;
  po.acquire_timeout = 200ms;
  po.housekeeping_interval = 0ms;
  po.logger = &infra::silent_logger();
  infra::pool::connection_pool<bounded_database> pool(
      [&made] {
        auto c = std::make_unique<bounded_database>();
        made = c.get();
        return c;
      },
      po);
  STATIC_REQUIRE(infra::database_with_bounded_ping<decltype(pool)>);

  // Nothing idle yet: opening a connection is not bounded, so the probe thread does it.
  CHECK(health::check_database_health(pool).status == health_status::healthy);
  REQUIRE(made != nullptr);
  CHECK(made->bounded_threads().empty());
  REQUIRE(made->ping_threads().size() <= 1);  // none when opening it proved it already

  // Now one is idle: one bounded round trip on this thread.
  CHECK(health::check_database_health(pool).status == health_status::healthy);
  CHECK(made->bounded_threads() == std::vector<std::thread::id>{std::this_thread::get_id()});
  CHECK(pool.get_metrics().active == 0);  // the lease has ended

  // All leased: the pool declines at once and the probe thread waits for a connection.
  {
    auto held = pool.acquire();
    auto r = health::check_database_health(pool);
    CHECK(r.status == health_status::unhealthy);
    CHECK(made->bounded_threads().size() == 1);
  }
}
