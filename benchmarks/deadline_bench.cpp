// The cost of a statement deadline: the same statement with a deadline set (the connection's
// `statement_deadline`, and an ambient `deadline_scope`) and without, on SQLite (in memory) and on
// the loopback PostgreSQL and MariaDB test servers (skipped when KYSERA_TEST_SERVER_DIR names
// none). Issue #14's bar: <= 2 % slower (median and p10) on the servers, <= 50 ns on SQLite.
// Ratios come from one run, interleaved:
//
//   deadline_bench --benchmark_repetitions=15 --benchmark_enable_random_interleaving=true
//                  --benchmark_report_aggregates_only=true

#include <benchmark/benchmark.h>

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
#include <cstdlib>
#include <fstream>
#include <memory>
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
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
void postgres_select(benchmark::State& state, mode m) {
  auto url = server_url("KYSERA_TEST_POSTGRES_URL");
  if (!url) {
    state.SkipWithError("no PostgreSQL test server (KYSERA_TEST_SERVER_DIR)");
    return;
  }
  infra::postgres::connection_options o;
  if (m == mode::own) o.statement_deadline = 10s;
  infra::postgres::connection db(*url, o);
  run(state, db, m);
}
BENCHMARK_CAPTURE(postgres_select, no_deadline, mode::none)->ComputeStatistics("p10", p10)->UseRealTime();
BENCHMARK_CAPTURE(postgres_select, statement_deadline, mode::own)->ComputeStatistics("p10", p10)->UseRealTime();
BENCHMARK_CAPTURE(postgres_select, ambient_deadline, mode::ambient)->ComputeStatistics("p10", p10)->UseRealTime();
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
void mysql_select(benchmark::State& state, mode m) {
  auto url = server_url("KYSERA_TEST_MYSQL_URL");
  if (!url) {
    state.SkipWithError("no MariaDB test server (KYSERA_TEST_SERVER_DIR)");
    return;
  }
  infra::mysql::connection_options o;
  if (m == mode::own) o.statement_deadline = 10s;
  infra::mysql::connection db(*url, o);
  run(state, db, m);
}
BENCHMARK_CAPTURE(mysql_select, no_deadline, mode::none)->ComputeStatistics("p10", p10)->UseRealTime();
BENCHMARK_CAPTURE(mysql_select, statement_deadline, mode::own)->ComputeStatistics("p10", p10)->UseRealTime();
BENCHMARK_CAPTURE(mysql_select, ambient_deadline, mode::ambient)->ComputeStatistics("p10", p10)->UseRealTime();
#endif

}  // namespace

BENCHMARK_MAIN();
