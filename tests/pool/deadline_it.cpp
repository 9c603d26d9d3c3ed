// Statement deadlines against the real servers, paused (SIGSTOP): 8 threads on a pool whose
// calls run under a 300 ms deadline all return within the deadline plus the grace plus a margin,
// with errc::timeout; after SIGCONT the pool serves again within about a second; a COMMIT cut at
// its deadline is errc::outcome_unknown; close_for cuts a lease's statement at its deadline and
// logs its name.

#include "support/catch.hpp"
#include "support/eventually.hpp"
#include "support/servers.hpp"

#if defined(KYSERA_INFRA_HAS_MYSQL)
#include <kysera/infra/adapters/mysql.hpp>
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include <kysera/infra/adapters/postgres.hpp>
#endif
#include <kysera/infra/deadline.hpp>
#include <kysera/infra/logger.hpp>
#include <kysera/infra/pool.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
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
  static constexpr const char* backend = "postgres";
  static std::unique_ptr<connection> open_without_deadline() {
    return std::make_unique<connection>(servers::postgres_url());
  }
  static std::string long_sql() { return "SELECT 'kysera_deadline_probe', pg_sleep(60)"; }
  static bool long_sql_running(connection& c) {
    auto r = c.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%kysera_deadline_probe%' "
        "AND pid <> pg_backend_pid()");
    return r[0][0].as<long>() > 0;
  }
  static long count(connection& c, const std::string& sql) { return c.execute(sql)[0][0].as<long>(); }
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
  static constexpr const char* backend = "mysql";
  static std::unique_ptr<connection> open_without_deadline() {
    return std::make_unique<connection>(servers::mysql_url());
  }
  static std::string long_sql() { return "SELECT 'kysera_deadline_probe', SLEEP(60)"; }
  static bool long_sql_running(connection& c) {
    auto r = c.execute(
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%kysera_deadline_probe%' "
        "AND ID <> CONNECTION_ID()");
    return std::stoll(r.at(0, 0).value()) > 0;
  }
  static long count(connection& c, const std::string& sql) {
    return static_cast<long>(std::stoll(c.execute(sql).at(0, 0).value()));
  }
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

// A ROLLBACK (fn threw) on a paused server is bounded as a statement is: the application's error
// comes back within the deadline plus the grace, and the session reopens on the next use.
template <class Side>
void cut_rollback() {
  auto db = Side::open();
  db->execute("DROP TABLE IF EXISTS " + Side::table());
  db->execute("CREATE TABLE " + Side::table() + " (x INT)");
  std::unique_ptr<servers::pause_guard> paused;
  clock_type::time_point began{};
  auto outcome = std::async(std::launch::async, [&]() -> std::string {
    try {
      db->transaction([&](auto& c) {
        c.execute("INSERT INTO " + Side::table() + " VALUES (1)");
        paused = std::make_unique<servers::pause_guard>(Side::server);
        began = clock_type::now();
        throw std::runtime_error("the application gives up");
      });
      return "no error";
    } catch (const std::runtime_error& e) {
      return e.what();
    }
  });
  // Without a bound the ROLLBACK would wait for the server: resume it after a while regardless,
  // so that the test fails instead of hanging.
  const bool in_time = outcome.wait_for(deadline + grace + margin + 5s) == std::future_status::ready;
  const auto took = clock_type::now() - began;
  paused.reset();
  const std::string error = outcome.get();
  CHECK(in_time);
  CHECK(error == "the application gives up");
  CHECK(took < deadline + grace + margin);
  // The session reopens on the next use, and the insert was rolled back.
  CHECK(infra::with_deadline(5s, [&] { return Side::count(*db, "SELECT count(*) FROM " + Side::table()); }) == 0);
  db->execute("DROP TABLE " + Side::table());
}

template <class Side>
void close_for_cuts_leased() {
  std::mutex mutex;
  std::vector<std::string> errors;
  auto log = infra::make_logger([&](infra::log_level level, std::string_view message) {
    if (level != infra::log_level::error) return;
    std::lock_guard lock(mutex);
    errors.emplace_back(message);
  });
  kp::pool_options o;
  o.max_size = 2;
  o.housekeeping_interval = 0ms;
  o.logger = &log;
  kp::connection_pool<typename Side::connection> pool([] { return Side::open_without_deadline(); }, o);
  std::latch leased(1);
  std::optional<infra::errc> worker_error;
  std::thread worker([&] {
    try {
      auto lease = pool.acquire();
      leased.count_down();
      (void)lease->execute(Side::long_sql());
    } catch (const infra::database_error& e) {
      worker_error = e.condition();
    }
  });
  leased.wait();
  // The statement has been sent before the server stops: wait until the server runs it.
  {
    auto observer = Side::open_without_deadline();
    REQUIRE(kysera::test::eventually([&] { return Side::long_sql_running(*observer); }, 20s, 20ms));
  }
  bool closed = true;
  clock_type::duration took{};
  {
    servers::pause_guard paused(Side::server);
    const auto began = clock_type::now();
    closed = pool.close_for(1s);
    took = clock_type::now() - began;
    worker.join();  // the cut statement returned: nothing hangs
  }
  CHECK_FALSE(closed);
  CHECK(took < 1s + margin);
  CHECK(worker_error.has_value());
  std::lock_guard lock(mutex);
  REQUIRE(errors.size() == 1);
  CHECK_THAT(errors[0], Catch::Matchers::Contains("cut 1 session(s) still running a statement at the deadline: " +
                                                  std::string(Side::backend)));
}

}  // namespace
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("deadline: close_for cuts the statement of a lease still out at its deadline on a paused PostgreSQL",
          "[pool][deadline][postgres][integration]") {
  close_for_cuts_leased<postgres_side>();
}
TEST_CASE("deadline: 8 threads on a pool against a paused PostgreSQL all time out within the deadline",
          "[pool][deadline][postgres][integration]") {
  paused_pool<postgres_side>();
}
TEST_CASE("deadline: a COMMIT cut at its deadline on a paused PostgreSQL is outcome_unknown",
          "[pool][deadline][postgres][integration]") {
  cut_commit<postgres_side>();
}
TEST_CASE("deadline: a ROLLBACK on a paused PostgreSQL ends within the deadline, the application's error kept",
          "[pool][deadline][postgres][integration]") {
  cut_rollback<postgres_side>();
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("deadline: close_for cuts the statement of a lease still out at its deadline on a paused MariaDB",
          "[pool][deadline][mysql][integration]") {
  close_for_cuts_leased<mysql_side>();
}
TEST_CASE("deadline: 8 threads on a pool against a paused MariaDB all time out within the deadline",
          "[pool][deadline][mysql][integration]") {
  paused_pool<mysql_side>();
}
TEST_CASE("deadline: a COMMIT cut at its deadline on a paused MariaDB is outcome_unknown",
          "[pool][deadline][mysql][integration]") {
  cut_commit<mysql_side>();
}
TEST_CASE("deadline: a ROLLBACK on a paused MariaDB ends within the deadline, the application's error kept",
          "[pool][deadline][mysql][integration]") {
  cut_rollback<mysql_side>();
}
#endif
