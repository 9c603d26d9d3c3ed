// Integration tests of the resilience module against the real servers (PostgreSQL, MariaDB) and
// real SQLite files: retry across a server-side session kill, whole-transaction retry after a
// real serialization failure and a real deadlock, contending SQLite writers, and a circuit
// breaker across a server stop and start.
#include "support/catch.hpp"
#include "support/eventually.hpp"
#include "support/servers.hpp"

#if defined(KYSERA_INFRA_HAS_MYSQL)
#include <kysera/infra/adapters/mysql.hpp>
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include <kysera/infra/adapters/postgres.hpp>
#endif
#if defined(KYSERA_INFRA_HAS_SQLITE)
#include <kysera/infra/adapters/sqlite.hpp>
#endif
#include <kysera/infra/resilience.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
namespace res = kysera::infra::resilience;
namespace servers = kysera::test::servers;
using infra::errc;
using namespace std::chrono_literals;

namespace {

#if defined(KYSERA_INFRA_HAS_POSTGRES)
std::int64_t scalar(infra::postgres::connection& c, const std::string& sql) {
  return c.execute(sql)[0][0].as<std::int64_t>();
}
#endif
template <class Connection>
std::int64_t scalar(Connection& c, const std::string& sql) {
  auto r = c.execute(sql);
  REQUIRE(r.size() == 1);
  return std::stoll(r.at(0, 0).value());
}

/// Polls `pred` every 20 ms until it holds or `limit` passed (default 30 s).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = 30s) {
  return kysera::test::eventually(pred, limit, 20ms);
}

/// A one-shot flag threads can wait for, with a deadline.
class gate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool wait_for(std::chrono::seconds limit) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

/// Records what on_retry saw.
struct retry_log {
  std::mutex mutex;
  std::vector<std::pair<int, errc>> entries;  // (attempt, code)
  std::function<void(int, const std::exception&)> callback() {
    return [this](int attempt, const std::exception& e) {
      errc code = errc::backend_error;
      if (const auto* db = dynamic_cast<const infra::database_error*>(&e)) code = db->condition();
      std::lock_guard lock(mutex);
      entries.emplace_back(attempt, code);
    };
  }
  std::vector<std::pair<int, errc>> get() {
    std::lock_guard lock(mutex);
    return entries;
  }
};

#if defined(KYSERA_INFRA_HAS_SQLITE)
/// A fresh SQLite file path, removed (with its journal files) at scope end.
struct temp_sqlite_file {
  std::filesystem::path path;
  explicit temp_sqlite_file(const std::string& name)
      : path(std::filesystem::temp_directory_path() /
             ("kysera-res-" + name + "-" + std::to_string(::getpid()) + ".db")) {
    remove_all();
  }
  ~temp_sqlite_file() { remove_all(); }
  void remove_all() {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::filesystem::remove(path.string() + suffix, ec);
    }
  }
};
#endif

}  // namespace

