// PostgreSQL adapter against the real test server (tests/support/servers.sh): results, error
// translation of real failures, reconnects, transactions, cancel and thread safety.
#include "support/catch.hpp"
#include "support/error_of.hpp"

// Only in builds that have the PostgreSQL adapter (kysera::infra-postgres linked).
#if defined(KYSERA_INFRA_HAS_POSTGRES)

#include <kysera/infra/adapters/postgres.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <latch>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "postgres_traits.hpp"
#include "support/servers.hpp"

namespace infra = kysera::infra;
using kysera::test::error_of;
namespace servers = kysera::test::servers;
using backend = postgres_backend;
using pg_connection = kysera::infra::postgres::connection;
using namespace std::chrono_literals;

namespace {

/// The outcome of a call made on a helper thread (Catch2 assertions stay on the main thread).
struct outcome {
  bool succeeded = false;
  std::optional<infra::database_error> error;
  std::string other;  // what() of any other exception

  template <class Fn>
  void capture(Fn&& fn) noexcept {
    try {
      fn();
      succeeded = true;
    } catch (const infra::database_error& e) {
      error = e;
    } catch (const std::exception& e) {
      other = e.what();
    } catch (...) {
      other = "unknown exception";
    }
  }
};

std::int64_t count_rows(const std::string& table, const std::string& where = "true") {
  auto db = backend::open();
  return backend::scalar(*db, "SELECT count(*) FROM " + table + " WHERE " + where);
}

/// A fresh table (id integer primary key, v text) with rows 1 and 2, dropped at scope exit.
struct scratch_table {
  std::string name;
  explicit scratch_table(std::string n) : name(std::move(n)) {
    auto db = backend::open();
    db->execute("DROP TABLE IF EXISTS " + name);
    db->execute(backend::create_table_sql(name));
    db->execute("INSERT INTO " + name + " VALUES (1, 'one'), (2, 'two')");
  }
  ~scratch_table() {
    try {
      auto db = backend::open();
      db->execute("DROP TABLE IF EXISTS " + name);
    } catch (...) {
    }
  }
  scratch_table(const scratch_table&) = delete;
  scratch_table& operator=(const scratch_table&) = delete;
};

/// Polls pg_stat_activity (deadline 20 s) until session `pid` is running a statement containing
/// `needle`.
void wait_until_running(int pid, const std::string& needle) {
  auto watcher = backend::open();
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    auto n = backend::scalar(
        *watcher, "SELECT count(*) FROM pg_stat_activity WHERE pid = " + std::to_string(pid) +
                      " AND state = 'active' AND query LIKE '%" + needle + "%'");
    if (n > 0) return;
    std::this_thread::sleep_for(10ms);
  }
  FAIL("session " << pid << " did not start running '" << needle << "' within 20 s");
}

std::string text_of(const pqxx::result& r) {
  return std::string(r.at(0).at(0).c_str());
}

}  // namespace

TEST_CASE("postgres connects executes and returns results", "[postgres]") {
  auto db = backend::open();
  CHECK(db->is_open());
  CHECK(db->backend_pid() > 0);
  CHECK(backend::scalar(*db, backend::select_one_sql()) == 1);

  auto r = db->execute("SELECT 42 AS answer, 'x'::text AS s, NULL::int AS n");
  REQUIRE(r.size() == 1);
  CHECK(r[0]["answer"].as<int>() == 42);
  CHECK(std::string(r[0]["s"].c_str()) == "x");
  CHECK(r[0]["n"].is_null());

  db->execute("CREATE TEMP TABLE results_t (id integer primary key, v text)");
  auto inserted = db->execute("INSERT INTO results_t VALUES (1, 'a'), (2, 'b')");
  CHECK(inserted.affected_rows() == 2);
  CHECK(backend::scalar(*db, "SELECT count(*) FROM results_t") == 2);

  db->ping();
  CHECK_THAT(db->server_version(), Catch::Matchers::StartsWith("PostgreSQL "));
  CHECK(text_of(db->execute("SHOW application_name")) == "kysera-infra");

  const std::string description = db->description();
  CHECK(description.find(backend::password()) == std::string::npos);
  CHECK_THAT(description, Catch::Matchers::StartsWith("postgres://postgres@127.0.0.1:"));
  CHECK_THAT(description, Catch::Matchers::EndsWith("/postgres"));

  pqxx::connection& native = db->native();
  CHECK(native.is_open());
}

