// The cost of a statement deadline: the same `SELECT 1` with a deadline set and without. Issue
// #14's bar: <= 2 % slower (median and p10) on the servers, <= 50 ns on SQLite.
//
//  - PostgreSQL and MariaDB (the loopback test servers; an error when KYSERA_TEST_SERVER_DIR names
//    none): with and without alternate call by call on one session (support_interleave.hpp), a
//    fresh one-hour `deadline_scope` around every other call (the scope's cost included). Read
//    the counters `overhead_%` (medians) and `overhead_p10_%`. Separate runs of a round trip, and
//    two sessions side by side, differ by more than 2 % (which CPU each server process runs on),
//    so a connection's own `statement_deadline` is not compared there: past the deadline's
//    computation (one clock read, as the scope's) it takes the same path, and the SQLite cases
//    compare the two computations.
//  - SQLite (in memory): none, the connection's own `statement_deadline`, and an ambient
//    deadline as separate cases (read the medians), and the two deadlines against none call by
//    call (`sqlite_pair_*`; read `added_ns`), which stays steadier on a busy machine.
//
//   deadline_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>

#include "support_interleave.hpp"
#include "support_servers.hpp"

#include <kysera/infra/deadline.hpp>

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
#include <chrono>
#include <exception>
#include <optional>
#include <string>
#include <vector>

namespace infra = kysera::infra;
using namespace std::chrono_literals;

namespace {

using kysera::bench::server_url;

/// The 10th percentile of the repetitions (google benchmark reports mean, median, stddev).
double p10(const std::vector<double>& v) {
  std::vector<double> s(v);
  std::sort(s.begin(), s.end());
  return s.empty() ? 0.0 : s[s.size() / 10];
}

enum class mode { none, own, ambient };

/// Runs `SELECT 1` on `db` in the loop; `mode` says which deadline is set.
template <class Db>
void run(benchmark::State& state, Db& db, mode m) {
  std::optional<infra::deadline_scope> scope;
  if (m == mode::ambient) scope.emplace(std::chrono::hours(1));
  for (auto _ : state) benchmark::DoNotOptimize(db.execute("SELECT 1"));
}

#if defined(KYSERA_INFRA_HAS_SQLITE)
void sqlite_select(benchmark::State& state, mode m) {
  infra::sqlite::connection_options o;
  if (m == mode::own) o.statement_deadline = 10s;
  infra::sqlite::connection db(":memory:", o);
  run(state, db, m);
}
BENCHMARK_CAPTURE(sqlite_select, no_deadline, mode::none)->ComputeStatistics("p10", p10);
BENCHMARK_CAPTURE(sqlite_select, statement_deadline, mode::own)->ComputeStatistics("p10", p10);
BENCHMARK_CAPTURE(sqlite_select, ambient_deadline, mode::ambient)->ComputeStatistics("p10", p10);

// The same comparisons call by call (support_interleave.hpp; read `added_ns`): two in-memory
// databases, one with a 10 s statement_deadline; and one database, every other call inside a
// fresh one-hour deadline_scope (the scope's cost included).
void sqlite_pair_statement_deadline(benchmark::State& state) {
  infra::sqlite::connection_options o;
  o.statement_deadline = 10s;
  infra::sqlite::connection plain(":memory:");
  infra::sqlite::connection timed(":memory:", o);
  kysera::bench::interleave(
      state, "without", [&] { benchmark::DoNotOptimize(plain.execute("SELECT 1")); }, "with",
      [&] { benchmark::DoNotOptimize(timed.execute("SELECT 1")); });
}
BENCHMARK(sqlite_pair_statement_deadline);

void sqlite_pair_ambient_deadline(benchmark::State& state) {
  infra::sqlite::connection db(":memory:");
  kysera::bench::interleave(
      state, "without", [&] { benchmark::DoNotOptimize(db.execute("SELECT 1")); }, "with", [&] {
        const infra::deadline_scope scope(std::chrono::hours(1));
        benchmark::DoNotOptimize(db.execute("SELECT 1"));
      });
}
BENCHMARK(sqlite_pair_ambient_deadline);
#endif

/// `SELECT 1` alternately without a deadline and inside a fresh ambient one, on one session
/// opened from the URL under `key` (an error without one).
template <class Db>
void alternate(benchmark::State& state, const char* key) {
  auto url = server_url(key);
  if (!url) {
    state.SkipWithError("no test server (set KYSERA_TEST_SERVER_DIR)");
    return;
  }
  std::optional<Db> db;
  try {
    db.emplace(*url);
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  kysera::bench::interleave(
      state, "without", [&] { benchmark::DoNotOptimize(db->execute("SELECT 1")); }, "with",
      [&] {
        const infra::deadline_scope scope(std::chrono::hours(1));
        benchmark::DoNotOptimize(db->execute("SELECT 1"));
      });
}

#if defined(KYSERA_INFRA_HAS_POSTGRES)
void postgres_select_ambient_deadline(benchmark::State& state) {
  alternate<infra::postgres::connection>(state, "KYSERA_TEST_POSTGRES_URL");
}
BENCHMARK(postgres_select_ambient_deadline)->UseRealTime();
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
void mysql_select_ambient_deadline(benchmark::State& state) {
  alternate<infra::mysql::connection>(state, "KYSERA_TEST_MYSQL_URL");
}
BENCHMARK(mysql_select_ambient_deadline)->UseRealTime();
#endif

}  // namespace

BENCHMARK_MAIN();
