// graceful_shutdown and shutdown_database: order, failures, timeouts, close_for, logging.
#include "support/catch.hpp"
#include "support/fake_database.hpp"
#include "support_log.hpp"

#include <kysera/infra/shutdown.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

namespace infra = kysera::infra;
namespace sd = kysera::infra::shutdown;
using kysera::test::fake_database;
using kysera::test::log_capture;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

using clock_type = std::chrono::steady_clock;

/// A database whose close() throws.
struct failing_close_database {
  int closes = 0;
  void execute(std::string_view) {}
  void close() {
    ++closes;
    throw infra::database_error(infra::errc::connection_lost, "server went away", "fake");
  }
};

/// A database with close_for, like our pools; records the time it was given.
struct timed_close_database {
  bool finishes_in_time = true;
  int plain_closes = 0;
  int timed_closes = 0;
  std::chrono::milliseconds given{-1};
  void execute(std::string_view) {}
  void close() { ++plain_closes; }
  bool close_for(std::chrono::milliseconds timeout) {
    ++timed_closes;
    given = timeout;
    return finishes_in_time;
  }
};
static_assert(infra::database_with_timed_close<timed_close_database>);
static_assert(!infra::database_with_timed_close<fake_database>);

/// A database whose close() takes until `until` (it busy-waits on the steady clock, standing in
/// for a close that waits on the network).
struct slow_close_database {
  clock_type::time_point until;
  int closes = 0;
  void execute(std::string_view) {}
  void close() {
    ++closes;
    while (clock_type::now() < until) std::this_thread::yield();
  }
};

sd::shutdown_options options_with(log_capture& log) {
  sd::shutdown_options options;
  options.logger = &log;
  return options;
}

}  // namespace

TEST_CASE("graceful_shutdown runs on_shutdown and then closes the database", "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  int calls = 0;
  int closes_seen_by_on_shutdown = -1;
  options.on_shutdown = [&] {
    ++calls;
    closes_seen_by_on_shutdown = db.close_calls();
  };
  sd::graceful_shutdown(db, options);
  CHECK(calls == 1);
  CHECK(closes_seen_by_on_shutdown == 0);
  CHECK(db.close_calls() == 1);
  const int running = log.index_of("info: Running on_shutdown");
  const int closing = log.index_of("info: Closing database");
  const int complete = log.index_of("info: Shutdown complete");
  REQUIRE(running >= 0);
  CHECK(running < closing);
  CHECK(closing < complete);
}

TEST_CASE("graceful_shutdown runs on_shutdown on a worker thread", "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  std::thread::id ran_on;
  options.on_shutdown = [&] { ran_on = std::this_thread::get_id(); };
  sd::graceful_shutdown(db, options);
  CHECK(ran_on != std::thread::id());
  CHECK(ran_on != std::this_thread::get_id());
}

TEST_CASE("graceful_shutdown without on_shutdown only closes", "[shutdown]") {
  fake_database db;
  log_capture log;
  sd::graceful_shutdown(db, options_with(log));
  CHECK(db.close_calls() == 1);
  CHECK_FALSE(log.contains("Running on_shutdown"));
  CHECK(log.contains("info: Shutdown complete"));
  CHECK(db.execute_count() == 0);
}

TEST_CASE("a throwing on_shutdown still closes the database and is reported", "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  options.on_shutdown = [] { throw std::runtime_error("boom"); };
  try {
    sd::graceful_shutdown(db, options);
    FAIL("graceful_shutdown did not throw");
  } catch (const sd::shutdown_error& e) {
    CHECK(e.code() == infra::errc::shutting_down);
    CHECK_FALSE(e.timed_out());
    CHECK(e.stage() == sd::shutdown_stage::on_shutdown);
    CHECK_THAT(
        e.what(),
        Contains("graceful shutdown failed: on_shutdown threw: boom (the database was closed)"));
    REQUIRE(e.cause());
    CHECK_THROWS_WITH(std::rethrow_exception(e.cause()), "boom");
  }
  CHECK(db.close_calls() == 1);
  const int warned = log.index_of("warn: on_shutdown failed: boom; closing the database anyway");
  REQUIRE(warned >= 0);
  CHECK(warned < log.index_of("info: Closing database"));
  CHECK(log.contains("error: Shutdown failed: on_shutdown threw: boom (the database was closed)"));
  CHECK_FALSE(log.contains("Shutdown complete"));
}

TEST_CASE("an on_shutdown throwing something that is no std::exception is reported too",
          "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  options.on_shutdown = [] { throw 42; };
  CHECK_THROWS_WITH(sd::graceful_shutdown(db, options),
                    Contains("on_shutdown threw: an exception not derived from std::exception"));
  CHECK(db.close_calls() == 1);
}