TEST_CASE("postgres options reach the session", "[postgres]") {
  infra::postgres::connection_options o;
  o.application_name = "pg it options";
  o.statement_timeout = 1500ms;
  pg_connection db(backend::url(), o);
  CHECK(text_of(db.execute("SHOW application_name")) == "pg it options");
  CHECK(text_of(db.execute("SHOW statement_timeout")) == "1500ms");

  // Settings written into the connection string win over the options.
  pg_connection own(backend::url() + "?application_name=from-url", o);
  CHECK(text_of(own.execute("SHOW application_name")) == "from-url");
}

TEST_CASE("postgres wrong password throws authentication_failed without the password",
          "[postgres]") {
  auto e = error_of([] { backend::open_wrong_password(); });
  CHECK(e.code() == infra::errc::authentication_failed);
  CHECK(e.sqlstate() == "28P01");
  CHECK(e.backend() == "postgres");
  const std::string text = e.what();
  CHECK(text.find("wrong-Password-0") == std::string::npos);
  CHECK(text.find(backend::password()) == std::string::npos);
  CHECK_THAT(text, Catch::Matchers::Contains("password authentication failed"));

  // The conninfo form is parsed and redacted as well.
  const std::string url = backend::url();
  const std::string port = url.substr(url.rfind(':') + 1, url.rfind('/') - url.rfind(':') - 1);
  auto kv = error_of([&] {
    pg_connection c("host=127.0.0.1 port=" + port +
                    " user=postgres dbname=postgres password='kv-Wrong-1'");
  });
  CHECK(kv.code() == infra::errc::authentication_failed);
  CHECK(std::string(kv.what()).find("kv-Wrong-1") == std::string::npos);
}

TEST_CASE("postgres refused port throws connection_refused", "[postgres]") {
  auto e = error_of([] { pg_connection c(backend::refused_url()); });
  CHECK(e.code() == infra::errc::connection_refused);
  CHECK(e.sqlstate() == "08001");
  CHECK(std::string(e.what()).find(backend::password()) == std::string::npos);
}

TEST_CASE("postgres refused connect, unknown database and a shut down server read as sentences",
          "[postgres]") {
  const std::string refused_url = backend::refused_url();
  auto refused = error_of([&] { pg_connection c(refused_url); });
  CHECK(refused.code() == infra::errc::connection_refused);
  const std::string text = refused.what();
  CHECK_THAT(text, Catch::Matchers::Contains("failed: Connection refused. Is the server running"));
  CHECK_THAT(text, Catch::Matchers::Contains("TCP/IP connections? (connecting to postgres://"));
  CHECK(text.back() == ')');  // no ": connection refused" appended

  auto missing = error_of([] { pg_connection c(backend::url().substr(0, backend::url().rfind('/')) + "/kysera_no_such_db"); });
  CHECK(missing.code() == infra::errc::database_not_found);
  CHECK(missing.sqlstate() == "3D000");
  CHECK_THAT(missing.what(), Catch::Matchers::Contains("database \"kysera_no_such_db\" does not exist (connecting to"));

  auto db = backend::open();
  servers::stop_guard stopped("postgres");
  auto lost = error_of([&] { db->execute("SELECT 1"); });
  CHECK(lost.code() == infra::errc::connection_lost);
#if KYSERA_INFRA_PQXX_MAJOR < 7
  CHECK_THAT(lost.what(), Catch::Matchers::StartsWith(
                              "postgres: the server closed the connection (it shut down or restarted, or the "
                              "session was terminated) (session to postgres://"));
#endif
  CHECK_THAT(lost.what(), !Catch::Matchers::Contains("client encoding"));
}

