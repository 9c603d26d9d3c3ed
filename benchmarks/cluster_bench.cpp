// What routing costs: an acquire + release through cluster::primary() and
// cluster::replica_or_primary() against the same cycle on the chosen host's pool directly, in
// one run, on 1 and 8 threads. The hosts are stub connections (host 0 the primary, host 1 a
// replica), so only the cluster's and the pool's own bookkeeping is measured; discovery runs
// once, in the constructor (discovery_interval 0).
//
//   ninja -C build-rel cluster_bench
//   build-rel/benchmarks/cluster_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Read the routed figure against the pool figure at the same thread count: the difference is
// what routing adds. "Time" on 8 threads is wall time over all threads' iterations (inverse
// throughput), as in pool_bench.

#include <benchmark/benchmark.h>

#include <kysera/infra/cluster.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

namespace {

/// A connection that does nothing; its URL says which role its host plays.
struct stub_connection {
  bool primary = false;
  void execute(std::string_view) noexcept {}
  void close() noexcept {}
};

}  // namespace

template <>
struct kysera::infra::cluster::cluster_traits<stub_connection> {
  static std::unique_ptr<stub_connection> open(const std::string& url) {
    auto c = std::make_unique<stub_connection>();
    c->primary = url == "stub://primary";
    return c;
  }
  static std::unique_ptr<stub_connection> open_probe(const std::string& url, std::chrono::milliseconds) {
    return open(url);
  }
  static probe_result probe(stub_connection& c) {
    return c.primary ? probe_result{host_role::primary, std::chrono::milliseconds(0)}
                     : probe_result{host_role::replica, std::chrono::milliseconds(0)};
  }
  static bool not_writable(const database_error&) noexcept { return false; }
};

namespace {

namespace cl = kysera::infra::cluster;
using stub_cluster = cl::cluster<stub_connection>;

stub_cluster& shared_cluster() {
  static stub_cluster db = [] {
    cl::cluster_options o;
    o.discovery_interval = std::chrono::milliseconds(0);
    o.pool.max_size = 8;  // as many connections as threads: no thread waits for one
    o.pool.housekeeping_interval = std::chrono::milliseconds(0);
    return stub_cluster({"stub://primary", "stub://replica"}, o);
  }();
  return db;
}

// Opens each host's connections up front, so no run pays for the factory.
void warm_up(stub_cluster& db) {
  for (std::size_t h = 0; h < db.size(); ++h) {
    std::vector<stub_cluster::pool_type::lease> leases;
    for (int i = 0; i < 8; ++i) leases.push_back(db.host_pool(h).acquire());
  }
}

void pool_direct(benchmark::State& state) {
  auto& db = shared_cluster();
  if (state.thread_index() == 0) warm_up(db);
  auto& pool = db.host_pool(0);
  for (auto _ : state) {
    auto c = pool.acquire();
    benchmark::DoNotOptimize(c.get());
  }
}
BENCHMARK(pool_direct)->Threads(1)->Threads(8)->UseRealTime();

void routed_primary(benchmark::State& state) {
  auto& db = shared_cluster();
  if (state.thread_index() == 0) warm_up(db);
  for (auto _ : state) {
    auto c = db.primary();
    benchmark::DoNotOptimize(c.get());
  }
}
BENCHMARK(routed_primary)->Threads(1)->Threads(8)->UseRealTime();

void pool_direct_replica(benchmark::State& state) {
  auto& db = shared_cluster();
  if (state.thread_index() == 0) warm_up(db);
  auto& pool = db.host_pool(1);
  for (auto _ : state) {
    auto c = pool.acquire();
    benchmark::DoNotOptimize(c.get());
  }
}
BENCHMARK(pool_direct_replica)->Threads(1)->Threads(8)->UseRealTime();

void routed_replica_or_primary(benchmark::State& state) {
  auto& db = shared_cluster();
  if (state.thread_index() == 0) warm_up(db);
  for (auto _ : state) {
    auto c = db.replica_or_primary();
    benchmark::DoNotOptimize(c.get());
  }
}
BENCHMARK(routed_replica_or_primary)->Threads(1)->Threads(8)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  benchmark::AddCustomContext("hosts", "2 (stub primary, stub replica), 8 connections each");
  benchmark::AddCustomContext("hardware_threads", std::to_string(std::thread::hardware_concurrency()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