// ---------------------------------------------------------------- retry across a session kill

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("with_retry recovers from a server-side kill of the postgres session", "[resilience][postgres]") {
  infra::postgres::connection victim(servers::postgres_url());
  infra::postgres::connection killer(servers::postgres_url());
  const auto pid = scalar(victim, "SELECT pg_backend_pid()");
  REQUIRE(scalar(killer, "SELECT pg_terminate_backend(" + std::to_string(pid) + ")::int") == 1);
  REQUIRE(eventually([&] {
    return scalar(killer, "SELECT count(*) FROM pg_stat_activity WHERE pid = " +
                              std::to_string(pid)) == 0;
  }));

  retry_log log;
  const auto new_pid = res::with_retry([&] { return scalar(victim, "SELECT pg_backend_pid()"); },
                                       {.delay = 10ms, .on_retry = log.callback()});
  CHECK(new_pid != pid);  // a new session answered
  CHECK(log.get() == std::vector<std::pair<int, errc>>{{1, errc::connection_lost}});
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("with_retry recovers from a server-side kill of the mariadb session", "[resilience][mysql]") {
  infra::mysql::connection victim(servers::mysql_url());
  infra::mysql::connection killer(servers::mysql_url());
  const auto id = scalar(victim, "SELECT CONNECTION_ID()");
  killer.execute("KILL " + std::to_string(id));
  REQUIRE(eventually([&] {
    return scalar(killer, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
                              std::to_string(id)) == 0;
  }));

  retry_log log;
  const auto new_id = res::with_retry([&] { return scalar(victim, "SELECT CONNECTION_ID()"); },
                                      {.delay = 10ms, .on_retry = log.callback()});
  CHECK(new_id != id);
  CHECK(log.get() == std::vector<std::pair<int, errc>>{{1, errc::connection_lost}});
}
#endif

// ---------------------------------------------------------------- whole-transaction retry

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("with_transaction_retry reruns a postgres transaction after a real serialization failure", "[resilience][postgres]") {
  infra::postgres::connection db(servers::postgres_url());
  infra::postgres::connection other(servers::postgres_url());
  db.execute("DROP TABLE IF EXISTS kysera_res_account");
  db.execute("DROP TABLE IF EXISTS kysera_res_audit");
  db.execute("CREATE TABLE kysera_res_account (id integer PRIMARY KEY, balance integer NOT NULL)");
  db.execute("CREATE TABLE kysera_res_audit (attempt integer NOT NULL)");
  db.execute("INSERT INTO kysera_res_account VALUES (1, 100)");

  retry_log log;
  int attempts = 0;
  const auto balance = res::with_transaction_retry(
      db,
      [&](infra::postgres::connection& tx) {
        ++attempts;
        tx.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE");
        const auto seen = scalar(tx, "SELECT balance FROM kysera_res_account WHERE id = 1");
        tx.execute("INSERT INTO kysera_res_audit VALUES (" + std::to_string(attempts) + ")");
        if (attempts == 1) {
          // Another session changes the row after this transaction's snapshot was taken.
          other.execute("UPDATE kysera_res_account SET balance = balance + 50 WHERE id = 1");
        }
        tx.execute("UPDATE kysera_res_account SET balance = " + std::to_string(seen - 10) +
                   " WHERE id = 1");  // 40001 on the first attempt
        return seen - 10;
      },
      {.delay = 10ms, .on_retry = log.callback()});

  CHECK(attempts == 2);
  CHECK(log.get() == std::vector<std::pair<int, errc>>{{1, errc::serialization_failure}});
  CHECK(balance == 140);
  CHECK(scalar(db, "SELECT balance FROM kysera_res_account WHERE id = 1") == 140);
  // Nothing of the failed attempt survived: one audit row, from attempt 2.
  CHECK(scalar(db, "SELECT count(*) FROM kysera_res_audit") == 1);
  CHECK(scalar(db, "SELECT min(attempt) FROM kysera_res_audit") == 2);
  db.execute("DROP TABLE kysera_res_account");
  db.execute("DROP TABLE kysera_res_audit");
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("with_transaction_retry reruns the victim of a real mariadb deadlock", "[resilience][mysql]") {
  infra::mysql::connection a(servers::mysql_url());
  infra::mysql::connection b(servers::mysql_url());
  a.execute("CREATE OR REPLACE TABLE kysera_res_pair (id INTEGER PRIMARY KEY, v INTEGER NOT NULL) ENGINE=InnoDB");
  a.execute("CREATE OR REPLACE TABLE kysera_res_log (who CHAR(1) NOT NULL, attempt INTEGER NOT NULL) ENGINE=InnoDB");
  a.execute("INSERT INTO kysera_res_pair VALUES (1, 0), (2, 0)");

  gate a_locked;
  gate b_locked;
  retry_log log;
  // Each side locks one row, waits until the other holds its row, then asks for the other row:
  // a cycle InnoDB must break by rolling one of them back (error 1213).
  auto side = [&](infra::mysql::connection& db, const char* who, int first, int second, gate& mine,
                  gate& theirs) {
    int attempts = 0;
    res::with_transaction_retry(
        db,
        [&](infra::mysql::connection& tx) {
          ++attempts;
          tx.execute(std::string("INSERT INTO kysera_res_log VALUES ('") + who + "', " +
                     std::to_string(attempts) + ")");
          tx.execute("UPDATE kysera_res_pair SET v = v + 1 WHERE id = " + std::to_string(first));
          if (attempts == 1) {
            mine.open();
            if (!theirs.wait_for(30s)) throw std::runtime_error("the other side never locked");
          }
          tx.execute("UPDATE kysera_res_pair SET v = v + 1 WHERE id = " + std::to_string(second));
        },
        {.max_attempts = 5, .delay = 10ms, .on_retry = log.callback()});
    return attempts;
  };
  std::atomic<int> b_attempts{0};
  std::exception_ptr b_error;
  std::thread other([&] {
    try {
      b_attempts = side(b, "b", 2, 1, b_locked, a_locked);
    } catch (...) {
      b_error = std::current_exception();
    }
  });
  int a_attempts = 0;
  std::exception_ptr a_error;
  try {
    a_attempts = side(a, "a", 1, 2, a_locked, b_locked);
  } catch (...) {
    a_error = std::current_exception();
  }
  other.join();
  REQUIRE_FALSE(a_error);
  REQUIRE_FALSE(b_error);

  // Exactly one side was the victim and ran twice; both increments landed exactly once each.
  CHECK(a_attempts + b_attempts == 3);
  CHECK(log.get() == std::vector<std::pair<int, errc>>{{1, errc::deadlock}});
  CHECK(scalar(a, "SELECT v FROM kysera_res_pair WHERE id = 1") == 2);
  CHECK(scalar(a, "SELECT v FROM kysera_res_pair WHERE id = 2") == 2);
  // The victim's first attempt left nothing behind.
  CHECK(scalar(a, "SELECT COUNT(*) FROM kysera_res_log") == 2);
  CHECK(scalar(a, "SELECT COUNT(*) FROM kysera_res_log WHERE attempt = 2") == 1);
  a.execute("DROP TABLE kysera_res_pair");
  a.execute("DROP TABLE kysera_res_log");
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("contending sqlite writers all succeed through retry with no lost rows", "[resilience][sqlite]") {
  temp_sqlite_file file("writers");
  {
    infra::sqlite::connection setup(file.path.string());
    setup.execute("CREATE TABLE item (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, n INTEGER NOT NULL)");
  }
  constexpr int writers = 4;
  constexpr int rows_each = 25;
  std::atomic<int> first_retries{0};  // writers that have been turned away at least once
  std::atomic<int> retries{0};
  std::atomic<int> failures{0};

  // A blocker holds the write lock until every writer has met SQLITE_BUSY at least once, so the
  // contention is certain rather than likely.
  infra::sqlite::connection blocker(file.path.string());
  gate release_blocker;
  gate blocker_holds;
  std::thread holder([&] {
    blocker.transaction([&](infra::sqlite::connection& tx) {
      tx.execute("INSERT INTO item (writer, n) VALUES (-1, 0)");
      blocker_holds.open();
      release_blocker.wait_for(60s);
    });
  });
  REQUIRE(blocker_holds.wait_for(30s));

  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      try {
        infra::sqlite::connection db(file.path.string(), {.busy_timeout = 0ms});
        bool turned_away = false;
        for (int n = 0; n < rows_each; ++n) {
          res::with_transaction_retry(
              db,
              [&](infra::sqlite::connection& tx) {
                tx.execute("INSERT INTO item (writer, n) VALUES (" + std::to_string(w) + ", " +
                           std::to_string(n) + ")");
              },
              {.max_attempts = 10000,
               .delay = 1ms,
               .max_delay = 20ms,
               .jitter = 0.5,
               .should_retry = [](const std::exception& e) { return res::is_transient_error(e); },
               .on_retry =
                   [&](int, const std::exception& e) {
                     const auto* db_error = dynamic_cast<const infra::database_error*>(&e);
                     if (db_error == nullptr || db_error->condition() != errc::busy) ++failures;
                     ++retries;
                     if (!std::exchange(turned_away, true)) ++first_retries;
                   }});
        }
      } catch (...) {
        ++failures;
      }
    });
  }
  const bool all_met_busy = eventually([&] { return first_retries.load() == writers; }, 60s);
  release_blocker.open();
  holder.join();
  for (auto& t : threads) t.join();

  CHECK(all_met_busy);
  CHECK(failures == 0);
  CHECK(retries >= writers);
  infra::sqlite::connection check(file.path.string());
  CHECK(scalar(check, "SELECT COUNT(*) FROM item WHERE writer >= 0") == writers * rows_each);
  CHECK(scalar(check, "SELECT COUNT(DISTINCT writer * 1000 + n) FROM item WHERE writer >= 0") ==
        writers * rows_each);
}
#endif

