// with_debug (recording wrapper) and get_metrics (statistics, period, recommendations).

#include "support/catch.hpp"
#include "support/fake_database.hpp"
#include "support/manual_clock.hpp"
#include "health/support_health.hpp"

#include <kysera/infra/health.hpp>
#include <kysera/infra/resilience/transaction_retry.hpp>

#if defined(KYSERA_INFRA_HAS_SQLITE)
#include <kysera/infra/adapters/sqlite.hpp>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace infra = kysera::infra;
namespace health = kysera::infra::health;
using namespace std::chrono_literals;
using kysera::test::fake_database;
using kysera::test::manual_clock;
using kysera::test::minimal_database;
using kysera::test::health_support::fake_pool;
using kysera::test::health_support::timed_database;

namespace {

/// Returns a value from execute, has every capability, and is thread-safe.
struct full_database {
  std::atomic<int> executes{0};
  int execute(std::string_view) { return ++executes; }
  void close() {}
  void ping() {}
  void cancel() noexcept {}
  std::string server_version() { return "full 2.0"; }
  template <class F>
  auto transaction(F&& fn) -> decltype(fn(*this)) {
    return fn(*this);
  }
  bool close_for(std::chrono::milliseconds) { return true; }
};

/// A wrapper over a timed database on the manual clock, fed with the given durations (ms).
struct timed_fixture {
  timed_database db;
  health::debug_database<timed_database, manual_clock> dbg;
  explicit timed_fixture(health::debug_options o = {}) : dbg(db, o) { manual_clock::reset(); }
  void run(std::chrono::nanoseconds d, bool fail = false) {
    db.script(d, fail);
    try {
      dbg.execute("select something");
    } catch (const infra::database_error&) {
      if (!fail) throw;
    }
  }
};

/// A database that is also a pool (a user pool type with traits).
struct pooled_database {
  bool closed = false;
  void execute(std::string_view) {}
  void close() { closed = true; }
};

template <class DB>
concept can_get_metrics = requires(const DB& db) { health::get_metrics(db); };

}  // namespace

template <>
struct kysera::infra::pool::pool_traits<pooled_database> {
  static pool_metrics get_metrics(pooled_database&) { return {3, 1, 2, 0, 8}; }
  static void close(pooled_database& p) { p.close(); }
};

TEST_CASE("with_debug models database and forwards the capabilities the database has", "[health]") {
  using full_dbg = health::debug_database<full_database>;
  STATIC_REQUIRE(infra::database<full_dbg>);
  STATIC_REQUIRE(infra::database_with_ping<full_dbg>);
  STATIC_REQUIRE(infra::database_with_cancel<full_dbg>);
  STATIC_REQUIRE(infra::database_with_server_version<full_dbg>);
  STATIC_REQUIRE(infra::database_with_transaction<full_dbg>);
  STATIC_REQUIRE(infra::database_with_timed_close<full_dbg>);
  STATIC_REQUIRE(std::is_same_v<decltype(std::declval<full_dbg&>().execute("")), int>);
  STATIC_REQUIRE(std::is_nothrow_invocable_v<decltype(&full_dbg::cancel), full_dbg&>);

  using minimal_dbg = health::debug_database<minimal_database>;
  STATIC_REQUIRE(infra::database<minimal_dbg>);
  STATIC_REQUIRE_FALSE(infra::database_with_ping<minimal_dbg>);
  STATIC_REQUIRE_FALSE(infra::database_with_cancel<minimal_dbg>);
  STATIC_REQUIRE_FALSE(infra::database_with_server_version<minimal_dbg>);
  STATIC_REQUIRE_FALSE(infra::database_with_transaction<minimal_dbg>);
  STATIC_REQUIRE(std::is_move_constructible_v<minimal_dbg>);
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<minimal_dbg>);

  full_database db;
  auto dbg = health::with_debug(db);
  CHECK(dbg.execute("select 1") == 1);
  CHECK(dbg.server_version() == "full 2.0");
  CHECK(dbg.transaction([](full_database& session) { return session.execute("in tx"); }) == 2);
  CHECK(dbg.close_for(1s));
  dbg.ping();
  dbg.cancel();
  // execute(), and the transaction as a whole; `fn` named the session type, so it got the
  // session itself and its statement is not recorded on its own. ping/cancel/... are not recorded.
  REQUIRE(dbg.query_metrics().size() == 2);
  CHECK_FALSE(dbg.query_metrics()[0].transaction);
  CHECK(dbg.query_metrics()[1].transaction);
  CHECK(&dbg.underlying() == &db);
}

