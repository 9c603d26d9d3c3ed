// What the metrics cost: one histogram record against a plain relaxed atomic increment in the
// same run; the instrumenting wrapper around a database that does nothing, and around a loopback
// PostgreSQL `SELECT 1` through a pool (interleaved with the bare pool, so both see the same
// server); and one scrape of 10 pools + 10 breakers + 1,000 histogram series.
//
//   ./metrics_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// The PostgreSQL case needs the test servers (KYSERA_TEST_SERVER_DIR, see health_bench.cpp).
#include <benchmark/benchmark.h>

#include <kysera/infra/metrics.hpp>
#include <kysera/infra/pool.hpp>
#include <kysera/infra/resilience.hpp>

#include "support_interleave.hpp"

#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include <kysera/infra/adapters/postgres.hpp>
#endif

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace infra = kysera::infra;
namespace km = kysera::infra::metrics;

namespace {

// Durations spread over the buckets, so the bucket scan is not one predicted branch.
const std::array<std::chrono::nanoseconds, 8> spread{
    std::chrono::microseconds(300), std::chrono::milliseconds(3), std::chrono::microseconds(700),
    std::chrono::milliseconds(40),  std::chrono::microseconds(90), std::chrono::milliseconds(200),
    std::chrono::milliseconds(2),   std::chrono::seconds(2)};

void BM_atomic_increment(benchmark::State& state) {
  static std::atomic<std::uint64_t> counter{0};
  for (auto _ : state) counter.fetch_add(1, std::memory_order_relaxed);
  benchmark::DoNotOptimize(counter.load());
}
BENCHMARK(BM_atomic_increment);
BENCHMARK(BM_atomic_increment)->Threads(2);

void BM_histogram_record(benchmark::State& state) {
  static km::histogram h;  // shared by the threads of a run
  std::size_t i = 0;
  for (auto _ : state) {
    h.record(spread[i++ & 7]);
  }
  benchmark::DoNotOptimize(h.snapshot().count);
}
BENCHMARK(BM_histogram_record);
BENCHMARK(BM_histogram_record)->Threads(2);

void BM_histogram_record_seconds(benchmark::State& state) {
  km::histogram h;
  std::array<double, 8> seconds{};
  for (std::size_t k = 0; k < 8; ++k) seconds[k] = std::chrono::duration<double>(spread[k]).count();
  std::size_t i = 0;
  for (auto _ : state) h.record(seconds[i++ & 7]);
  benchmark::DoNotOptimize(h.snapshot().count);
}
BENCHMARK(BM_histogram_record_seconds);

/// A database whose execute does nothing (out of line): what remains is the wrapper's cost.
struct null_database {
  [[gnu::noinline]] void execute(std::string_view sql) { benchmark::DoNotOptimize(sql.data()); }
  void close() {}
};

void BM_execute_direct(benchmark::State& state) {
  null_database db;
  for (auto _ : state) db.execute("SELECT 1");
}
BENCHMARK(BM_execute_direct);

void BM_execute_instrumented(benchmark::State& state) {
  null_database db;
  km::registry reg;
  auto idb = km::instrument(db, reg, {km::db_system::postgresql, "app"});
  for (auto _ : state) idb.execute("SELECT 1");
}
BENCHMARK(BM_execute_instrumented);

/// 10 pools, 10 breakers and histograms of 1,000 series (100 user histograms of 10 buckets each
/// count as 100 series here; `series` counts every exported histogram).
struct scrape_scene {
  struct tiny_db {
    void execute(std::string_view) {}
    void close() {}
  };
  using pool_t = infra::pool::connection_pool<tiny_db>;
  km::registry reg;
  std::vector<std::unique_ptr<pool_t>> pools;
  std::vector<std::unique_ptr<infra::resilience::circuit_breaker>> breakers;
  std::vector<std::unique_ptr<km::histogram>> histograms;
  std::vector<km::registration> handles;

  explicit scrape_scene(int series) {
    infra::pool::pool_options o;
    o.housekeeping_interval = std::chrono::milliseconds(0);
    for (int i = 0; i < 10; ++i) {
      pools.push_back(std::make_unique<pool_t>([] { return std::make_unique<tiny_db>(); }, o));
      handles.push_back(reg.add_pool("pool-" + std::to_string(i), *pools.back()));
      breakers.push_back(std::make_unique<infra::resilience::circuit_breaker>());
      handles.push_back(reg.add_circuit_breaker("breaker-" + std::to_string(i), *breakers.back()));
    }
    for (int i = 0; i < series; ++i) {
      histograms.push_back(std::make_unique<km::histogram>());
      histograms.back()->record(std::chrono::milliseconds(i % 50));
      handles.push_back(reg.add_histogram("app.request.duration", "s", "Requests.",
                                          {{"route", "/route/" + std::to_string(i)}}, *histograms.back()));
    }
  }
};

void BM_scrape_prometheus(benchmark::State& state) {
  scrape_scene scene(static_cast<int>(state.range(0)));
  std::size_t bytes = 0;
  for (auto _ : state) {
    auto text = km::to_prometheus(scene.reg);
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_scrape_prometheus)->Arg(1000)->Unit(benchmark::kMicrosecond);

void BM_scrape_openmetrics(benchmark::State& state) {
  scrape_scene scene(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    auto text = km::to_openmetrics(scene.reg);
    benchmark::DoNotOptimize(text.data());
  }
}
BENCHMARK(BM_scrape_openmetrics)->Arg(1000)->Unit(benchmark::kMicrosecond);

#if defined(KYSERA_INFRA_HAS_POSTGRES)
std::optional<std::string> postgres_url() {
  if (const char* v = std::getenv("KYSERA_TEST_POSTGRES_URL"); v && *v) return std::string(v);
  const char* dir = std::getenv("KYSERA_TEST_SERVER_DIR");
  if (!dir || !*dir) return std::nullopt;
  std::ifstream in(std::string(dir) + "/server.env");
  const std::string prefix = "KYSERA_TEST_POSTGRES_URL=";
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return std::nullopt;
}

// A bare pooled SELECT 1 and an instrumented one on the same pool, taking turns going first
// (support_interleave.hpp): medians and 10th percentiles of each, and the overhead. Iteration
// time is the pair.
void BM_postgres_pool_select1_bare_vs_instrumented(benchmark::State& state) {
  const auto url = postgres_url();
  if (!url) {
    state.SkipWithError("no PostgreSQL server (set KYSERA_TEST_SERVER_DIR)");
    return;
  }
  using pool_t = infra::pool::connection_pool<infra::postgres::connection>;
  infra::pool::pool_options o;
  o.max_size = 1;
  o.housekeeping_interval = std::chrono::milliseconds(0);
  std::optional<pool_t> pool;
  try {
    pool.emplace([&] { return std::make_unique<infra::postgres::connection>(*url); }, o);
    pool->execute("SELECT 1");
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  km::registry reg;
  auto idb = km::instrument(*pool, reg, {km::db_system::postgresql, "postgres"});
  kysera::bench::interleave(
      state, "bare", [&] { pool->execute("SELECT 1"); }, "instrumented",
      [&] { idb.execute("SELECT 1"); });
}
BENCHMARK(BM_postgres_pool_select1_bare_vs_instrumented)->UseRealTime()->Unit(benchmark::kMicrosecond);
#endif

}  // namespace

BENCHMARK_MAIN();
