// Acquire + release cycle of kysera's connection_pool against SOCI's connection_pool and Poco's
// SessionPool, on 1, 2 and 8 threads, in one run. The pools hold stub connections that do
// nothing, so only the pool's own bookkeeping is measured.
//
//   ninja -C build-rel pool_bench
//   build-rel/benchmarks/pool_bench --benchmark_repetitions=5
//     --benchmark_report_aggregates_only=true
//
// How to read it (the run's context lines repeat the pool sizes and the machine's cores):
//  - "Time" with several threads is Google Benchmark's wall time divided by the iterations of
//    all threads together: the inverse of the pool's throughput, not a latency.
//  - The counter per_thread_ns is each thread's own wall time per cycle, averaged over threads:
//    the latency one caller sees.
//  - kysera_connection_pool_timed is kysera_connection_pool on a pool with record_timings.
//  - The *_connection_pool cases give each pool 8 connections, so up to 8 threads never compete
//    for a connection: kysera's thread-local hint hands each thread its own slot again, while
//    SOCI and Poco serialise on one lock. The *_contended cases give the pool 2 connections for 8
//    threads, so threads do compete for the same connections and the hint cannot help. Poco is
//    left out there: its SessionPool throws instead of waiting when every session is in use.

#include <benchmark/benchmark.h>

#include <kysera/infra/pool.hpp>

#include "support_interleave.hpp"

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#if defined(KYSERA_BENCH_WITH_SOCI)
#include <soci/connection-pool.h>
#include <soci/session.h>
#endif

#if defined(KYSERA_BENCH_WITH_POCO)
#include <Poco/Data/AbstractSessionImpl.h>
#include <Poco/Data/Connector.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/SessionFactory.h>
#include <Poco/Data/SessionPool.h>
#endif