TEST_CASE("postgres stopped server refuses and the connection comes back after start",
          "[postgres]") {
  auto db = backend::open();
  {
    servers::stop_guard stopped("postgres");
    auto refused = error_of([] { backend::open(); });
    CHECK(refused.code() == infra::errc::connection_refused);

    // The open session was shut down: this call fails and is not replayed...
    auto lost = error_of([&] { db->execute("SELECT 1"); });
    CHECK(lost.code() == infra::errc::connection_lost);
    // ...the next one tries one reconnect, which the stopped server refuses.
    auto again = error_of([&] { db->execute("SELECT 1"); });
    CHECK(again.code() == infra::errc::connection_refused);
    stopped.start();
  }
  CHECK(backend::scalar(*db, "SELECT 1") == 1);
}

TEST_CASE("postgres terminated session throws connection_lost once then reconnects", "[postgres]") {
  scratch_table table("kysera_pg_kill");
  auto db = backend::open();
  const int pid = db->backend_pid();
  backend::kill_session(*db);

  auto lost = error_of([&] { db->execute("INSERT INTO " + table.name + " VALUES (3, 'lost')"); });
  CHECK(lost.code() == infra::errc::connection_lost);
  CHECK(lost.backend() == "postgres");

  // The next call reconnects; the failed INSERT was never replayed.
  CHECK(backend::scalar(*db, "SELECT 1") == 1);
  CHECK(db->backend_pid() != pid);
  CHECK(count_rows(table.name, "id = 3") == 0);
}

TEST_CASE("postgres reconnects after a server restart", "[postgres]") {
  infra::postgres::connection_options o;
  o.statement_timeout = 4500ms;
  pg_connection db(backend::url(), o);
  pg_connection tx_db(backend::url(), o);
  const int pid = db.backend_pid();
  servers::control("restart", "postgres");

  auto lost = error_of([&] { db.execute("SELECT 1"); });
  CHECK(lost.code() == infra::errc::connection_lost);
  CHECK(backend::scalar(db, "SELECT 2") == 2);
  CHECK(db.backend_pid() != pid);

  // BEGIN on the dead session fails the same way (libpqxx must not reconnect behind our back)...
  bool fn_ran = false;
  auto begin_lost = error_of([&] { tx_db.transaction([&](pg_connection&) { fn_ran = true; }); });
  CHECK(begin_lost.code() == infra::errc::connection_lost);
  CHECK_FALSE(fn_ran);
  // ...and the next transaction runs on a new session set up like the first.
  std::string timeout = tx_db.transaction(
      [](pg_connection& c) { return text_of(c.execute("SHOW statement_timeout")); });
  CHECK(timeout == "4500ms");
}

TEST_CASE("postgres statement timeout throws timeout and keeps the session", "[postgres]") {
  infra::postgres::connection_options o;
  o.statement_timeout = 300ms;
  pg_connection db(backend::url(), o);
  const int pid = db.backend_pid();
  auto e = error_of([&] { db.execute("SELECT pg_sleep(10)"); });
  CHECK(e.code() == infra::errc::timeout);
  CHECK(e.sqlstate() == "57014");
  CHECK(backend::scalar(db, "SELECT 1") == 1);
  CHECK(db.backend_pid() == pid);

  // The setting is applied again on reconnect.
  backend::kill_session(db);
  CHECK(error_of([&] { db.execute("SELECT 1"); }).code() == infra::errc::connection_lost);
  CHECK(text_of(db.execute("SHOW statement_timeout")) == "300ms");
}

TEST_CASE("postgres constraint and statement errors are classified", "[postgres]") {
  auto db = backend::open();
  db->execute("CREATE TEMP TABLE parent_t (id integer primary key)");
  db->execute(
      "CREATE TEMP TABLE child_t (id integer primary key, parent integer not null references "
      "parent_t(id))");
  db->execute("INSERT INTO parent_t VALUES (1)");
  db->execute("INSERT INTO child_t VALUES (1, 1)");

  auto unique = error_of([&] { db->execute("INSERT INTO parent_t VALUES (1)"); });
  CHECK(unique.code() == infra::errc::constraint_violation);
  CHECK(unique.sqlstate() == "23505");
  auto not_null = error_of([&] { db->execute("INSERT INTO child_t VALUES (2, NULL)"); });
  CHECK(not_null.code() == infra::errc::constraint_violation);
  CHECK(not_null.sqlstate() == "23502");
  auto foreign_key = error_of([&] { db->execute("INSERT INTO child_t VALUES (3, 99)"); });
  CHECK(foreign_key.code() == infra::errc::constraint_violation);
  CHECK(foreign_key.sqlstate() == "23503");

  auto syntax = error_of([&] { db->execute("SELEC 1"); });
  CHECK(syntax.code() == infra::errc::query_failed);
  CHECK(syntax.sqlstate() == "42601");
  auto missing = error_of([&] { db->execute("SELECT * FROM no_such_table_here"); });
  CHECK(missing.code() == infra::errc::query_failed);
  CHECK(missing.sqlstate() == "42P01");
  CHECK_THAT(missing.what(), Catch::Matchers::StartsWith("postgres: ERROR:"));
  auto division = error_of([&] { db->execute("SELECT 1 / 0"); });
  CHECK(division.code() == infra::errc::query_failed);
  CHECK(division.sqlstate() == "22012");

  CHECK(backend::scalar(*db, "SELECT count(*) FROM child_t") == 1);
}

