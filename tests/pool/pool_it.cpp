// connection_pool over the real adapters against the PostgreSQL and MariaDB test servers:
// a server restarted under load, and exhaustion with real statements holding every connection.

#include "support/catch.hpp"
#include "support/servers.hpp"

#include "pool/support_pool.hpp"
#include "pool/support_sides.hpp"

#if defined(KYSERA_INFRA_HAS_MYSQL)
#include <kysera/infra/adapters/mysql.hpp>
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include <kysera/infra/adapters/postgres.hpp>
#endif
#include <kysera/infra/pool.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
namespace kp = kysera::infra::pool;
namespace servers = kysera::test::servers;
using kysera::test::pool::eventually;
using kysera::test::pool::metrics;
#if defined(KYSERA_INFRA_HAS_MYSQL)
using kysera::test::pool::mysql_side;
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
using kysera::test::pool::postgres_side;
#endif
using namespace std::chrono_literals;

// Each server backend of this build runs the same scenarios.
#if defined(KYSERA_INFRA_HAS_POSTGRES) || defined(KYSERA_INFRA_HAS_MYSQL)
namespace {

// Errors a client may see while its server restarts: anything else is a bug.
bool restart_error(infra::errc e) {
  return e == infra::errc::connection_lost || e == infra::errc::connection_refused ||
         e == infra::errc::outcome_unknown || e == infra::errc::timeout || e == infra::errc::closed;
}

template <class Side>
void restart_under_load() {
  using pool_t = kp::connection_pool<typename Side::connection>;
  constexpr std::size_t max_size = 4;
  kp::pool_options o;
  o.max_size = max_size;
  o.acquire_timeout = 10s;
  o.housekeeping_interval = 0ms;
  o.logger = &infra::silent_logger();
  pool_t pool([] { return Side::open(); }, o);

  std::atomic<bool> stop{false};
  std::atomic<int> successes{0};
  std::mutex m;
  std::map<std::string, int> errors;  // errc name (or what()) -> count
  std::vector<std::string> unexpected;
  std::vector<std::thread> load;
  for (int t = 0; t < 6; ++t) {
    load.emplace_back([&] {
      for (int i = 0; i < 1'000'000 && !stop.load(); ++i) {
        try {
          pool.execute("SELECT 1");
          successes.fetch_add(1);
        } catch (const infra::database_error& e) {
          std::lock_guard lock(m);
          ++errors[std::string(infra::to_string(e.condition()))];
          if (!restart_error(e.condition())) unexpected.push_back(e.what());
        } catch (const std::exception& e) {
          std::lock_guard lock(m);
          unexpected.push_back(e.what());
        }
      }
    });
  }
  // Whatever throws below (a failed REQUIRE, a failed restart), the load threads are stopped and
  // joined first, so the failure is reported instead of ending the process.
  kysera::test::pool::stop_and_join join_guard{stop, load};
  REQUIRE(eventually([&] { return successes.load() >= 100; }, 30s));
  servers::control("restart", Side::server);
  const int before = successes.load();
  const auto restarted = std::chrono::steady_clock::now();
  // Keep the load on until well after the server is back: plenty of successes, and longer than
  // validation_threshold, so every connection from before the restart was either used or pinged.
  bool recovered = eventually(
      [&] { return successes.load() >= before + 200 && std::chrono::steady_clock::now() - restarted > 1s; }, 60s);
  stop = true;
  for (auto& t : load) t.join();  // (join_guard finds them joined)
  std::string seen;
  for (auto& [code, n] : errors) seen += code + " x" + std::to_string(n) + " ";
  INFO("errors during the restart: " << seen << "; statements after it: " << successes.load() - before);
  REQUIRE(recovered);
  for (auto& u : unexpected) FAIL_CHECK("unexpected error: " << u);
  if (std::getenv("KYSERA_POOL_IT_VERBOSE")) WARN("errors during the restart: " << seen);

  auto before_check = pool.get_metrics();
  CHECK(before_check.active == 0);
  CHECK(before_check.waiting == 0);
  CHECK(before_check.total == before_check.idle);
  CHECK(before_check.total <= max_size);
  auto s = pool.get_statistics();
  CHECK(s.created == s.closed() + before_check.total);

  // Every connection the pool hands out now works, and the pool's count is the server's count.
  {
    std::vector<typename pool_t::lease> all;
    std::set<std::int64_t> ids;
    for (std::size_t i = 0; i < max_size; ++i) {
      all.push_back(pool.acquire());
      ids.insert(Side::scalar(*all.back(), Side::session_id_sql()));  // throws if it does not work
    }
    CHECK(pool.get_metrics() == metrics(max_size, 0, max_size, 0, max_size));
    REQUIRE(ids.size() == max_size);
    std::string list;
    for (auto id : ids) list += (list.empty() ? "" : ",") + std::to_string(id);
    CHECK(Side::scalar(*all.front(), Side::count_sessions_sql(list)) == static_cast<std::int64_t>(max_size));

    // Closing the pool ends those sessions on the server.
    auto watcher = Side::open();
    all.clear();
    CHECK(pool.close_for(5s));
    CHECK(pool.get_metrics() == metrics(0, 0, 0, 0, max_size));
    CHECK(eventually([&] { return Side::scalar(*watcher, Side::count_sessions_sql(list)) == 0; }, 10s));
    watcher->close();
  }
  s = pool.get_statistics();
  CHECK(s.created == s.closed());
  CHECK(s.closed_broken > 0);  // the restart broke the sessions that were open
}

template <class Side>
void exhaustion_reports_waiting() {
  using pool_t = kp::connection_pool<typename Side::connection>;
  kp::pool_options o;
  o.max_size = 2;
  o.acquire_timeout = 300ms;
  o.housekeeping_interval = 0ms;
  o.logger = &infra::silent_logger();
  pool_t pool([] { return Side::open(); }, o);

  // Both connections busy with a real 1 s statement.
  std::atomic<int> running{0};
  std::vector<std::future<void>> holders;
  for (int i = 0; i < 2; ++i) {
    holders.push_back(std::async(std::launch::async, [&] {
      auto c = pool.acquire(10s);
      running.fetch_add(1);
      c->execute(Side::sleep_sql());
    }));
  }
  REQUIRE(eventually([&] { return running.load() == 2; }));
  std::vector<std::future<std::string>> waiters;
  for (int i = 0; i < 3; ++i) {
    waiters.push_back(std::async(std::launch::async, [&]() -> std::string {
      try {
        (void)pool.acquire();
        return "acquired";
      } catch (const infra::database_error& e) {
        return e.code() == infra::errc::pool_exhausted ? std::string(e.what()) : "other: " + std::string(e.what());
      }
    }));
  }
  // The snapshot sees the three callers waiting (unless one already gave up).
  bool saw_three = eventually([&] { return pool.get_metrics() == metrics(2, 0, 2, 3, 2); }, 250ms);
  std::multiset<std::string> reported;
  for (auto& w : waiters) {
    auto msg = w.get();
    INFO(msg);
    CHECK(msg.find("connection pool exhausted") == 0);
    CHECK(msg.find("within 300 ms") != std::string::npos);
    CHECK(msg.find("total 2, idle 0, active 2") != std::string::npos);
    auto at = msg.find("waiting ");
    REQUIRE(at != std::string::npos);
    reported.insert(msg.substr(at, 9));
  }
  if (saw_three) {
    // Each reports the callers waiting at its timeout, itself included: 3, then 2, then 1.
    CHECK(reported == std::multiset<std::string>{"waiting 1", "waiting 2", "waiting 3"});
  }
  for (auto& h : holders) h.get();
  CHECK(pool.get_metrics() == metrics(2, 2, 0, 0, 2));
  auto s = pool.get_statistics();
  CHECK(s.timed_out == 3);
  CHECK(s.max_wait >= 300.0);
  CHECK(s.created == 2);
  CHECK(Side::scalar(*pool.acquire(), "SELECT 1") == 1);
}

}  // namespace

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("pool over PostgreSQL recovers from a server restart under load", "[pool][postgres]") {
  restart_under_load<postgres_side>();
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("pool over MariaDB recovers from a server restart under load", "[pool][mysql]") {
  restart_under_load<mysql_side>();
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("pool exhaustion over PostgreSQL reports the waiting callers", "[pool][postgres]") {
  exhaustion_reports_waiting<postgres_side>();
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("pool exhaustion over MariaDB reports the waiting callers", "[pool][mysql]") {
  exhaustion_reports_waiting<mysql_side>();
}
#endif
#endif  // any server backend