TEST_CASE("a close that throws is reported as a failure of the close step", "[shutdown]") {
  failing_close_database db;
  log_capture log;
  auto options = options_with(log);
  bool ran = false;
  options.on_shutdown = [&] { ran = true; };
  try {
    sd::graceful_shutdown(db, options);
    FAIL("graceful_shutdown did not throw");
  } catch (const sd::shutdown_error& e) {
    CHECK(e.code() == infra::errc::shutting_down);
    CHECK(e.stage() == sd::shutdown_stage::close);
    CHECK_THAT(e.what(), Contains("closing the database threw: server went away"));
    REQUIRE(e.cause());
    try {
      std::rethrow_exception(e.cause());
    } catch (const infra::database_error& cause) {
      CHECK(cause.code() == infra::errc::connection_lost);
    }
  }
  CHECK(ran);
  CHECK(db.closes == 1);
  CHECK(log.contains("error: Shutdown failed: closing the database threw: server went away"));
}

TEST_CASE("when on_shutdown and close both fail the message names both", "[shutdown]") {
  failing_close_database db;
  log_capture log;
  auto options = options_with(log);
  options.on_shutdown = [] { throw std::runtime_error("drain failed"); };
  try {
    sd::graceful_shutdown(db, options);
    FAIL("graceful_shutdown did not throw");
  } catch (const sd::shutdown_error& e) {
    CHECK(e.stage() == sd::shutdown_stage::on_shutdown);
    CHECK_THAT(
        e.what(),
        Contains("on_shutdown threw: drain failed; closing the database threw: server went away"));
  }
  CHECK(db.closes == 1);
}

TEST_CASE(
    "an on_shutdown that overruns the timeout is reported at the deadline and the database is left "
    "alone",
    "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  options.timeout = 200ms;
  // Heap-owned: on_shutdown outlives the call and runs on, detached.
  auto release = std::make_shared<std::promise<void>>();
  auto finished = std::make_shared<std::promise<void>>();
  auto released = release->get_future().share();
  options.on_shutdown = [released, finished] {
    released.wait();
    finished->set_value();
  };
  const auto start = clock_type::now();
  try {
    sd::graceful_shutdown(db, options);
    FAIL("graceful_shutdown did not throw");
  } catch (const sd::shutdown_error& e) {
    const auto elapsed = clock_type::now() - start;
    CHECK(elapsed >= 200ms);
    CHECK(elapsed < 200ms + 3s);
    CHECK(e.code() == infra::errc::timeout);
    CHECK(e.timed_out());
    CHECK(e.stage() == sd::shutdown_stage::on_shutdown);
    CHECK_THAT(e.what(),
               Contains("graceful shutdown timed out after 200 ms: on_shutdown still running"));
  }
  CHECK(log.contains("error: Shutdown timed out after 200 ms"));
  CHECK_FALSE(log.contains("Closing database"));
  // The overrunning on_shutdown goes on and ends; the database is still never touched.
  release->set_value();
  REQUIRE(finished->get_future().wait_for(20s) == std::future_status::ready);
  CHECK(db.close_calls() == 0);
  CHECK(db.execute_count() == 0);
}

TEST_CASE("close_for is used where the database has it and gets the time left", "[shutdown]") {
  timed_close_database db;
  log_capture log;
  auto options = options_with(log);
  options.timeout = 5s;
  options.on_shutdown = [] {};
  sd::graceful_shutdown(db, options);
  CHECK(db.timed_closes == 1);
  CHECK(db.plain_closes == 0);
  CHECK(db.given > 0ms);
  CHECK(db.given <= 5s);
  CHECK(log.contains("info: Shutdown complete"));
}

TEST_CASE("connections still in use after close_for make the shutdown a timeout", "[shutdown]") {
  timed_close_database db;
  db.finishes_in_time = false;
  log_capture log;
  auto options = options_with(log);
  options.timeout = 1500ms;
  try {
    sd::graceful_shutdown(db, options);
    FAIL("graceful_shutdown did not throw");
  } catch (const sd::shutdown_error& e) {
    CHECK(e.timed_out());
    CHECK(e.stage() == sd::shutdown_stage::close);
    CHECK_THAT(
        e.what(),
        Contains("timed out after 1500 ms: connections still in use when closing the database"));
  }
  CHECK(log.contains("warn: Closing database: connections still in use after"));
  CHECK(log.contains("error: Shutdown timed out after 1500 ms"));
}