namespace {

constexpr std::size_t pool_size = 8;
constexpr std::size_t contended_pool_size = 2;  // fewer connections than the 8 threads
// Fixed, not estimated: a contended pool runs in one of two modes (threads finding a connection
// idle, a few ns a cycle; or queued waiters, each release a wake-up, microseconds a cycle), and an
// iteration count estimated in the first mode would run for many minutes in the second.
constexpr benchmark::IterationCount contended_iterations = 200000;  // per thread

// A connection that does nothing: models kysera::infra::database.
struct stub_connection {
  void execute(std::string_view) noexcept {}
  void close() noexcept {}
};

using kysera_pool = kysera::infra::pool::connection_pool<stub_connection>;

kysera_pool make_pool(std::size_t size, bool record_timings = false) {
  kysera::infra::pool::pool_options o;
  o.max_size = size;
  o.housekeeping_interval = std::chrono::milliseconds(0);
  o.record_timings = record_timings;
  return kysera_pool([] { return std::make_unique<stub_connection>(); }, o);
}

// Every option of the pool during an outage on (issue #14): a connect limit, a bounded wait
// queue, leak detection (the one that touches the fast path) and the connect backoff.
kysera::infra::pool::pool_options outage_options(std::size_t size) {
  kysera::infra::pool::pool_options o;
  o.max_size = size;
  o.housekeeping_interval = std::chrono::milliseconds(0);
  o.max_connecting = 2;
  o.max_waiters = 64;
  o.leak_detection_threshold = std::chrono::seconds(10);
  o.connect_backoff_initial = std::chrono::milliseconds(100);
  return o;
}

kysera_pool make_outage_pool(std::size_t size) {
  return kysera_pool([] { return std::make_unique<stub_connection>(); }, outage_options(size));
}

kysera_pool& our_pool() {
  static kysera_pool pool = make_pool(pool_size);
  return pool;
}

kysera_pool& our_timed_pool() {
  static kysera_pool pool = make_pool(pool_size, true);
  return pool;
}

kysera_pool& our_contended_pool() {
  static kysera_pool pool = make_pool(contended_pool_size);
  return pool;
}

// Opens every connection up front, so no run pays for the factory.
void warm_up(kysera_pool& pool, std::size_t size) {
  std::vector<kysera_pool::lease> leases;
  for (std::size_t i = 0; i < size; ++i) leases.push_back(pool.acquire());
}

/// Runs `cycle` for every iteration and reports this thread's own wall time per cycle as
/// per_thread_ns (averaged over the threads), next to Google Benchmark's inverse throughput.
template <class Cycle>
void measure(benchmark::State& state, Cycle&& cycle) {
  const auto start = std::chrono::steady_clock::now();
  for (auto _ : state) cycle();
  const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
  state.counters["per_thread_ns"] = benchmark::Counter(
      state.iterations() > 0 ? took.count() / static_cast<double>(state.iterations()) : 0.0,
      benchmark::Counter::kAvgThreads);
  state.SetItemsProcessed(state.iterations());
}

// One acquire + release per iteration on `pool`, whose `size` connections thread 0 opens first.
void acquire_release(benchmark::State& state, kysera_pool& pool, std::size_t size) {
  if (state.thread_index() == 0) warm_up(pool, size);
  measure(state, [&] {
    auto lease = pool.acquire();
    benchmark::DoNotOptimize(&lease.get());
  });
}

void kysera_connection_pool(benchmark::State& state) {
  auto& pool = our_pool();
  acquire_release(state, pool, pool_size);
}
BENCHMARK(kysera_connection_pool)->Threads(1)->Threads(2)->Threads(8)->UseRealTime();

// The same cycle on a pool with record_timings: two clock reads (the lease's start and end) and
// two histogram records (wait_time, use_time) more. Its ratio to kysera_connection_pool in the
// same run is the price of the timings.
void kysera_connection_pool_timed(benchmark::State& state) {
  acquire_release(state, our_timed_pool(), pool_size);
}
BENCHMARK(kysera_connection_pool_timed)->Threads(1)->Threads(2)->Threads(8)->UseRealTime();

void kysera_contended(benchmark::State& state) {
  auto& pool = our_contended_pool();
  acquire_release(state, pool, contended_pool_size);
}
BENCHMARK(kysera_contended)->Threads(8)->Iterations(contended_iterations)->UseRealTime();

// The comparison the "within 10 %" asks for, made so that load hits both alike: each
// thread runs blocks of 1,000 cycles on a pool with the defaults and on one with every outage
// option on, in turns (support_interleave.hpp). The counters are per block (so 1 us is 1 ns a
// cycle): medians, 10th percentiles and the overhead, averaged over the threads.
//
// The two pools hold different connection types, so each has its own copy of the acquire code,
// as two pools in a service do that are used from different places. Through one shared copy the
// difference followed where the heap had put the two pools rather than their options (0 to
// 25 %, moving to the other pool when its lease records moved by a few cache lines), which looks
// like the CPU's predictors trained on one pool and wrong for the other after each turn.
struct other_stub_connection {
  void execute(std::string_view) noexcept {}
  void close() noexcept {}
};
using other_pool = kysera::infra::pool::connection_pool<other_stub_connection>;

void kysera_outage_options_interleaved(benchmark::State& state) {
  static kysera_pool plain = make_pool(pool_size);
  static other_pool outage(
      [] { return std::make_unique<other_stub_connection>(); }, outage_options(pool_size));
  static const bool warm = [] {
    warm_up(plain, pool_size);
    std::vector<other_pool::lease> leases;
    for (std::size_t i = 0; i < pool_size; ++i) leases.push_back(outage.acquire());
    return true;
  }();
  (void)warm;
  auto block = [](auto& pool) {
    return [&pool] {
      for (int i = 0; i < 1000; ++i) {
        auto lease = pool.acquire();
        benchmark::DoNotOptimize(&lease.get());
      }
    };
  };
  kysera::bench::interleave(state, "defaults", block(plain), "outage_options", block(outage));
}
BENCHMARK(kysera_outage_options_interleaved)->Threads(1)->Threads(2)->Threads(8)->UseRealTime();

// As kysera_contended, with every outage option on.
void kysera_outage_options_contended(benchmark::State& state) {
  static kysera_pool pool = make_outage_pool(contended_pool_size);
  acquire_release(state, pool, contended_pool_size);
}
BENCHMARK(kysera_outage_options_contended)->Threads(8)->Iterations(contended_iterations)->UseRealTime();

// The price of an exact snapshot (taken by health checks), on an idle pool of 8.
void kysera_get_metrics(benchmark::State& state) {
  auto& pool = our_pool();
  warm_up(pool, pool_size);
  for (auto _ : state) benchmark::DoNotOptimize(pool.get_metrics());
}
BENCHMARK(kysera_get_metrics);

#if defined(KYSERA_BENCH_WITH_SOCI)
// SOCI pools soci::session objects; they need not be connected to be leased and given back.
soci::connection_pool& soci_pool() {
  static soci::connection_pool pool(pool_size);
  return pool;
}

soci::connection_pool& soci_contended_pool() {
  static soci::connection_pool pool(contended_pool_size);
  return pool;
}

void soci_cycle(soci::connection_pool& pool) {
  std::size_t pos = pool.lease();
  benchmark::DoNotOptimize(&pool.at(pos));
  pool.give_back(pos);
}

void soci_connection_pool(benchmark::State& state) {
  auto& pool = soci_pool();
  measure(state, [&] { soci_cycle(pool); });
}
BENCHMARK(soci_connection_pool)->Threads(1)->Threads(2)->Threads(8)->UseRealTime();

void soci_contended(benchmark::State& state) {
  auto& pool = soci_contended_pool();
  measure(state, [&] { soci_cycle(pool); });
}
BENCHMARK(soci_contended)->Threads(8)->Iterations(contended_iterations)->UseRealTime();
#endif

#if defined(KYSERA_BENCH_WITH_POCO)
// A Poco session that does nothing, registered as connector "kysera-stub".
class stub_session final : public Poco::Data::AbstractSessionImpl<stub_session> {
 public:
  stub_session(const std::string& connection_string, std::size_t timeout)
      : AbstractSessionImpl<stub_session>(connection_string, timeout) {}
  Poco::SharedPtr<Poco::Data::StatementImpl> createStatementImpl() override {
    throw Poco::NotImplementedException("stub session");
  }
  void open(const std::string&) override { open_ = true; }
  void close() override { open_ = false; }
  bool isConnected() const override { return open_; }
  void setConnectionTimeout(std::size_t) override {}
  std::size_t getConnectionTimeout() const override { return 0; }
  void reset() override {}
  void begin() override {}
  void commit() override {}
  void rollback() override {}
  bool canTransact() const override { return false; }
  bool isTransaction() const override { return false; }
  void setTransactionIsolation(Poco::UInt32) override {}
  Poco::UInt32 getTransactionIsolation() const override { return 0; }
  bool hasTransactionIsolation(Poco::UInt32) const override { return false; }
  bool isTransactionIsolation(Poco::UInt32) const override { return false; }
  const std::string& connectorName() const override { return name(); }
  static const std::string& name() {
    static const std::string n = "kysera-stub";
    return n;
  }