// ---------------------------------------------------------------- breaker across a server outage

namespace {

template <class Connection>
void breaker_across_outage(const std::string& server, const std::string& url) {
  Connection db(url);
  std::mutex m;
  std::vector<std::pair<res::circuit_state, res::circuit_state>> reported;
  res::circuit_breaker breaker({.threshold = 3,
                                .reset_time = 300ms,
                                .on_state_change = [&](res::circuit_state n, res::circuit_state p) {
                                  std::lock_guard lock(m);
                                  reported.emplace_back(n, p);
                                }});
  auto ping = [&] { return scalar(db, "SELECT 1"); };
  REQUIRE(breaker.execute(ping) == 1);

  {
    servers::stop_guard down(server);
    int failures = 0;
    while (!breaker.is_open() && failures < 10) {
      try {
        breaker.execute(ping);
      } catch (const res::circuit_breaker_error&) {
        FAIL("rejected before opening");
      } catch (const infra::database_error& e) {
        CHECK(res::is_transient_error(e));  // connection_lost, then connection_refused
        ++failures;
      }
    }
    CHECK(failures == 3);
    REQUIRE(breaker.is_open());
    try {
      breaker.execute([&]() -> std::int64_t {
        FAIL("a rejected call ran");
        return 0;
      });
    } catch (const res::circuit_breaker_error& e) {
      CHECK(e.code() == errc::circuit_open);
    }
    down.start();
  }

  // The server is back (or still starting): probes after each reset_time until one succeeds.
  const bool closed = eventually(
      [&] {
        try {
          breaker.execute(ping);
        } catch (const std::exception&) {
        }
        return breaker.is_closed();
      },
      90s);
  REQUIRE(closed);
  CHECK(breaker.get_state().failures == 0);
  std::lock_guard lock(m);
  REQUIRE(reported.size() >= 3);
  CHECK(reported.front() == std::make_pair(res::circuit_state::open, res::circuit_state::closed));
  CHECK(reported.back() == std::make_pair(res::circuit_state::closed, res::circuit_state::half_open));
  for (std::size_t i = 1; i < reported.size(); ++i) CHECK(reported[i].second == reported[i - 1].first);
}

}  // namespace

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("the breaker opens while postgres is stopped and closes after it is back", "[resilience][postgres]") {
  breaker_across_outage<infra::postgres::connection>("postgres", servers::postgres_url());
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("the breaker opens while mariadb is stopped and closes after it is back", "[resilience][mysql]") {
  breaker_across_outage<infra::mysql::connection>("mysql", servers::mysql_url());
}
#endif