TEST_CASE("has_database_metrics answers at compile time", "[health]") {
  fake_database db;
  auto dbg = health::with_debug(db);
  STATIC_REQUIRE(health::has_database_metrics(dbg));
  STATIC_REQUIRE_FALSE(health::has_database_metrics(db));
  STATIC_REQUIRE(health::database_with_metrics<decltype(dbg)>);
  STATIC_REQUIRE(can_get_metrics<decltype(dbg)>);
  STATIC_REQUIRE_FALSE(can_get_metrics<fake_database>);  // get_metrics on it does not compile
  STATIC_REQUIRE_FALSE(can_get_metrics<minimal_database>);
}

TEST_CASE("with_debug records duration outcome and SQL of every query", "[health]") {
  manual_clock::reset();
  fake_database db;
  auto dbg = health::with_debug<manual_clock>(db);
  db.on_next([] { manual_clock::advance(5ms); });
  dbg.execute("select 1");
  const auto after_first = manual_clock::now();
  db.fail_next(infra::errc::constraint_violation, "duplicate key");
  try {
    dbg.execute("insert into t values (1)");
    FAIL("the failure was swallowed");
  } catch (const infra::database_error& e) {
    CHECK(e.code() == infra::errc::constraint_violation);  // rethrown unchanged
  }
  auto m = dbg.query_metrics();
  REQUIRE(m.size() == 2);
  CHECK(m[0].sql == "select 1");
  CHECK(m[0].duration == 5.0);
  CHECK_FALSE(m[0].failed);
  CHECK_FALSE(m[0].sql_truncated);
  CHECK(m[0].timestamp == after_first);
  CHECK(m[1].sql == "insert into t values (1)");
  CHECK(m[1].failed);
  CHECK(m[1].duration == 0.0);
  CHECK(dbg.recorded_queries() == 2);
  dbg.clear_metrics();
  CHECK(dbg.query_metrics().empty());
  CHECK(dbg.recorded_queries() == 2);
}

TEST_CASE("recorded SQL is truncated at max_sql_length and can be switched off", "[health]") {
  minimal_database db;
  health::debug_options o;
  o.max_sql_length = 8;
  auto dbg = health::with_debug(db, o);
  dbg.execute("SELECT 1234567890");
  dbg.execute("SELECT 1");
  dbg.execute("SELECT \xC3\xA9t\xC3\xA9");  // "SELECT été": byte 8 is inside 'é'
  auto m = dbg.query_metrics();
  REQUIRE(m.size() == 3);
  CHECK(m[0].sql == "SELECT 1");
  CHECK(m[0].sql_truncated);
  CHECK(m[1].sql == "SELECT 1");
  CHECK_FALSE(m[1].sql_truncated);
  CHECK(m[2].sql == "SELECT ");  // cut before the split character
  CHECK(m[2].sql_truncated);

  health::debug_options off;
  off.record_sql = false;
  auto quiet = health::with_debug(db, off);
  quiet.execute("UPDATE users SET token = 'secret'");
  auto q = quiet.query_metrics();
  REQUIRE(q.size() == 1);
  CHECK(q[0].sql.empty());
  CHECK_FALSE(q[0].sql_truncated);

  auto defaults = health::with_debug(db);
  defaults.execute(std::string(1000, 'x'));
  CHECK(defaults.query_metrics()[0].sql.size() == 256);
}

TEST_CASE("the ring buffer keeps the newest max_metrics entries in order", "[health]") {
  minimal_database db;
  health::debug_options o;
  o.max_metrics = 3;
  auto dbg = health::with_debug(db, o);
  for (int i = 1; i <= 5; ++i) dbg.execute("q" + std::to_string(i));
  auto m = dbg.query_metrics();
  REQUIRE(m.size() == 3);
  CHECK(m[0].sql == "q3");
  CHECK(m[1].sql == "q4");
  CHECK(m[2].sql == "q5");
  CHECK(dbg.metrics_size() == 3);
  CHECK(dbg.max_metrics() == 3);
  CHECK(dbg.recorded_queries() == 5);
  for (int i = 6; i <= 7; ++i) dbg.execute("q" + std::to_string(i));
  m = dbg.query_metrics();
  CHECK(m[0].sql == "q5");
  CHECK(m[2].sql == "q7");
  CHECK(db.executes == 7);
}