TEST_CASE("postgres transaction commits returns values and rolls back on exceptions",
          "[postgres]") {
  scratch_table table("kysera_pg_tx");
  auto db = backend::open();

  int value = db->transaction([&](pg_connection& c) {
    c.execute("INSERT INTO " + table.name + " VALUES (10, 'committed')");
    return 7;
  });
  CHECK(value == 7);
  CHECK(count_rows(table.name, "id = 10") == 1);

  db->transaction([&](pg_connection& c) {
    c.execute("UPDATE " + table.name + " SET v = 'void' WHERE id = 10");
  });
  CHECK(count_rows(table.name, "v = 'void'") == 1);

  CHECK_THROWS_AS(db->transaction([&](pg_connection& c) {
    c.execute("INSERT INTO " + table.name + " VALUES (11, 'rolled back')");
    throw std::runtime_error("abort the transaction");
  }),
                  std::runtime_error);
  CHECK(count_rows(table.name, "id = 11") == 0);

  // A failing statement rolls everything back and propagates as database_error.
  auto duplicate = error_of([&] {
    db->transaction([&](pg_connection& c) {
      c.execute("INSERT INTO " + table.name + " VALUES (12, 'first')");
      c.execute("INSERT INTO " + table.name + " VALUES (12, 'duplicate')");
    });
  });
  CHECK(duplicate.code() == infra::errc::constraint_violation);
  CHECK(count_rows(table.name, "id = 12") == 0);

  // A failed statement that fn swallows still prevents the COMMIT (PostgreSQL would silently
  // roll back); the transaction reports the statement's error.
  auto swallowed = error_of([&] {
    db->transaction([&](pg_connection& c) {
      c.execute("INSERT INTO " + table.name + " VALUES (15, 'first')");
      try {
        c.execute("INSERT INTO " + table.name + " VALUES (15, 'duplicate')");
      } catch (const infra::database_error&) {
      }
    });
  });
  CHECK(swallowed.code() == infra::errc::constraint_violation);
  CHECK(swallowed.sqlstate() == "23505");
  CHECK_THAT(swallowed.what(), Catch::Matchers::StartsWith("postgres: transaction rolled back"));
  CHECK(count_rows(table.name, "id = 15") == 0);

  // Nesting on one thread is a logic error, and the outer transaction rolls back.
  CHECK_THROWS_AS(db->transaction([&](pg_connection& c) {
    c.execute("INSERT INTO " + table.name + " VALUES (13, 'outer')");
    c.transaction([](pg_connection&) {});
  }),
                  std::logic_error);
  CHECK(count_rows(table.name, "id = 13") == 0);

  // Inside the transaction, statements see its own uncommitted work; others do not.
  db->transaction([&](pg_connection& c) {
    c.execute("INSERT INTO " + table.name + " VALUES (14, 'pending')");
    CHECK(backend::scalar(c, "SELECT count(*) FROM " + table.name + " WHERE id = 14") == 1);
    CHECK(count_rows(table.name, "id = 14") == 0);
  });
  CHECK(count_rows(table.name, "id = 14") == 1);

  // References pass through unchanged.
  int target = 0;
  int& ref = db->transaction([&](pg_connection&) -> int& { return target; });
  CHECK(&ref == &target);

  CHECK(backend::scalar(*db, "SELECT 1") == 1);
}

