// connection_pool over PostgreSQL and MariaDB during a real outage: the test server stopped for
// 10 s under 8 threads. The failed connects the factory sees stay within the connect backoff's bound, callers
// fail fast (never after acquire_timeout), and the pool serves again within connect_backoff_max
// of the server accepting connections.

#include "support/catch.hpp"
#include "support/servers.hpp"

#include "pool/support_pool.hpp"
#include "pool/support_sides.hpp"

#include <kysera/infra/pool.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(KYSERA_INFRA_HAS_POSTGRES) || defined(KYSERA_INFRA_HAS_MYSQL)

namespace infra = kysera::infra;
namespace kp = kysera::infra::pool;
namespace servers = kysera::test::servers;
using kysera::test::pool::attempt_bound;
using kysera::test::pool::eventually;
#if defined(KYSERA_INFRA_HAS_MYSQL)
using kysera::test::pool::mysql_side;
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
using kysera::test::pool::postgres_side;
#endif
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

std::int64_t ms_since(steady::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t).count();
}

template <class Side>
void outage_under_load() {
  using connection = typename Side::connection;
  kp::pool_options o;
  o.max_size = 4;
  o.acquire_timeout = 5s;
  o.housekeeping_interval = 0ms;
  o.connect_backoff_initial = 100ms;
  o.connect_backoff_max = 500ms;  // so the pool serves within 0.5 s (+ one connect) of the server
  o.connect_backoff_jitter = 0.2;
  o.logger = &infra::silent_logger();
  std::atomic<int> dials{0};
  std::atomic<int> failed_dials{0};
  kp::connection_pool<connection> pool(
      [&] {
        dials.fetch_add(1);
        try {
          return Side::open();
        } catch (...) {
          failed_dials.fetch_add(1);
          throw;
        }
      },
      o);
  pool.warm_up(10s);

  const auto t0 = steady::now();
  std::atomic<bool> stop{false};
  std::atomic<int> served{0};
  // In ms since t0: when the server accepted again, and the first call served after that.
  std::atomic<std::int64_t> accepting_at{INT64_MAX};
  std::atomic<std::int64_t> first_served_after{-1};
  std::atomic<std::int64_t> slowest_failure_ms{0};
  std::mutex m;
  std::vector<std::string> unexpected;
  std::vector<std::thread> load;
  for (int t = 0; t < 8; ++t) {
    load.emplace_back([&] {
      while (!stop.load()) {
        const auto start = steady::now();
        try {
          pool.execute("SELECT 1");
          served.fetch_add(1);
          const auto now = ms_since(t0);
          std::int64_t none = -1;
          if (now >= accepting_at.load()) first_served_after.compare_exchange_strong(none, now);
        } catch (const infra::database_error& e) {
          const auto took = ms_since(start);
          auto prev = slowest_failure_ms.load();
          while (prev < took && !slowest_failure_ms.compare_exchange_weak(prev, took)) {
          }
          if (e.condition() == infra::errc::pool_exhausted) {
            std::lock_guard lock(m);
            unexpected.push_back(e.what());
          }
        }
      }
    });
  }
  kysera::test::pool::stop_and_join join_guard{stop, load};
  REQUIRE(eventually([&] { return served.load() >= 100; }, 30s));

  const auto outage_begins = steady::now();
  const int failed_before = failed_dials.load();
  servers::stop_guard down(Side::server);  // returns once the server has shut down
  const int served_at_stop = served.load();
  std::this_thread::sleep_for(10s);  // the outage itself, not synchronisation
  const int served_while_down = served.load() - served_at_stop;
  down.start();  // returns once the server accepts connections (pg_ctl -w; a MariaDB client)
  accepting_at = ms_since(t0);
  const auto outage =
      std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - outage_begins);
  const int failed = failed_dials.load() - failed_before;

  REQUIRE(eventually([&] { return first_served_after.load() >= 0; }, 10s));
  const auto recovered_in = first_served_after.load() - accepting_at.load();
  stop = true;

  const int bound = attempt_bound(o, outage);
  INFO("outage " << outage.count() << " ms: " << failed << " failed connects (bound " << bound
                 << "), slowest failure " << slowest_failure_ms.load() << " ms, serving "
                 << recovered_in << " ms after the server accepted; statistics: throttled "
                 << pool.get_statistics().throttled << ", backoffs "
                 << pool.get_statistics().backoffs);
  CHECK(served_while_down == 0);
  CHECK(failed <= bound);
  CHECK(pool.get_statistics().throttled > 0);
  CHECK(slowest_failure_ms.load() < 1000);  // fast: never acquire_timeout (5 s)
  CHECK(recovered_in <= 1000);
  CHECK(unexpected.empty());
  WARN(Side::server << " outage " << outage.count() << " ms: " << failed << " failed connects (bound " << bound
                 << "), slowest failure " << slowest_failure_ms.load() << " ms, serving again "
                 << recovered_in << " ms after the server accepted");
}

}  // namespace

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("pool over PostgreSQL stopped for 10 s under 8 threads: bounded connects, fast "
          "failures, serving again within connect_backoff_max",
          "[pool][postgres][outage]") {
  outage_under_load<postgres_side>();
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("pool over MariaDB stopped for 10 s under 8 threads: bounded connects, fast "
          "failures, serving again within connect_backoff_max",
          "[pool][mysql][outage]") {
  outage_under_load<mysql_side>();
}
#endif

#endif