 private:
  bool open_ = true;
};

class stub_connector final : public Poco::Data::Connector {
 public:
  const std::string& name() const override { return stub_session::name(); }
  Poco::AutoPtr<Poco::Data::SessionImpl> createSession(const std::string& connection_string,
                                                       std::size_t timeout) override {
    return Poco::AutoPtr<Poco::Data::SessionImpl>(new stub_session(connection_string, timeout));
  }
};

Poco::Data::SessionPool& poco_pool() {
  static Poco::Data::SessionPool& pool = [] () -> Poco::Data::SessionPool& {
    Poco::Data::SessionFactory::instance().add(new stub_connector);
    auto* p = new Poco::Data::SessionPool(stub_session::name(), "stub", static_cast<int>(pool_size),
                                          static_cast<int>(pool_size), 60);
    return *p;  // never destroyed: Poco's pool outlives the benchmark threads
  }();
  return pool;
}

void poco_session_pool(benchmark::State& state) {
  auto& pool = poco_pool();
  measure(state, [&] {
    Poco::Data::Session session = pool.get();
    benchmark::DoNotOptimize(&session);
  });
}
BENCHMARK(poco_session_pool)->Threads(1)->Threads(2)->Threads(8)->UseRealTime();
#endif

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("pool_connections",
                              std::to_string(pool_size) + " (contended cases: " +
                                  std::to_string(contended_pool_size) + ")");
  benchmark::AddCustomContext("hardware_threads", std::to_string(std::thread::hardware_concurrency()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