TEST_CASE("a plain close that ends after the deadline is reported as a timeout", "[shutdown]") {
  slow_close_database db;
  log_capture log;
  auto options = options_with(log);
  options.timeout = 100ms;
  db.until = clock_type::now() + 300ms;
  try {
    sd::graceful_shutdown(db, options);
    FAIL("graceful_shutdown did not throw");
  } catch (const sd::shutdown_error& e) {
    CHECK(e.timed_out());
    CHECK(e.stage() == sd::shutdown_stage::close);
    CHECK_THAT(e.what(), Contains("closing the database ended after the deadline"));
  }
  CHECK(db.closes == 1);
}

TEST_CASE("graceful_shutdown rejects a timeout that is not positive before doing anything",
          "[shutdown]") {
  fake_database db;
  bool ran = false;
  sd::shutdown_options options;
  options.on_shutdown = [&] { ran = true; };
  options.timeout = 0ms;
  CHECK_THROWS_AS(sd::graceful_shutdown(db, options), std::invalid_argument);
  options.timeout = -5ms;
  CHECK_THROWS_WITH(sd::graceful_shutdown(db, options), Contains("shutdown_options.timeout"));
  CHECK_FALSE(ran);
  CHECK(db.close_calls() == 0);
}

TEST_CASE("shutdown_database closes the database", "[shutdown]") {
  kysera::test::minimal_database db;
  sd::shutdown_database(db);
  CHECK(db.closed);
  CHECK(db.executes == 0);
}

TEST_CASE("register_shutdown_options converts to shutdown_options", "[shutdown]") {
  fake_database db;
  log_capture log;
  int calls = 0;
  sd::register_shutdown_options options;
  options.timeout = 4s;
  options.logger = &log;
  options.on_shutdown = [&] { ++calls; };
  const sd::shutdown_options converted = options;
  CHECK(converted.timeout == 4s);
  CHECK(converted.logger == &log);
  sd::graceful_shutdown(db, options);
  CHECK(calls == 1);
  CHECK(db.close_calls() == 1);
  CHECK(options.signals == std::vector<int>{SIGTERM, SIGINT});
}

TEST_CASE("shutdown_error names its stages and carries the library's error category",
          "[shutdown]") {
  CHECK(sd::to_string(sd::shutdown_stage::on_shutdown) == "on_shutdown");
  CHECK(sd::to_string(sd::shutdown_stage::close) == "close");
  const sd::shutdown_error e(infra::errc::timeout, "graceful shutdown timed out after 5 ms: x",
                             sd::shutdown_stage::close);
  const std::system_error& base = e;
  CHECK(base.code().category() == infra::error_category());
  CHECK(e.code() == std::errc::timed_out);
  CHECK_FALSE(e.cause());
}

TEST_CASE("a timeout too large for the clock means no limit instead of timing out at once", "[shutdown]") {
  // milliseconds::max() and 300 years overflow steady_clock's nanoseconds: the deadline
  // saturates at time_point::max() instead of wrapping into the past.
  for (auto timeout : {std::chrono::milliseconds::max(), std::chrono::milliseconds(std::chrono::hours(24 * 365 * 300))}) {
    INFO("timeout " << timeout.count() << " ms");
    fake_database db;
    log_capture log;
    auto options = options_with(log);
    options.timeout = timeout;
    int calls = 0;
    options.on_shutdown = [&] { ++calls; };
    CHECK_NOTHROW(sd::graceful_shutdown(db, options));
    CHECK(calls == 1);
    CHECK(db.close_calls() == 1);
    CHECK(log.contains("info: Shutdown complete"));
    CHECK_FALSE(log.contains("timed out"));

    // A database with close_for is given (practically) all the time there is.
    timed_close_database timed;
    options.on_shutdown = {};
    CHECK_NOTHROW(sd::graceful_shutdown(timed, options));
    CHECK(timed.timed_closes == 1);
    CHECK(timed.given > std::chrono::hours(24 * 365 * 100));
  }
}

TEST_CASE("a huge timeout waits for a slow on_shutdown to finish", "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  options.timeout = std::chrono::milliseconds::max();
  std::promise<void> started;
  std::promise<void> release;
  auto released = release.get_future();
  options.on_shutdown = [&] {
    started.set_value();
    released.wait();
  };
  auto shutdown = std::async(std::launch::async, [&] { sd::graceful_shutdown(db, options); });
  started.get_future().wait();
  // Still waiting for on_shutdown: a wrapped deadline would have thrown a timeout at once.
  CHECK(shutdown.wait_for(100ms) == std::future_status::timeout);
  release.set_value();
  CHECK_NOTHROW(shutdown.get());
  CHECK(db.close_calls() == 1);
  CHECK(log.contains("info: Shutdown complete"));
}