TEST_CASE("postgres connection lost inside a transaction never reconnects mid-transaction",
          "[postgres]") {
  scratch_table table("kysera_pg_tx_lost");
  auto db = backend::open();
  const int pid = db->backend_pid();
  std::optional<infra::database_error> first, second;
  int pid_inside = -1;

  auto e = error_of([&] {
    db->transaction([&](pg_connection& c) {
      c.execute("INSERT INTO " + table.name + " VALUES (20, 'before kill')");
      backend::kill_session(c);
      try {
        c.execute("INSERT INTO " + table.name + " VALUES (21, 'after kill')");
      } catch (const infra::database_error& err) {
        first = err;
      }
      try {
        c.execute("SELECT 1");
      } catch (const infra::database_error& err) {
        second = err;
      }
      pid_inside = c.backend_pid();
      // Returning normally: COMMIT must not run on a new session either.
    });
  });
  CHECK(e.code() == infra::errc::connection_lost);
  REQUIRE(first);
  CHECK(first->code() == infra::errc::connection_lost);
  REQUIRE(second);
  CHECK(second->code() == infra::errc::connection_lost);
  CHECK(pid_inside == pid);  // still the dead session: no reconnect inside
  CHECK(count_rows(table.name, "id IN (20, 21)") == 0);

  // After the transaction, the next call reconnects.
  CHECK(backend::scalar(*db, "SELECT 1") == 1);
  CHECK(db->backend_pid() != pid);
}

TEST_CASE("postgres commit on a broken session throws outcome_unknown", "[postgres]") {
  scratch_table table("kysera_pg_commit");
  auto db = backend::open();
  auto e = error_of([&] {
    db->transaction([&](pg_connection& c) {
      c.execute("INSERT INTO " + table.name + " VALUES (30, 'maybe')");
      backend::kill_session(c);  // libpq notices only when COMMIT is sent
    });
  });
  CHECK(e.code() == infra::errc::outcome_unknown);
  CHECK_FALSE(infra::is_connection_error(infra::errc::deadlock));
  CHECK(infra::is_connection_error(e.condition()));
  CHECK(backend::scalar(*db, "SELECT 1") == 1);
}

TEST_CASE("postgres real deadlock throws deadlock with SQLSTATE 40P01 in one transaction",
          "[postgres]") {
  scratch_table table("kysera_pg_deadlock");
  auto a = backend::open();
  auto b = backend::open();
  std::latch both_hold_a_lock(2);

  auto worker = [&](pg_connection& db, int first, int second, outcome& result) {
    bool arrived = false;
    result.capture([&] {
      db.transaction([&](pg_connection& c) {
        c.execute("UPDATE " + table.name + " SET v = 'x' WHERE id = " + std::to_string(first));
        arrived = true;
        both_hold_a_lock.arrive_and_wait();
        c.execute("UPDATE " + table.name + " SET v = 'y' WHERE id = " + std::to_string(second));
      });
    });
    if (!arrived) both_hold_a_lock.count_down();  // never leave the other thread waiting
  };
  outcome ra, rb;
  std::thread ta(worker, std::ref(*a), 1, 2, std::ref(ra));
  std::thread tb(worker, std::ref(*b), 2, 1, std::ref(rb));
  ta.join();
  tb.join();

  CHECK(ra.other.empty());
  CHECK(rb.other.empty());
  REQUIRE(ra.succeeded != rb.succeeded);  // exactly one victim
  const outcome& victim = ra.succeeded ? rb : ra;
  REQUIRE(victim.error);
  CHECK(victim.error->code() == infra::errc::deadlock);
  CHECK(victim.error->sqlstate() == "40P01");
  // Both connections stay usable.
  CHECK(backend::scalar(*a, "SELECT 1") == 1);
  CHECK(backend::scalar(*b, "SELECT 1") == 1);
}