TEST_CASE("max_metrics must be at least 1", "[health]") {
  minimal_database db;
  health::debug_options o;
  o.max_metrics = 0;
  try {
    (void)health::with_debug(db, o);
    FAIL("accepted max_metrics = 0");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()).find("max_metrics") != std::string::npos);
  }
}

TEST_CASE("recording is thread-safe and a moved wrapper keeps its entries", "[health]") {
  full_database db;
  health::debug_options o;
  o.max_metrics = 1000;
  auto dbg = health::with_debug(db, o);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&dbg, t] {
      for (int i = 0; i < 5000; ++i) dbg.execute(i % 2 ? "select a" : "select b from a_longer_table_name_" + std::to_string(t));
    });
  }
  std::atomic<bool> stop{false};
  std::thread reader([&] {
    while (!stop) (void)health::get_metrics(dbg);
  });
  for (auto& t : threads) t.join();
  stop = true;
  reader.join();
  CHECK(db.executes == 20000);
  CHECK(dbg.recorded_queries() == 20000);
  CHECK(dbg.metrics_size() == 1000);
  auto moved = std::move(dbg);
  CHECK(moved.query_metrics().size() == 1000);
  CHECK(health::get_metrics(moved).queries->total == 1000);
}

TEST_CASE("get_metrics over durations 1 to 100 gives p95 95 and p99 99", "[health]") {
  timed_fixture f({.max_metrics = 1000});
  for (int i = 100; i >= 1; --i) f.run(std::chrono::milliseconds(i));  // order must not matter
  auto r = health::get_metrics(f.dbg);
  REQUIRE(r.queries.has_value());
  CHECK(r.queries->total == 100);
  CHECK(r.queries->p95_duration == 95.0);
  CHECK(r.queries->p99_duration == 99.0);
  CHECK(r.queries->min_duration == 1.0);
  CHECK(r.queries->max_duration == 100.0);
  CHECK(r.queries->avg_duration == 50.5);
  CHECK(r.queries->slow_count == 0);
  CHECK(r.queries->error_count == 0);
  CHECK(r.period == "1h");
}

namespace {

/// The same entries offered to get_metrics the two slower ways a user type can: as samples, or
/// only as full metrics.
struct samples_only {
  using clock = manual_clock;
  const health::debug_database<timed_database, manual_clock>* source;
  void execute(std::string_view) {}
  void close() {}
  std::vector<health::basic_query_metric<manual_clock>> query_metrics() const { return source->query_metrics(); }
  std::vector<health::query_sample> query_samples(manual_clock::time_point since) const {
    return source->query_samples(since);
  }
};

struct metrics_only {
  using clock = manual_clock;
  const health::debug_database<timed_database, manual_clock>* source;
  void execute(std::string_view) {}
  void close() {}
  std::vector<health::basic_query_metric<manual_clock>> query_metrics() const { return source->query_metrics(); }
};

}  // namespace

