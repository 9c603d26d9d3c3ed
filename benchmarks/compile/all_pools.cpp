// Compile-time probe, not a benchmark program: one translation unit that includes everything
// (<kysera/infra.hpp> with all three adapters) and instantiates a connection_pool over each
// adapter's connection, plus a health monitor, a retry, a circuit breaker and a shutdown
// controller over the PostgreSQL pool. The CPU seconds it takes at -O2 show what the modules cost.
// Nothing links or runs it; from the repository root:
//
//   /usr/bin/time -f '%U %S' g++ -std=c++20 -O2 -Iinclude -I/usr/include/postgresql \
//     -DKYSERA_INFRA_HAS_POSTGRES=1 -DKYSERA_INFRA_HAS_MYSQL=1 -DKYSERA_INFRA_HAS_SQLITE=1 \
//     -c benchmarks/compile/all_pools.cpp -o /dev/null
//
// prints user and system CPU seconds: add them. With -DKYSERA_COMPILE_PROBE_INCLUDES_ONLY the
// pools are left out, so the difference between the two is what the three pools cost.
// benchmarks/CMakeLists.txt picks up only *_bench.cpp, so this file is never part of the build.

#include <kysera/infra.hpp>

#include <memory>
#include <string_view>

namespace infra = kysera::infra;

#if !defined(KYSERA_COMPILE_PROBE_INCLUDES_ONLY)
// Every member of each pool, lease included, as a program using all of them would get.
template class infra::pool::connection_pool<infra::postgres::connection>;
template class infra::pool::connection_pool<infra::sqlite::connection>;
template class infra::pool::connection_pool<infra::mysql::connection>;

// The member templates, which an explicit instantiation leaves out.
template <class Pool>
void use(Pool& pool) {
  pool.with_connection([](auto& c) { c.execute("select 1"); });
  pool.transaction([](auto& c) { c.execute("select 1"); });
  auto handle = infra::pool::create_metrics_pool(pool);
  (void)handle.get_metrics();
}

template void use(infra::pool::connection_pool<infra::postgres::connection>&);
template void use(infra::pool::connection_pool<infra::sqlite::connection>&);
template void use(infra::pool::connection_pool<infra::mysql::connection>&);

// The other modules, as a service wires them around one pool.
void wire(infra::pool::connection_pool<infra::postgres::connection>& pool) {
  infra::health::health_monitor monitor(pool, {});
  monitor.start([](const infra::health::health_check_result&) {});
  infra::resilience::circuit_breaker breaker(5, std::chrono::seconds(30));
  infra::resilience::with_retry([&] { return breaker.execute([&] { return pool.execute("select 1"); }); });
  auto controller = infra::shutdown::create_shutdown_controller(pool, {});
  controller.execute();
}
#endif