TEST_CASE("postgres real serialization failure throws serialization_failure 40001", "[postgres]") {
  scratch_table table("kysera_pg_serial");
  auto a = backend::open();
  auto b = backend::open();
  auto e = error_of([&] {
    a->transaction([&](pg_connection& c) {
      c.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ");
      c.execute("SELECT v FROM " + table.name + " WHERE id = 1");  // takes the snapshot
      b->execute("UPDATE " + table.name + " SET v = 'b' WHERE id = 1");
      c.execute("UPDATE " + table.name + " SET v = 'a' WHERE id = 1");
    });
  });
  CHECK(e.code() == infra::errc::serialization_failure);
  CHECK(e.sqlstate() == "40001");
  CHECK(count_rows(table.name, "id = 1 AND v = 'b'") == 1);
  CHECK(backend::scalar(*a, "SELECT 1") == 1);
}

TEST_CASE("postgres lock_timeout throws lock_timeout 55P03", "[postgres]") {
  scratch_table table("kysera_pg_lock");
  auto a = backend::open();
  auto b = backend::open();
  b->execute("SET lock_timeout = '200ms'");
  std::optional<infra::database_error> e;
  a->transaction([&](pg_connection& c) {
    c.execute("UPDATE " + table.name + " SET v = 'a' WHERE id = 1");
    e = error_of([&] { b->execute("UPDATE " + table.name + " SET v = 'b' WHERE id = 1"); });
  });
  REQUIRE(e);
  CHECK(e->code() == infra::errc::lock_timeout);
  CHECK(e->sqlstate() == "55P03");
  CHECK(count_rows(table.name, "id = 1 AND v = 'a'") == 1);
}

TEST_CASE("postgres role connection limit throws too_many_connections", "[postgres]") {
  const std::string role = "kysera_pg_limited";
  const std::string role_password = "limited-Pass-93";
  auto admin = backend::open();
  auto drop_role = [&] {
    admin->execute(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE usename = '" + role +
        "'");
    admin->execute("DROP ROLE IF EXISTS " + role);
  };
  drop_role();
  admin->execute("CREATE ROLE " + role + " LOGIN PASSWORD '" + role_password +
                 "' CONNECTION LIMIT 1");
  {
    pg_connection first(backend::url_with_credentials(role, role_password));
    CHECK(backend::scalar(first, "SELECT 1") == 1);
    auto e =
        error_of([&] { pg_connection second(backend::url_with_credentials(role, role_password)); });
    CHECK(e.code() == infra::errc::too_many_connections);
    CHECK(e.sqlstate() == "53300");
    CHECK(std::string(e.what()).find(role_password) == std::string::npos);
  }
  drop_role();
}

TEST_CASE("postgres connect to a paused server times out after connect_timeout", "[postgres]") {
  infra::postgres::connection_options o;
  o.connect_timeout = 2s;
  const std::string url = backend::url();
  servers::pause_guard paused("postgres");
  auto start = std::chrono::steady_clock::now();
  auto e = error_of([&] { pg_connection c(url, o); });
  auto elapsed = std::chrono::steady_clock::now() - start;
  paused.resume();
  CHECK(e.code() == infra::errc::timeout);
  CHECK(elapsed >= 1500ms);
  CHECK(elapsed < 15s);
}

TEST_CASE("postgres cancel interrupts a statement running on another thread", "[postgres]") {
  auto db = backend::open();
  const int pid = db->backend_pid();
  outcome result;
  auto start = std::chrono::steady_clock::now();
  std::thread runner([&] { result.capture([&] { db->execute("SELECT pg_sleep(30)"); }); });
  wait_until_running(pid, "pg_sleep(30)");
  db->cancel();
  runner.join();
  auto elapsed = std::chrono::steady_clock::now() - start;

  CHECK_FALSE(result.succeeded);
  CHECK(result.other.empty());
  REQUIRE(result.error);
  CHECK(result.error->code() == infra::errc::cancelled);
  CHECK(result.error->sqlstate() == "57014");
  CHECK(elapsed < 25s);
  // The session survives a cancel.
  CHECK(backend::scalar(*db, "SELECT 1") == 1);
  CHECK(db->backend_pid() == pid);
}

