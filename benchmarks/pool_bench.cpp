// Acquire + release cycle of kysera's connection_pool against SOCI's connection_pool and Poco's
// SessionPool, on 1, 2 and 8 threads, in one run. Every pool holds 8 stub connections that do
// nothing, so only the pool's own bookkeeping is measured.
//
//   ninja -C build-rel pool_bench
//   build-rel/benchmarks/pool_bench --benchmark_repetitions=5
//     --benchmark_report_aggregates_only=true
//
// Read "Time" (wall time per cycle per thread) across pools at the same thread count.

#include <benchmark/benchmark.h>

#include <kysera/infra/pool.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
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

// A connection that does nothing: models kysera::infra::database.
struct stub_connection {
  void execute(std::string_view) noexcept {}
  void close() noexcept {}
};

using kysera_pool = kysera::infra::pool::connection_pool<stub_connection>;

kysera_pool& our_pool() {
  static kysera_pool pool = [] {
    kysera::infra::pool::pool_options o;
    o.max_size = pool_size;
    o.housekeeping_interval = std::chrono::milliseconds(0);
    return kysera_pool([] { return std::make_unique<stub_connection>(); }, o);
  }();
  return pool;
}

// Opens every connection up front, so no run pays for the factory.
void warm_up(kysera_pool& pool) {
  std::vector<kysera_pool::lease> leases;
  for (std::size_t i = 0; i < pool_size; ++i) leases.push_back(pool.acquire());
}

void kysera_connection_pool(benchmark::State& state) {
  auto& pool = our_pool();
  if (state.thread_index() == 0) warm_up(pool);
  for (auto _ : state) {
    auto lease = pool.acquire();
    benchmark::DoNotOptimize(&lease.get());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(kysera_connection_pool)->Threads(1)->Threads(2)->Threads(8)->UseRealTime();

// The price of an exact snapshot (taken by health checks), on an idle pool of 8.
void kysera_get_metrics(benchmark::State& state) {
  auto& pool = our_pool();
  warm_up(pool);
  for (auto _ : state) benchmark::DoNotOptimize(pool.get_metrics());
}
BENCHMARK(kysera_get_metrics);

#if defined(KYSERA_BENCH_WITH_SOCI)
// SOCI pools soci::session objects; they need not be connected to be leased and given back.
soci::connection_pool& soci_pool() {
  static soci::connection_pool pool(pool_size);
  return pool;
}

void soci_connection_pool(benchmark::State& state) {
  auto& pool = soci_pool();
  for (auto _ : state) {
    std::size_t pos = pool.lease();
    benchmark::DoNotOptimize(&pool.at(pos));
    pool.give_back(pos);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(soci_connection_pool)->Threads(1)->Threads(2)->Threads(8)->UseRealTime();
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
  for (auto _ : state) {
    Poco::Data::Session session = pool.get();
    benchmark::DoNotOptimize(&session);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(poco_session_pool)->Threads(1)->Threads(2)->Threads(8)->UseRealTime();
#endif

}  // namespace

BENCHMARK_MAIN();