TEST_CASE("get_metrics gives the same figures from durations, samples or metrics, ring wrapped",
          "[health]") {
  timed_fixture f({.max_metrics = 50});
  // 80 entries into a ring of 50 (the oldest 30 are gone), some failed, in a scrambled order.
  for (int i = 0; i < 80; ++i) {
    f.run(std::chrono::microseconds(((i * 37) % 80 + 1) * 250), i % 9 == 0);
    manual_clock::advance(1s);
  }
  health::get_metrics_options o{.period = "1h", .slow_query_threshold = 15ms};
  const auto fast = health::get_metrics(f.dbg, o);
  const auto via_samples = health::get_metrics(samples_only{&f.dbg}, o);
  const auto via_metrics = health::get_metrics(metrics_only{&f.dbg}, o);
  REQUIRE(fast.queries.has_value());
  CHECK(fast.queries->total == 50);
  for (const auto* other : {&via_samples, &via_metrics}) {
    REQUIRE(other->queries.has_value());
    CHECK(other->queries->total == fast.queries->total);
    CHECK(other->queries->error_count == fast.queries->error_count);
    CHECK(other->queries->slow_count == fast.queries->slow_count);
    CHECK(other->queries->p95_duration == fast.queries->p95_duration);
    CHECK(other->queries->p99_duration == fast.queries->p99_duration);
    CHECK(other->queries->min_duration == fast.queries->min_duration);
    CHECK(other->queries->max_duration == fast.queries->max_duration);
    CHECK(other->queries->avg_duration == fast.queries->avg_duration);
  }
  // The figures themselves, from the entries the test made (the newest 50 of 80).
  std::vector<double> expected;
  std::size_t failed = 0;
  for (int i = 30; i < 80; ++i) {
    expected.push_back(((i * 37) % 80 + 1) * 0.25);
    failed += i % 9 == 0 ? 1 : 0;
  }
  std::sort(expected.begin(), expected.end());
  CHECK(fast.queries->error_count == failed);
  CHECK(fast.queries->p95_duration == expected[47]);  // ceil(0.95 * 50) - 1
  CHECK(fast.queries->p99_duration == expected[49]);  // ceil(0.99 * 50) - 1
  CHECK(fast.queries->min_duration == expected.front());
  CHECK(fast.queries->max_duration == expected.back());
}

TEST_CASE("percentiles are nearest-rank for small samples", "[health]") {
  using infra::metrics::detail::nearest_rank_index;
  STATIC_REQUIRE(nearest_rank_index(1, 95) == 0);
  STATIC_REQUIRE(nearest_rank_index(1, 99) == 0);
  STATIC_REQUIRE(nearest_rank_index(10, 95) == 9);   // ceil(9.5) - 1
  STATIC_REQUIRE(nearest_rank_index(20, 95) == 18);  // ceil(19) - 1
  STATIC_REQUIRE(nearest_rank_index(20, 99) == 19);
  STATIC_REQUIRE(nearest_rank_index(100, 95) == 94);
  STATIC_REQUIRE(nearest_rank_index(1000, 99) == 989);

  timed_fixture f;
  for (int i : {30, 10, 20}) f.run(std::chrono::milliseconds(i));
  auto r = health::get_metrics(f.dbg);
  CHECK(r.queries->p95_duration == 30.0);
  CHECK(r.queries->p99_duration == 30.0);
  CHECK(r.queries->min_duration == 10.0);
}

