// Health module benchmarks.
//
//  - health check vs the same SELECT 1 issued directly through the driver on the same session
//    (PostgreSQL, MariaDB; for SQLite the adapter's probe statement, prepared once as the adapter
//    keeps it), plus the adapter's own ping(): target "check < 5 % slower". Only the interleaved
//    pairs compare (driver and check alternate call by call, so load hits both alike; a loopback
//    round trip varies too much between separate runs); read their median and p10 counters. The
//    *_thread_check variants hide the adapter's bounded ping, so the check takes its probe
//    thread: what the calling-thread probe saves;
//  - the check's own cost on a database that answers instantly, on the calling thread (the
//    database bounds its ping itself) and through the probe thread (it does not);
//  - with_debug recording overhead per query (target < 100 ns);
//  - get_metrics over 1,000 and 100,000 entries, next to its floor (the same statistics computed
//    on a plain vector of the durations).
//
// The server benchmarks need running servers: start them with
//   KYSERA_TEST_SERVER_DIR=/tmp/x bash tests/support/servers.sh start
// and run with KYSERA_TEST_SERVER_DIR=/tmp/x (or KYSERA_TEST_POSTGRES_URL / KYSERA_TEST_MYSQL_URL).
// Without them those benchmarks report an error and the others still run.

#include <benchmark/benchmark.h>

#include "support_interleave.hpp"
#include "support_servers.hpp"

#include <kysera/infra/health.hpp>

#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include <kysera/infra/adapters/postgres.hpp>
#endif
#if defined(KYSERA_INFRA_HAS_MYSQL)
#include <kysera/infra/adapters/mysql.hpp>
#endif
#if defined(KYSERA_INFRA_HAS_SQLITE)
#include <kysera/infra/adapters/sqlite.hpp>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace infra = kysera::infra;
namespace health = kysera::infra::health;

