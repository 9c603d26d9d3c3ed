// Statement deadlines against the real servers, paused (SIGSTOP): 8 threads on a pool whose
// calls run under a 300 ms deadline all return within the deadline plus the grace plus a margin,
// with errc::timeout; after SIGCONT the pool serves again within about a second; a COMMIT cut at
// its deadline is errc::outcome_unknown.

#include "support/catch.hpp"
#include "support/servers.hpp"

#if defined(KYSERA_INFRA_HAS_MYSQL)
#include <kysera/infra/adapters/mysql.hpp>
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include <kysera/infra/adapters/postgres.hpp>
#endif
#include <kysera/infra/deadline.hpp>
#include <kysera/infra/pool.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
namespace kp = kysera::infra::pool;
namespace servers = kysera::test::servers;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

#if defined(KYSERA_INFRA_HAS_POSTGRES) || defined(KYSERA_INFRA_HAS_MYSQL)
namespace {

constexpr auto deadline = 300ms;
constexpr auto grace = 200ms;
constexpr auto margin = 1s;  // scheduling on a loaded machine

#if defined(KYSERA_INFRA_HAS_POSTGRES)
struct postgres_side {
  using connection = infra::postgres::connection;
  static constexpr const char* server = "postgres";
  static std::unique_ptr<connection> open() {
    infra::postgres::connection_options o;
    o.connect_timeout = 3s;
    o.statement_deadline = deadline;
    o.statement_deadline_grace = grace;
    return std::make_unique<connection>(servers::postgres_url(), o);
  }
  static std::string table() { return "deadline_it_pg"; }
};
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
struct mysql_side {
  using connection = infra::mysql::connection;
  static constexpr const char* server = "mysql";
  static std::unique_ptr<connection> open() {
    infra::mysql::connection_options o;
    o.connect_timeout = 3s;
    o.statement_deadline = deadline;
    o.statement_deadline_grace = grace;
    return std::make_unique<connection>(servers::mysql_url(), o);
  }
  static std::string table() { return "deadline_it_my"; }
};
#endif

struct outcome {
  clock_type::duration took{};
  std::optional<infra::errc> error;  // empty: it succeeded
};

template <class Side>
void paused_pool() {
  using pool_t = kp::connection_pool<typename Side::connection>;
  kp::pool_options o;
  o.max_size = 4;  // 8 threads: half of them wait in acquire, which counts against the deadline
  o.acquire_timeout = 10s;
  o.housekeeping_interval = 0ms;
  o.logger = &infra::silent_logger();
  pool_t pool([] { return Side::open(); }, o);
  {
    std::vector<typename pool_t::lease> warm;
    for (int i = 0; i < 4; ++i) warm.push_back(pool.acquire());
  }
  pool.execute("SELECT 1");

  constexpr int threads = 8;
  constexpr int calls = 3;
  std::mutex mutex;
  std::vector<outcome> outcomes;
  {
    servers::pause_guard paused(Side::server);
    std::latch start(threads);
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        start.arrive_and_wait();
        for (int i = 0; i < calls; ++i) {
          outcome r;
          const auto began = clock_type::now();
          try {
            infra::with_deadline(deadline, [&] { pool.execute("SELECT 1"); });
          } catch (const infra::database_error& e) {
            r.error = e.condition();
          }
          r.took = clock_type::now() - began;
          std::lock_guard lock(mutex);
          outcomes.push_back(r);
        }
      });
    }
    for (auto& w : workers) w.join();
  }  // resumed here
  const auto resumed = clock_type::now();

  REQUIRE(outcomes.size() == static_cast<std::size_t>(threads * calls));
  auto slowest = clock_type::duration::zero();
  std::map<int, int> by_code;
  for (const auto& r : outcomes) {
    slowest = std::max(slowest, r.took);
    by_code[r.error ? static_cast<int>(*r.error) : 0]++;
    CHECK(r.error == std::optional<infra::errc>(infra::errc::timeout));
  }
  INFO("slowest call: " << std::chrono::duration_cast<std::chrono::milliseconds>(slowest).count() << " ms");
  CHECK(slowest < deadline + grace + margin);

  // Serves again within about a second (plus the margin) of SIGCONT.
  bool served = false;
  while (!served && clock_type::now() - resumed < 10s) {
    try {
      infra::with_deadline(deadline, [&] { pool.execute("SELECT 1"); });
      served = true;
    } catch (const infra::database_error&) {
    }
  }
  const auto recovered = clock_type::now() - resumed;
  INFO("served again after " << std::chrono::duration_cast<std::chrono::milliseconds>(recovered).count() << " ms");
  CHECK(served);
  CHECK(recovered < 1s + margin);
  // And every connection of the pool works again.
  for (int i = 0; i < 8; ++i) {
    CHECK_NOTHROW(infra::with_deadline(2s, [&] { pool.execute("SELECT 1"); }));
  }
}

template <class Side>
void cut_commit() {
  auto db = Side::open();
  db->execute("DROP TABLE IF EXISTS " + Side::table());
  db->execute("CREATE TABLE " + Side::table() + " (x INT)");
  std::optional<infra::errc> error;
  const auto began = std::make_shared<clock_type::time_point>();
  std::unique_ptr<servers::pause_guard> paused;  // resumes even when a check below fails
  try {
    db->transaction([&](auto& c) {
      c.execute("INSERT INTO " + Side::table() + " VALUES (1)");
      paused = std::make_unique<servers::pause_guard>(Side::server);
      *began = clock_type::now();
    });  // COMMIT: cut at statement_deadline (+ grace)
  } catch (const infra::database_error& e) {
    error = e.condition();
  }
  const auto took = clock_type::now() - *began;
  paused.reset();
  CHECK(error == std::optional<infra::errc>(infra::errc::outcome_unknown));
  CHECK(took < deadline + grace + margin);
  // The session reopens on the next use.
  CHECK_NOTHROW(infra::with_deadline(5s, [&] { db->execute("SELECT 1"); }));
  db->execute("DROP TABLE " + Side::table());
}

}  // namespace
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("deadline: 8 threads on a pool against a paused PostgreSQL all time out within the deadline",
          "[pool][deadline][postgres][integration]") {
  paused_pool<postgres_side>();
}
TEST_CASE("deadline: a COMMIT cut at its deadline on a paused PostgreSQL is outcome_unknown",
          "[pool][deadline][postgres][integration]") {
  cut_commit<postgres_side>();
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("deadline: 8 threads on a pool against a paused MariaDB all time out within the deadline",
          "[pool][deadline][mysql][integration]") {
  paused_pool<mysql_side>();
}
TEST_CASE("deadline: a COMMIT cut at its deadline on a paused MariaDB is outcome_unknown",
          "[pool][deadline][mysql][integration]") {
  cut_commit<mysql_side>();
}
#endif