TEST_CASE("reported figures are rounded to 2 decimals", "[health]") {
  timed_fixture f;
  f.run(125us);  // 0.125 ms: a half rounds up
  auto r = health::get_metrics(f.dbg);
  CHECK(r.queries->avg_duration == 0.13);
  CHECK(r.queries->min_duration == 0.13);
  CHECK(r.queries->p99_duration == 0.13);

  timed_fixture g;
  g.run(1ms);
  g.run(1ms);
  g.run(2ms);  // average 4/3 ms
  auto s = health::get_metrics(g.dbg);
  CHECK(s.queries->avg_duration == 1.33);
  timed_fixture h;
  h.run(1'234us);
  h.run(1'236'001ns);
  CHECK(health::get_metrics(h.dbg).queries->max_duration == 1.24);
  CHECK(health::get_metrics(h.dbg).queries->min_duration == 1.23);
}

TEST_CASE("slow_count counts durations strictly above the threshold", "[health]") {
  timed_fixture f;
  f.run(99'990us);
  f.run(100ms);         // equal: not slow
  f.run(100'001us);     // above: slow
  f.run(250ms);
  auto r = health::get_metrics(f.dbg);
  CHECK(r.queries->slow_count == 2);
  health::get_metrics_options o;
  o.slow_query_threshold = 250ms;
  CHECK(health::get_metrics(f.dbg, o).queries->slow_count == 0);
  o.slow_query_threshold = 0ms;
  CHECK(health::get_metrics(f.dbg, o).queries->slow_count == 4);
}

TEST_CASE("failed queries are recorded and counted as errors", "[health]") {
  timed_fixture f;
  f.run(1ms);
  f.run(2ms, true);
  f.run(3ms, true);
  auto r = health::get_metrics(f.dbg);
  CHECK(r.queries->total == 3);
  CHECK(r.queries->error_count == 2);
  CHECK(r.queries->max_duration == 3.0);
}

TEST_CASE("period filters the entries to the window and is echoed", "[health]") {
  timed_fixture f;
  f.run(10ms);  // ends at t0 + 10 ms
  manual_clock::advance(30min);
  f.run(20ms);
  manual_clock::advance(29min);
  f.run(30ms);
  manual_clock::advance(2min);
  // Ages now: the first query ended 61 min 50 ms ago, the second 31 min 30 ms, the third 2 min.
  health::get_metrics_options o;
  auto all = health::get_metrics(f.dbg, o);
  CHECK(all.period == "1h");
  CHECK(all.queries->total == 2);
  CHECK(all.queries->min_duration == 20.0);
  o.period = "31m";
  CHECK(health::get_metrics(f.dbg, o).queries->total == 1);
  o.period = "32m";
  CHECK(health::get_metrics(f.dbg, o).queries->total == 2);
  o.period = "2m";  // the boundary is inclusive
  auto recent = health::get_metrics(f.dbg, o);
  CHECK(recent.period == "2m");
  REQUIRE(recent.queries.has_value());
  CHECK(recent.queries->total == 1);
  CHECK(recent.queries->avg_duration == 30.0);
  o.period = "1d";
  CHECK(health::get_metrics(f.dbg, o).queries->total == 3);
  o.period = "500ms";
  auto none = health::get_metrics(f.dbg, o);
  CHECK_FALSE(none.queries.has_value());
  CHECK(none.recommendations.empty());
  o.period = "30s";
  CHECK_FALSE(health::get_metrics(f.dbg, o).queries.has_value());
  o.period = "99999999999h";  // longer than the clock can represent: everything
  CHECK(health::get_metrics(f.dbg, o).queries->total == 3);
}

TEST_CASE("periods parse the documented forms and reject malformed ones", "[health]") {
  CHECK(health::parse_period("500ms") == 500ms);
  CHECK(health::parse_period("30s") == 30s);
  CHECK(health::parse_period("5m") == 5min);
  CHECK(health::parse_period("1h") == 1h);
  CHECK(health::parse_period("1d") == 24h);
  timed_fixture f;
  for (const char* bad : {"", "h", "1", "-1h", "+1h", "1.5h", "1 h", " 1h", "1h ", "1w", "1H", "0s", "1hh", "ms",
                          "99999999999999999999h", "9999999999999999d"}) {
    INFO("period \"" << bad << "\"");
    health::get_metrics_options o;
    o.period = bad;
    try {
      (void)health::get_metrics(f.dbg, o);
      FAIL("accepted");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find("period") != std::string::npos);
    }
  }
  health::get_metrics_options o;
  o.slow_query_threshold = -1ms;
  CHECK_THROWS_AS(health::get_metrics(f.dbg, o), std::invalid_argument);
}

TEST_CASE("recommendations follow the slow share and the average and the pool utilisation", "[health]") {
  auto count_containing = [](const health::metrics_result& r, const std::string& needle) {
    int n = 0;
    for (const auto& text : r.recommendations) n += text.find(needle) != std::string::npos ? 1 : 0;
    return n;
  };
  SECTION("exactly 10 % slow is fine, more is not") {
    timed_fixture f;
    for (int i = 0; i < 90; ++i) f.run(1ms);
    for (int i = 0; i < 10; ++i) f.run(101ms);
    auto ten = health::get_metrics(f.dbg);
    CHECK(count_containing(ten, "slow queries") == 0);
    f.run(101ms);
    auto eleven = health::get_metrics(f.dbg);
    CHECK(count_containing(eleven, "High number of slow queries detected (11/101)") == 1);
  }
  SECTION("an average above half the threshold") {
    timed_fixture f;
    f.run(50ms);
    CHECK(health::get_metrics(f.dbg).recommendations.empty());  // exactly half: fine
    f.run(50'100us);
    auto r = health::get_metrics(f.dbg);
    REQUIRE(r.recommendations.size() == 1);
    CHECK(r.recommendations[0].find("Average query duration (50.05 ms)") != std::string::npos);
  }
  SECTION("pool utilisation above 80 %") {
    timed_fixture f;
    fake_pool pool;
    health::get_metrics_options o;
    o.pool = infra::pool::create_metrics_pool(pool);
    pool.metrics = {10, 2, 8, 0, 20};  // 80 %: fine
    CHECK(health::get_metrics(f.dbg, o).recommendations.empty());
    pool.metrics = {10, 1, 9, 3, 20};
    auto r = health::get_metrics(f.dbg, o);
    REQUIRE(r.recommendations.size() == 1);
    CHECK(r.recommendations[0].find("Connection pool utilization is high (90.0%)") != std::string::npos);
  }
}

TEST_CASE("recommendations are safe with total 0", "[health]") {
  timed_fixture f;  // no queries at all
  fake_pool pool;
  pool.metrics = {0, 0, 0, 0, 10};  // an empty pool
  health::get_metrics_options o;
  o.pool = infra::pool::create_metrics_pool(pool);
  auto r = health::get_metrics(f.dbg, o);
  CHECK_FALSE(r.queries.has_value());
  REQUIRE(r.connections.has_value());
  CHECK(r.connections->total == 0);
  CHECK(r.recommendations.empty());
}

TEST_CASE("connections report the configured pool maximum", "[health]") {
  timed_fixture f;
  fake_pool pool;
  pool.metrics = {5, 3, 2, 1, 20};
  health::get_metrics_options o;
  o.pool = infra::pool::create_metrics_pool(pool);
  auto r = health::get_metrics(f.dbg, o);
  REQUIRE(r.connections.has_value());
  CHECK(r.connections->total == 5);
  CHECK(r.connections->idle == 3);
  CHECK(r.connections->active == 2);
  CHECK(r.connections->waiting == 1);
  CHECK(r.connections->max == 20);  // not a copy of total
  CHECK_FALSE(health::get_metrics(f.dbg).connections.has_value());
}

TEST_CASE("the timestamp is ISO 8601 UTC with milliseconds", "[health]") {
  timed_fixture f;
  auto r = health::get_metrics(f.dbg);
  CHECK(std::regex_match(r.timestamp, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)")));
  using namespace std::chrono;
  CHECK(health::detail::iso8601(sys_days{2024y / February / 29} + 23h + 59min + 58s + 7ms) ==
        "2024-02-29T23:59:58.007Z");
  CHECK(health::detail::iso8601(system_clock::time_point{}) == "1970-01-01T00:00:00.000Z");
}

TEST_CASE("a with_debug wrapper around a pool is itself a metrics pool", "[health]") {
  pooled_database pool;
  auto dbg = health::with_debug(pool);
  STATIC_REQUIRE(infra::pool::pool_with_metrics<decltype(dbg)>);
  auto handle = infra::pool::create_metrics_pool(dbg);
  CHECK(handle.get_metrics() == infra::pool::pool_metrics{3, 1, 2, 0, 8});
  handle.close();
  CHECK(pool.closed);

  minimal_database db;
  auto plain = health::with_debug(db);
  STATIC_REQUIRE_FALSE(infra::pool::pool_with_metrics<decltype(plain)>);
  CHECK_FALSE(infra::pool::is_metrics_pool(plain));
}

// ---------------------------------------------------------------- statements inside transaction(fn)

namespace {
/// A fake with transaction(fn): BEGIN/COMMIT/ROLLBACK go to the fake directly (as an adapter's do),
/// `fn` gets the fake itself as its session.
struct tx_fake {
  fake_database inner;
  void execute(std::string_view sql) { inner.execute(sql); }
  void close() { inner.close(); }
  template <class F>
  std::invoke_result_t<F&, fake_database&> transaction(F&& fn) {
    inner.execute("BEGIN");
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F&, fake_database&>>) {
        fn(inner);
        inner.execute("COMMIT");
      } else {
        auto r = fn(inner);
        inner.execute("COMMIT");
        return r;
      }
    } catch (...) {
      inner.execute("ROLLBACK");
      throw;
    }
  }
};
}  // namespace

TEST_CASE("with_debug records every statement inside transaction(fn) and the transaction as a whole", "[health]") {
  manual_clock::reset();
  tx_fake db;
  auto dbg = health::with_debug<manual_clock>(db);
  dbg.execute("select 1");
  db.inner.on_next([] {});                                   // BEGIN
  db.inner.on_next([] { manual_clock::advance(3ms); });      // the first insert takes 3 ms
  db.inner.on_next([] { manual_clock::advance(2ms); });      // the second 2 ms
  const int n = dbg.transaction([](auto& tx) {
    tx.execute("insert into orders values (1)");
    tx.execute("insert into order_lines values (1, 1)");
    manual_clock::advance(1ms);                              // fn's own work between statements
    return 2;
  });
  CHECK(n == 2);
  CHECK(db.inner.executed() == std::vector<std::string>{"select 1", "BEGIN", "insert into orders values (1)",
                                                        "insert into order_lines values (1, 1)", "COMMIT"});
  const auto m = dbg.query_metrics();
  REQUIRE(m.size() == 4);
  CHECK(m[1].sql == "insert into orders values (1)");
  CHECK(m[1].duration == 3.0);
  CHECK_FALSE(m[1].transaction);
  CHECK(m[2].sql == "insert into order_lines values (1, 1)");
  CHECK(m[2].duration == 2.0);
  CHECK(m[3].sql == "TRANSACTION");
  CHECK(m[3].transaction);
  CHECK(m[3].duration == 6.0);  // BEGIN to COMMIT
  CHECK_FALSE(m[3].failed);

  const auto stats = health::get_metrics(dbg);
  REQUIRE(stats.queries);
  CHECK(stats.queries->total == 3);  // the statements, written ones included; not the transaction
  CHECK(stats.queries->max_duration == 3.0);
  REQUIRE(stats.transactions);
  CHECK(stats.transactions->total == 1);
  CHECK(stats.transactions->avg_duration == 6.0);
}

TEST_CASE("a failing statement inside a transaction is recorded failed, with its code, and so is the transaction", "[health]") {
  tx_fake db;
  auto dbg = health::with_debug(db);
  db.inner.on_next([] {});  // BEGIN succeeds, then the insert fails
  db.inner.fail_next(infra::errc::constraint_violation, "duplicate key");
  CHECK_THROWS_AS(dbg.transaction([](auto& tx) { tx.execute("insert into orders values (1)"); }),
                  infra::database_error);
  const auto m = dbg.query_metrics();
  REQUIRE(m.size() == 2);
  CHECK(m[0].failed);
  CHECK(m[0].error == infra::errc::constraint_violation);
  CHECK(m[1].transaction);
  CHECK(m[1].failed);
  CHECK(m[1].error == infra::errc::constraint_violation);
  const auto stats = health::get_metrics(dbg);
  CHECK(stats.queries->error_count == 1);
  CHECK(stats.transactions->error_count == 1);
}

TEST_CASE("with_transaction_retry through with_debug records every attempt's statements", "[health]") {
  tx_fake db;
  auto dbg = health::with_debug(db);
  int runs = 0;
  kysera::infra::resilience::with_transaction_retry(
      dbg,
      [&](auto& tx) {
        tx.execute("update stock set n = n - 1");
        if (++runs == 1) throw infra::database_error(infra::errc::serialization_failure, "retry me", "fake");
      },
      {.sleep = [](std::chrono::milliseconds) {}});
  const auto stats = health::get_metrics(dbg);
  CHECK(stats.queries->total == 2);
  CHECK(stats.transactions->total == 2);
  CHECK(stats.transactions->error_count == 1);
}

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("with_debug on SQLite counts the writes made inside transactions", "[health][sqlite]") {
  infra::sqlite::connection db(":memory:");
  auto dbg = health::with_debug(db);
  dbg.execute("create table orders (id integer primary key, item text)");
  for (int t = 0; t < 10; ++t) {
    dbg.transaction([&](auto& tx) {
      for (int i = 0; i < 5; ++i) tx.execute("insert into orders(item) values ('x')");
    });
  }
  auto count = dbg.transaction([](auto& tx) { return tx.execute("select count(*) from orders").at(0, 0); });
  CHECK(count == std::optional<std::string>("50"));
  const auto stats = health::get_metrics(dbg);
  REQUIRE(stats.queries);
  CHECK(stats.queries->total == 1 + 50 + 1);  // before the fix: 1 (the create table)
  REQUIRE(stats.transactions);
  CHECK(stats.transactions->total == 11);
  CHECK(stats.transactions->error_count == 0);
  // The session a recorded fn gets still reaches the adapter's own members.
  dbg.transaction([](auto& tx) { CHECK(tx->is_open()); });
}
#endif

// ---------------------------------------------------------------- recommendation codes

TEST_CASE("every recommendation carries a machine-readable code, in the order of the texts", "[health]") {
  timed_fixture f;
  fake_pool pool;
  pool.metrics = {10, 1, 9, 0, 10};
  for (int i = 0; i < 5; ++i) f.run(150ms);  // all slow, average above half the threshold
  health::get_metrics_options o;
  o.pool = infra::pool::create_metrics_pool(pool);
  const auto r = health::get_metrics(f.dbg, o);
  REQUIRE(r.recommendation_details.size() == 3);
  CHECK(r.recommendation_details[0].code == health::recommendation_code::slow_queries);
  CHECK(r.recommendation_details[1].code == health::recommendation_code::slow_average);
  CHECK(r.recommendation_details[2].code == health::recommendation_code::pool_utilization_high);
  REQUIRE(r.recommendations.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(r.recommendations[i] == r.recommendation_details[i].message);
  CHECK(health::to_string(health::recommendation_code::slow_queries) == "slow_queries");
  CHECK(health::to_string(health::recommendation_code::slow_average) == "slow_average");
  CHECK(health::to_string(health::recommendation_code::pool_utilization_high) == "pool_utilization_high");
  CHECK(health::to_string(health::recommendation_code::database_bottleneck) == "database_bottleneck");
}

TEST_CASE("a full pool while queries time out is the database's fault, not the pool size", "[health]") {
  // A paused server: every connection leased, callers waiting, statements timing out.
  fake_database db;
  auto dbg = health::with_debug(db);
  fake_pool pool;
  pool.metrics = {10, 0, 10, 6, 10};
  health::get_metrics_options o;
  o.pool = infra::pool::create_metrics_pool(pool);
  auto codes = [](const health::metrics_result& r) {
    std::vector<health::recommendation_code> out;
    for (const auto& d : r.recommendation_details) out.push_back(d.code);
    return out;
  };
  dbg.execute("select 1");
  CHECK(codes(health::get_metrics(dbg, o)) ==
        std::vector<health::recommendation_code>{health::recommendation_code::pool_utilization_high});

  SECTION("statement timeouts in the period") {
    for (infra::errc code : {infra::errc::timeout, infra::errc::connection_lost}) {
      db.fail_next(code);
      CHECK_THROWS(dbg.execute("insert into orders values (1)"));
    }
    const auto r = health::get_metrics(dbg, o);
    CHECK(codes(r) == std::vector<health::recommendation_code>{health::recommendation_code::database_bottleneck});
    REQUIRE(r.recommendations.size() == 1);
    CHECK(r.recommendations[0].find("Consider increasing the pool size") == std::string::npos);
    CHECK(r.recommendations[0].find("(100.0%)") != std::string::npos);
    CHECK(r.recommendations[0].find("2 queries timed out or lost the database") != std::string::npos);
  }
  SECTION("an unhealthy health check") {
    health::health_check_result unhealthy;
    unhealthy.status = health::health_status::unhealthy;
    o.health_check = unhealthy;
    const auto r = health::get_metrics(dbg, o);
    CHECK(codes(r) == std::vector<health::recommendation_code>{health::recommendation_code::database_bottleneck});
    CHECK(r.recommendations[0].find("the last health check was unhealthy") != std::string::npos);
  }
  SECTION("a healthy check and errors of the statements themselves keep the pool advice") {
    health::health_check_result healthy;
    healthy.status = health::health_status::healthy;
    o.health_check = healthy;
    db.fail_next(infra::errc::constraint_violation);
    CHECK_THROWS(dbg.execute("insert into orders values (1)"));
    CHECK(codes(health::get_metrics(dbg, o)) ==
          std::vector<health::recommendation_code>{health::recommendation_code::pool_utilization_high});
  }
}