TEST_CASE("postgres cancel returns at once while the server is paused", "[postgres]") {
  auto db = backend::open();
  outcome result;
  std::thread runner([&] { result.capture([&] { db->execute("SELECT pg_sleep(30)"); }); });
  wait_until_running(db->backend_pid(), "pg_sleep(30)");
  {
    servers::pause_guard paused("postgres");
    auto start = std::chrono::steady_clock::now();
    db->cancel();
    db->cancel();  // a second request while the first is stuck also returns at once
    auto elapsed = std::chrono::steady_clock::now() - start;
    CHECK(elapsed < 500ms);
    paused.resume();
  }
  // Once the server runs again the request the helper thread sent is delivered.
  runner.join();
  REQUIRE(result.error);
  CHECK(result.error->code() == infra::errc::cancelled);
  CHECK(backend::scalar(*db, "SELECT 1") == 1);
}

TEST_CASE("postgres cancel without a running statement does nothing", "[postgres]") {
  auto db = backend::open();
  db->cancel();
  CHECK_NOTHROW(db->execute("SELECT pg_sleep(0.3)"));
  CHECK(backend::scalar(*db, "SELECT 1") == 1);
  db->close();
  db->cancel();
}

TEST_CASE("postgres two threads share one connection for 200 statements each", "[postgres]") {
  auto db = backend::open();
  db->execute("CREATE TEMP TABLE shared_t (worker integer, n integer)");
  std::atomic<int> wrong{0};
  std::vector<std::string> errors(2);
  auto work = [&](int worker) {
    try {
      for (int i = 0; i < 200; ++i) {
        const std::string insert = "INSERT INTO shared_t VALUES (" + std::to_string(worker) + ", " +
                                   std::to_string(i) + ") RETURNING n";
        if (i % 50 == 0) {
          // Mix in transactions: the other thread must wait for the whole transaction.
          db->transaction([&](pg_connection& c) {
            if (c.execute(insert).at(0).at(0).as<int>() != i) ++wrong;
            if (backend::scalar(
                    c, "SELECT count(*) FROM shared_t WHERE worker = " + std::to_string(worker) +
                           " AND n = " + std::to_string(i)) != 1) {
              ++wrong;
            }
          });
        } else if (db->execute(insert).at(0).at(0).as<int>() != i) {
          ++wrong;
        }
      }
    } catch (const std::exception& e) {
      errors[static_cast<std::size_t>(worker)] = e.what();
    }
  };
  std::thread t0(work, 0);
  std::thread t1(work, 1);
  t0.join();
  t1.join();
  CHECK(errors[0].empty());
  CHECK(errors[1].empty());
  CHECK(wrong.load() == 0);
  CHECK(backend::scalar(*db, "SELECT count(*) FROM shared_t") == 400);
  CHECK(backend::scalar(*db, "SELECT count(DISTINCT (worker, n)) FROM shared_t") == 400);
}

TEST_CASE(
    "postgres close is idempotent waits for the statement in flight and later calls throw closed",
    "[postgres]") {
  auto db = backend::open();
  outcome in_flight;
  std::thread runner([&] { in_flight.capture([&] { db->execute("SELECT pg_sleep(0.5)"); }); });
  wait_until_running(db->backend_pid(), "pg_sleep(0.5)");
  db->close();  // waits for the statement; does not break it
  runner.join();
  CHECK(in_flight.succeeded);
  CHECK_FALSE(db->is_open());
  CHECK(db->backend_pid() == 0);
  db->close();

  auto closed = [](auto&& fn) { return error_of(fn).code() == infra::errc::closed; };
  CHECK(closed([&] { db->execute("SELECT 1"); }));
  CHECK(closed([&] { db->ping(); }));
  CHECK(closed([&] { db->server_version(); }));
  CHECK(closed([&] { db->transaction([](pg_connection&) {}); }));
  CHECK(closed([&] { db->native(); }));
  db->cancel();
  CHECK(error_of([&] { db->execute("SELECT 1"); }).backend() == "postgres");
}

TEST_CASE("postgres close inside a transaction rolls it back", "[postgres]") {
  scratch_table table("kysera_pg_close_tx");
  auto db = backend::open();
  auto e = error_of([&] {
    db->transaction([&](pg_connection& c) {
      c.execute("INSERT INTO " + table.name + " VALUES (40, 'never')");
      c.close();
    });
  });
  CHECK(e.code() == infra::errc::closed);
  CHECK(count_rows(table.name, "id = 40") == 0);
}

#endif  // KYSERA_INFRA_HAS_POSTGRES
