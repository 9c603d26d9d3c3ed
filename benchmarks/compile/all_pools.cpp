// Compile-time probe, not a benchmark program: one translation unit that includes everything
// (<kysera/infra.hpp> with all three adapters) and instantiates a connection_pool over each
// adapter's connection. The CPU seconds it takes at -O2 show what the pool costs per pool type.
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
#endif