namespace {

using kysera::bench::server_url;

health::health_check_options quiet_options() {
  health::health_check_options o;
  o.logger = &infra::silent_logger();
  return o;
}

/// Answers at once; the smallest possible database.
struct instant_database {
  std::uint64_t n = 0;
  void execute(std::string_view) { benchmark::DoNotOptimize(++n); }
  void close() {}
};

/// An instant database that also bounds its ping, so the check probes on the calling thread.
struct instant_bounded_database : instant_database {
  bool try_ping_until(std::chrono::steady_clock::time_point) {
    execute("SELECT 1");
    return true;
  }
};

/// Thread-safe instant database for the multi-threaded recording benchmark.
struct shared_instant_database {
  std::atomic<std::uint64_t> n{0};
  void execute(std::string_view) { n.fetch_add(1, std::memory_order_relaxed); }
  void close() {}
};

/// Hides a database's bounded ping, so that the check takes its probe thread: the cost of the
/// thread hand-off, for comparison.
template <class Db>
struct via_probe_thread {
  Db& db;
  decltype(auto) execute(std::string_view sql) { return db.execute(sql); }
  void ping() { db.ping(); }
  void cancel() noexcept { db.cancel(); }
  void close() {}
};

/// Alternates the direct statement and the health check call by call (support_interleave.hpp);
/// an unhealthy result ends the case with its first error.
template <class Direct, class Check>
void interleave(benchmark::State& state, Direct&& direct, Check&& check) {
  kysera::bench::interleave(state, "direct", direct, "check", [&] {
    auto r = check();
    if (r.status == health::health_status::unhealthy) {
      throw std::runtime_error(r.errors.empty() ? "unhealthy" : r.errors.front());
    }
  });
}

template <class Check>
void run_checks(benchmark::State& state, Check&& check) {
  for (auto _ : state) {
    auto r = check();
    if (r.status == health::health_status::unhealthy) {
      state.SkipWithError(r.errors.empty() ? "unhealthy" : r.errors.front().c_str());
      break;
    }
    benchmark::DoNotOptimize(r);
  }
}

// ---------------------------------------------------------------- the check's own cost

// The check's bookkeeping alone: the probe runs on the calling thread.
void BM_health_check_instant_database_calling_thread(benchmark::State& state) {
  instant_bounded_database db;
  auto o = quiet_options();
  run_checks(state, [&] { return health::perform_health_check(db, o); });
}
BENCHMARK(BM_health_check_instant_database_calling_thread)->UseRealTime();

// The same plus the hand-off to the probe thread and back (a database without try_ping_until).
void BM_health_check_instant_database_probe_thread(benchmark::State& state) {
  instant_database db;
  auto o = quiet_options();
  run_checks(state, [&] { return health::perform_health_check(db, o); });
}
BENCHMARK(BM_health_check_instant_database_probe_thread)->UseRealTime();

// ---------------------------------------------------------------- PostgreSQL

#if defined(KYSERA_INFRA_HAS_POSTGRES)
std::unique_ptr<infra::postgres::connection> open_postgres(benchmark::State& state) {
  auto url = server_url("KYSERA_TEST_POSTGRES_URL");
  if (!url) {
    state.SkipWithError("no PostgreSQL server (set KYSERA_TEST_SERVER_DIR)");
    return nullptr;
  }
  try {
    return std::make_unique<infra::postgres::connection>(*url);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return nullptr;
  }
}

/// `SELECT 1` through libpqxx itself, on the adapter's session.
void postgres_driver_select1(pqxx::connection& native) {
  pqxx::nontransaction tx(native);
  pqxx::result r = tx.exec("SELECT 1");
  tx.commit();
  benchmark::DoNotOptimize(r);
}

void BM_postgres_adapter_ping(benchmark::State& state) {
  auto db = open_postgres(state);
  if (!db) return;
  for (auto _ : state) db->ping();
}
BENCHMARK(BM_postgres_adapter_ping)->UseRealTime();

void BM_postgres_interleaved_driver_vs_check(benchmark::State& state) {
  auto db = open_postgres(state);
  if (!db) return;
  pqxx::connection& native = db->native();
  auto o = quiet_options();
  interleave(
      state,
      [&] { postgres_driver_select1(native); },
      [&] { return health::perform_health_check(*db, o); });
}
BENCHMARK(BM_postgres_interleaved_driver_vs_check)->UseRealTime();

void BM_postgres_interleaved_driver_vs_thread_check(benchmark::State& state) {
  auto db = open_postgres(state);
  if (!db) return;
  pqxx::connection& native = db->native();
  via_probe_thread<infra::postgres::connection> threaded{*db};
  auto o = quiet_options();
  interleave(
      state,
      [&] { postgres_driver_select1(native); },
      [&] { return health::perform_health_check(threaded, o); });
}
BENCHMARK(BM_postgres_interleaved_driver_vs_thread_check)->UseRealTime();

void BM_postgres_interleaved_ping_vs_check(benchmark::State& state) {
  auto db = open_postgres(state);
  if (!db) return;
  auto o = quiet_options();
  interleave(state, [&] { db->ping(); }, [&] { return health::perform_health_check(*db, o); });
}
BENCHMARK(BM_postgres_interleaved_ping_vs_check)->UseRealTime();
#endif

// ---------------------------------------------------------------- MariaDB

#if defined(KYSERA_INFRA_HAS_MYSQL)
std::unique_ptr<infra::mysql::connection> open_mysql(benchmark::State& state) {
  auto url = server_url("KYSERA_TEST_MYSQL_URL");
  if (!url) {
    state.SkipWithError("no MariaDB server (set KYSERA_TEST_SERVER_DIR)");
    return nullptr;
  }
  try {
    return std::make_unique<infra::mysql::connection>(*url);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return nullptr;
  }
}

/// `SELECT 1` through Connector/C++ itself, on the adapter's session.
void mysql_driver_select1(::sql::Connection& native) {
  std::unique_ptr<::sql::Statement> stmt(native.createStatement());
  std::unique_ptr<::sql::ResultSet> rs(stmt->executeQuery("SELECT 1"));
  benchmark::DoNotOptimize(rs->next());
}

void BM_mysql_adapter_ping(benchmark::State& state) {
  auto db = open_mysql(state);
  if (!db) return;
  for (auto _ : state) db->ping();
}
BENCHMARK(BM_mysql_adapter_ping)->UseRealTime();

void BM_mysql_interleaved_driver_vs_check(benchmark::State& state) {
  auto db = open_mysql(state);
  if (!db) return;
  ::sql::Connection& native = db->native();
  auto o = quiet_options();
  interleave(
      state,
      [&] { mysql_driver_select1(native); },
      [&] { return health::perform_health_check(*db, o); });
}
BENCHMARK(BM_mysql_interleaved_driver_vs_check)->UseRealTime();

void BM_mysql_interleaved_driver_vs_thread_check(benchmark::State& state) {
  auto db = open_mysql(state);
  if (!db) return;
  ::sql::Connection& native = db->native();
  via_probe_thread<infra::mysql::connection> threaded{*db};
  auto o = quiet_options();
  interleave(
      state,
      [&] { mysql_driver_select1(native); },
      [&] { return health::perform_health_check(threaded, o); });
}
BENCHMARK(BM_mysql_interleaved_driver_vs_thread_check)->UseRealTime();
#endif

// ---------------------------------------------------------------- SQLite (in memory)

#if defined(KYSERA_INFRA_HAS_SQLITE)
/// One statement prepared once and kept, as the adapter keeps its probe: each run only resets
/// and steps it, so driver and adapter are compared like with like.
class sqlite_prepared {
 public:
  sqlite_prepared(sqlite3* db, const char* sql) { sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~sqlite_prepared() { sqlite3_finalize(stmt_); }
  sqlite_prepared(const sqlite_prepared&) = delete;
  sqlite_prepared& operator=(const sqlite_prepared&) = delete;
  void run() {
    benchmark::DoNotOptimize(sqlite3_step(stmt_));
    sqlite3_reset(stmt_);
  }

 private:
  sqlite3_stmt* stmt_ = nullptr;
};

void BM_sqlite_driver_prepared_select1(benchmark::State& state) {
  infra::sqlite::connection db(":memory:");
  sqlite_prepared select1(db.native(), "SELECT 1");
  for (auto _ : state) select1.run();
}
BENCHMARK(BM_sqlite_driver_prepared_select1)->UseRealTime();

/// The adapter's probe statement (it reads the schema version from the file header), prepared
/// once, through the C API: what the adapter's ping costs without the adapter.
void BM_sqlite_driver_prepared_probe(benchmark::State& state) {
  infra::sqlite::connection db(":memory:");
  sqlite_prepared probe(db.native(), "PRAGMA schema_version");
  for (auto _ : state) probe.run();
}
BENCHMARK(BM_sqlite_driver_prepared_probe)->UseRealTime();

void BM_sqlite_adapter_ping(benchmark::State& state) {
  infra::sqlite::connection db(":memory:");
  for (auto _ : state) db.ping();
}
BENCHMARK(BM_sqlite_adapter_ping)->UseRealTime();

void BM_sqlite_adapter_bounded_ping(benchmark::State& state) {
  infra::sqlite::connection db(":memory:");
  for (auto _ : state) {
    benchmark::DoNotOptimize(db.try_ping_until(std::chrono::steady_clock::now() + std::chrono::seconds(5)));
  }
}
BENCHMARK(BM_sqlite_adapter_bounded_ping)->UseRealTime();

void BM_sqlite_health_check(benchmark::State& state) {
  infra::sqlite::connection db(":memory:");
  auto o = quiet_options();
  run_checks(state, [&] { return health::perform_health_check(db, o); });
}
BENCHMARK(BM_sqlite_health_check)->UseRealTime();

void BM_sqlite_interleaved_driver_vs_check(benchmark::State& state) {
  infra::sqlite::connection db(":memory:");
  sqlite_prepared probe(db.native(), "PRAGMA schema_version");
  auto o = quiet_options();
  interleave(state, [&] { probe.run(); }, [&] { return health::perform_health_check(db, o); });
}
BENCHMARK(BM_sqlite_interleaved_driver_vs_check)->UseRealTime();
#endif

// ---------------------------------------------------------------- with_debug recording

constexpr std::string_view typical_sql = "SELECT id, name, email FROM users WHERE id = $1 LIMIT 1";

void BM_execute_direct(benchmark::State& state) {
  instant_database db;
  for (auto _ : state) db.execute(typical_sql);
}
BENCHMARK(BM_execute_direct);

void BM_execute_with_debug(benchmark::State& state) {
  instant_database db;
  auto dbg = health::with_debug(db);
  for (auto _ : state) dbg.execute(typical_sql);
  state.counters["recorded"] = static_cast<double>(dbg.recorded_queries());
}
BENCHMARK(BM_execute_with_debug);

void BM_execute_with_debug_no_sql(benchmark::State& state) {
  instant_database db;
  health::debug_options o;
  o.record_sql = false;
  auto dbg = health::with_debug(db, o);
  for (auto _ : state) dbg.execute(typical_sql);
}
BENCHMARK(BM_execute_with_debug_no_sql);

void BM_execute_with_debug_long_sql(benchmark::State& state) {
  instant_database db;
  auto dbg = health::with_debug(db);
  const std::string sql(4000, 'x');  // cut to 256 bytes
  for (auto _ : state) dbg.execute(sql);
}
BENCHMARK(BM_execute_with_debug_long_sql);

shared_instant_database shared_db;
health::debug_database<shared_instant_database>* shared_dbg = nullptr;

void BM_execute_with_debug_contended(benchmark::State& state) {
  if (state.thread_index() == 0) shared_dbg = new health::debug_database<shared_instant_database>(shared_db);
  for (auto _ : state) shared_dbg->execute(typical_sql);
  if (state.thread_index() == 0) {
    delete shared_dbg;
    shared_dbg = nullptr;
  }
}
BENCHMARK(BM_execute_with_debug_contended)->Threads(2)->UseRealTime();

// ---------------------------------------------------------------- get_metrics

void BM_get_metrics(benchmark::State& state) {
  instant_database db;
  health::debug_options o;
  o.max_metrics = static_cast<std::size_t>(state.range(0));
  auto dbg = health::with_debug(db, o);
  for (std::int64_t i = 0; i < state.range(0); ++i) dbg.execute(typical_sql);
  for (auto _ : state) {
    auto m = health::get_metrics(dbg);
    benchmark::DoNotOptimize(m);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_get_metrics)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);

// The floor under get_metrics, for comparison in the same run: the same durations copied out of
// a plain vector, their sum, minimum and maximum, and the two selections for p95 and p99.
void BM_get_metrics_floor(benchmark::State& state) {
  instant_database db;
  health::debug_options o;
  o.max_metrics = static_cast<std::size_t>(state.range(0));
  auto dbg = health::with_debug(db, o);
  for (std::int64_t i = 0; i < state.range(0); ++i) dbg.execute(typical_sql);
  std::vector<double> durations;
  for (const auto& m : dbg.query_metrics()) durations.push_back(m.duration);
  for (auto _ : state) {
    std::vector<double> ms(durations);
    double sum = 0.0;
    double low = ms.front();
    double high = ms.front();
    for (double d : ms) {
      sum += d;
      low = std::min(low, d);
      high = std::max(high, d);
    }
    const auto n = static_cast<std::ptrdiff_t>(ms.size());
    const auto i95 = (95 * n + 99) / 100 - 1;
    const auto i99 = (99 * n + 99) / 100 - 1;
    std::nth_element(ms.begin(), ms.begin() + i95, ms.end());
    std::nth_element(ms.begin() + i95 + 1, ms.begin() + i99, ms.end());
    benchmark::DoNotOptimize(sum + low + high + ms[static_cast<std::size_t>(i95)] + ms[static_cast<std::size_t>(i99)]);
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_get_metrics_floor)->Arg(1000)->Arg(100000)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
