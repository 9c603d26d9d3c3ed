// Integration tests of the MySQL/MariaDB adapter against the MariaDB server of the `servers`
// fixture. Faults are real: KILL, server stop/restart/pause, InnoDB deadlocks and lock waits.

#include "support/catch.hpp"
#include "support/eventually.hpp"

// Only in builds that have the MySQL adapter (kysera::infra-mysql linked).
#if defined(KYSERA_INFRA_HAS_MYSQL)
#include "support/servers.hpp"

#include "mysql_traits.hpp"

#include <kysera/infra/adapters/mysql.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <latch>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
namespace my = kysera::infra::mysql;
namespace servers = kysera::test::servers;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

/// What a call ended with; filled on any thread, asserted on the test's thread (Catch2's
/// assertions are not thread-safe).
struct outcome {
  bool ok = false;
  std::optional<infra::errc> code;
  int native = 0;
  std::string sqlstate;
  std::string what;
};

template <class F>
outcome capture(F&& fn) {
  outcome o;
  try {
    fn();
    o.ok = true;
  } catch (const infra::database_error& e) {
    o.code = e.condition();
    o.native = e.native_code();
    o.sqlstate = e.sqlstate();
    o.what = e.what();
  } catch (const std::exception& e) {
    o.what = std::string("unexpected exception: ") + e.what();
  }
  return o;
}

std::unique_ptr<my::connection> open(my::connection_options o = {}) {
  return std::make_unique<my::connection>(mysql_backend::url(), o);
}

/// Polls `pred` every `every` until it holds or `limit` passes; returns whether it held.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit = 15s,
                std::chrono::milliseconds every = 10ms) {
  return kysera::test::eventually(pred, limit, every);
}

/// True while session `id` is executing a statement that starts with `prefix`.
bool running(my::connection& observer, std::uint64_t id, const std::string& prefix) {
  return mysql_backend::scalar(observer, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
                                             std::to_string(id) + " AND INFO LIKE '" + prefix + "%'") > 0;
}

bool lacks(const std::string& text, const std::string& secret) { return text.find(secret) == std::string::npos; }

}  // namespace

TEST_CASE("mysql executes statements and materialises rows", "[mysql]") {
  auto db = open();
  CHECK(db->is_open());
  CHECK(db->connection_id() != 0);
  CHECK(lacks(db->description(), mysql_backend::password()));
  CHECK(db->description().find("mysql://kysera@127.0.0.1:") == 0);
  db->ping();
  CHECK(db->server_version().find("MariaDB") != std::string::npos);

  db->execute("CREATE OR REPLACE TABLE my_rows (id INT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(20) NULL, n INT)");
  auto ins = db->execute("INSERT INTO my_rows (name, n) VALUES ('a', 1), (NULL, 2), ('c', 3)");
  CHECK(ins.affected_rows == 3);
  CHECK(ins.columns.empty());
  CHECK_FALSE(ins.last_insert_id.has_value());  // off by default

  auto r = db->execute("SELECT id, name, n * 10 AS tens FROM my_rows ORDER BY id");
  REQUIRE(r.columns == std::vector<std::string>{"id", "name", "tens"});
  REQUIRE(r.size() == 3);
  CHECK(r.at(0, "name") == std::optional<std::string>("a"));
  CHECK_FALSE(r.at(1, "name").has_value());
  CHECK(r.at(2, 2) == std::optional<std::string>("30"));
  CHECK(r.affected_rows == 0);

  auto upd = db->execute("UPDATE my_rows SET n = n + 1 WHERE n >= 2");
  CHECK(upd.affected_rows == 2);
  auto none = db->execute("SELECT id FROM my_rows WHERE id < 0");
  CHECK(none.empty());
  CHECK(none.columns == std::vector<std::string>{"id"});
  CHECK(mysql_backend::scalar(*db, mysql_backend::select_one_sql()) == 1);

  my::connection_options with_id;
  with_id.fetch_last_insert_id = true;
  auto db2 = open(with_id);
  auto ins2 = db2->execute("INSERT INTO my_rows (name, n) VALUES ('d', 4)");
  REQUIRE(ins2.last_insert_id.has_value());
  CHECK(*ins2.last_insert_id == 4);
  CHECK_FALSE(db2->execute("UPDATE my_rows SET n = 0 WHERE id = 4").last_insert_id.has_value());
  db->execute("DROP TABLE my_rows");
}

TEST_CASE("mysql wrong password is authentication_failed without the password in the message", "[mysql]") {
  auto o = capture([] { mysql_backend::open_wrong_password(); });
  REQUIRE(o.code.has_value());
  CHECK(*o.code == infra::errc::authentication_failed);
  CHECK(o.native == 1045);
  CHECK(o.sqlstate == "28000");
  CHECK(o.what.rfind("mysql: ", 0) == 0);
  CHECK(lacks(o.what, mysql_backend::password()));
  CHECK(lacks(o.what, "not-the-Password-4e1b"));
}

TEST_CASE("mysql refused port is connection_refused", "[mysql]") {
  auto o = capture([] { my::connection c(mysql_backend::refused_url()); });
  REQUIRE(o.code.has_value());
  CHECK(*o.code == infra::errc::connection_refused);
  CHECK(lacks(o.what, mysql_backend::password()));
}

TEST_CASE("mysql refused connect and unknown database read as one sentence each", "[mysql]") {
  const std::string refused_url = mysql_backend::refused_url();
  const std::string port = refused_url.substr(refused_url.rfind(':') + 1, refused_url.rfind('/') - refused_url.rfind(':') - 1);
  auto refused = capture([&] { my::connection c(refused_url); });
  REQUIRE(refused.code.has_value());
  CHECK(*refused.code == infra::errc::connection_refused);
  CHECK(refused.what == "mysql: Can't connect to server on '127.0.0.1': the connection was refused or the host is "
                        "unreachable. Is the server running and accepting TCP/IP connections on that port? "
                        "(connecting to mysql://kysera@127.0.0.1:" + port + "/kysera_test)");

  std::string url = mysql_backend::url();
  url = url.substr(0, url.rfind('/')) + "/kysera_no_such_db";
  auto missing = capture([&] { my::connection c(url); });
  REQUIRE(missing.code.has_value());
  CHECK(*missing.code == infra::errc::database_not_found);
  CHECK(missing.native == 1049);
  CHECK(missing.what.rfind("mysql: Unknown database 'kysera_no_such_db' (connecting to mysql://kysera@127.0.0.1:", 0) == 0);
  CHECK(missing.what.back() == ')');  // no ": database not found" after it
  auto use = capture([] { open()->execute("USE kysera_no_such_db"); });
  REQUIRE(use.code.has_value());
  CHECK(*use.code == infra::errc::database_not_found);
}

TEST_CASE("mysql stopped server is connection_refused and the connection comes back after start", "[mysql]") {
  auto db = open();
  {
    servers::stop_guard stopped("mysql");
    auto fresh = capture([] { open(); });
    REQUIRE(fresh.code.has_value());
    CHECK(*fresh.code == infra::errc::connection_refused);
    auto lost = capture([&] { db->execute("SELECT 1"); });
    REQUIRE(lost.code.has_value());
    CHECK(*lost.code == infra::errc::connection_lost);
    // The next call tries one reconnect, which fails while the server is down.
    auto again = capture([&] { db->execute("SELECT 1"); });
    REQUIRE(again.code.has_value());
    CHECK(*again.code == infra::errc::connection_refused);
    stopped.start();
  }
  CHECK(mysql_backend::scalar(*db, "SELECT 1") == 1);
}

TEST_CASE("mysql killed session gives connection_lost once then reconnects", "[mysql]") {
  auto db = open();
  auto before = db->connection_id();
  mysql_backend::kill_session(*db);
  auto lost = capture([&] { db->execute("SELECT 1"); });
  REQUIRE(lost.code.has_value());
  CHECK(*lost.code == infra::errc::connection_lost);
  CHECK(mysql_backend::scalar(*db, "SELECT 2") == 2);  // reconnected, not replayed
  CHECK(db->connection_id() != before);
  CHECK(db->connection_id() != 0);
}

TEST_CASE("mysql server restart gives connection_lost then reconnects", "[mysql]") {
  auto db = open();
  db->execute("SET @marker = 42");
  servers::control("restart", "mysql");
  auto lost = capture([&] { db->ping(); });
  REQUIRE(lost.code.has_value());
  CHECK(*lost.code == infra::errc::connection_lost);
  db->ping();
  // A new session: session state is gone.
  auto r = db->execute("SELECT @marker");
  CHECK_FALSE(r.at(0, 0).has_value());
}

TEST_CASE("mysql real deadlock is errc deadlock 1213 for exactly one side", "[mysql]") {
  auto setup = open();
  setup->execute("CREATE OR REPLACE TABLE my_deadlock (id INT PRIMARY KEY, v INT) ENGINE=InnoDB");
  setup->execute("INSERT INTO my_deadlock VALUES (1, 0), (2, 0)");
  auto a = open();
  auto b = open();
  auto observer = open();
  std::latch a_holds_1(1), b_holds_2(1);
  outcome a_result;
  std::thread ta([&] {
    a_result = capture([&] {
      a->transaction([&](my::connection& tx) {
        tx.execute("UPDATE my_deadlock SET v = v + 1 WHERE id = 1");
        a_holds_1.count_down();
        b_holds_2.wait();
        tx.execute("UPDATE my_deadlock SET v = v + 1 WHERE id = 2");  // waits for b
      });
    });
  });
  outcome b_result = capture([&] {
    b->transaction([&](my::connection& tx) {
      a_holds_1.wait();
      tx.execute("UPDATE my_deadlock SET v = v + 1 WHERE id = 2");
      b_holds_2.count_down();
      // Close the cycle only once a is really waiting for our row lock. InnoDB refreshes the
      // INNODB_TRX snapshot only when it was not read for 100 ms, so poll more slowly than that.
      bool waiting = wait_until(
          [&] {
            return mysql_backend::scalar(*observer,
                                         "SELECT COUNT(*) FROM information_schema.INNODB_TRX WHERE trx_state = "
                                         "'LOCK WAIT' AND trx_mysql_thread_id = " +
                                             std::to_string(a->connection_id())) > 0;
          },
          15s, 150ms);
      if (!waiting) throw std::runtime_error("a never waited for the lock");
      tx.execute("UPDATE my_deadlock SET v = v + 1 WHERE id = 1");
    });
  });
  ta.join();
  INFO("a: " << a_result.what << " | b: " << b_result.what);
  REQUIRE(a_result.ok != b_result.ok);
  const outcome& victim = a_result.ok ? b_result : a_result;
  REQUIRE(victim.code.has_value());
  CHECK(*victim.code == infra::errc::deadlock);
  CHECK(victim.native == 1213);
  CHECK(victim.sqlstate == "40001");
  // The survivor committed both of its updates; the victim's were rolled back.
  CHECK(mysql_backend::scalar(*setup, "SELECT SUM(v) FROM my_deadlock") == 2);
  // Both connections stay usable.
  a->ping();
  b->ping();
  setup->execute("DROP TABLE my_deadlock");
}

TEST_CASE("mysql lock wait timeout is errc lock_timeout", "[mysql]") {
  auto setup = open();
  setup->execute("CREATE OR REPLACE TABLE my_lockwait (id INT PRIMARY KEY, v INT) ENGINE=InnoDB");
  setup->execute("INSERT INTO my_lockwait VALUES (1, 0)");
  auto holder = open();
  auto waiter = open();
  holder->execute("START TRANSACTION");
  holder->execute("UPDATE my_lockwait SET v = 1 WHERE id = 1");
  waiter->execute("SET SESSION innodb_lock_wait_timeout = 1");
  auto o = capture([&] { waiter->execute("UPDATE my_lockwait SET v = 2 WHERE id = 1"); });
  holder->execute("ROLLBACK");
  REQUIRE(o.code.has_value());
  CHECK(*o.code == infra::errc::lock_timeout);
  CHECK(o.native == 1205);
  waiter->execute("UPDATE my_lockwait SET v = 2 WHERE id = 1");  // still usable
  setup->execute("DROP TABLE my_lockwait");
}

TEST_CASE("mysql per-user connection limit is errc too_many_connections", "[mysql]") {
  auto admin = open();
  const std::string secret = "one-Secret-5c7a";
  admin->execute("DROP USER IF EXISTS 'kysera_one'@'%'");
  admin->execute("CREATE USER 'kysera_one'@'%' IDENTIFIED BY '" + secret + "' WITH MAX_USER_CONNECTIONS 1");
  admin->execute("GRANT SELECT ON kysera_test.* TO 'kysera_one'@'%'");
  std::string url = mysql_backend::url();
  url.replace(url.find("kysera:"), std::string("kysera:").size() + mysql_backend::password().size(),
              "kysera_one:" + secret);
  outcome second;
  {
    my::connection first(url);
    second = capture([&] { my::connection c(url); });
  }
  admin->execute("DROP USER 'kysera_one'@'%'");
  REQUIRE(second.code.has_value());
  CHECK(*second.code == infra::errc::too_many_connections);
  CHECK((second.native == 1226 || second.native == 1203));
  CHECK(lacks(second.what, secret));
}

TEST_CASE("mysql constraint violations and statement errors keep the session", "[mysql]") {
  auto db = open();
  auto id = db->connection_id();
  db->execute(mysql_backend::create_table_sql("my_constraint"));
  db->execute("INSERT INTO my_constraint VALUES (1, 'x')");
  auto dup = capture([&] { db->execute("INSERT INTO my_constraint VALUES (1, 'y')"); });
  REQUIRE(dup.code.has_value());
  CHECK(*dup.code == infra::errc::constraint_violation);
  CHECK(dup.native == 1062);
  CHECK(dup.sqlstate == "23000");
  auto null_pk = capture([&] { db->execute("INSERT INTO my_constraint VALUES (NULL, 'y')"); });
  REQUIRE(null_pk.code.has_value());
  CHECK(*null_pk.code == infra::errc::constraint_violation);
  CHECK(null_pk.native == 1048);
  auto syntax = capture([&] { db->execute("SELEC 1"); });
  REQUIRE(syntax.code.has_value());
  CHECK(*syntax.code == infra::errc::query_failed);
  CHECK(syntax.native == 1064);
  auto missing = capture([&] { db->execute("SELECT * FROM my_no_such_table"); });
  REQUIRE(missing.code.has_value());
  CHECK(*missing.code == infra::errc::query_failed);
  CHECK(missing.native == 1146);
  CHECK(db->connection_id() == id);  // no reconnect for statement errors
  db->execute("DROP TABLE my_constraint");
}

TEST_CASE("mysql transaction commits, rolls back and rejects nesting", "[mysql]") {
  auto db = open();
  auto other = open();
  db->execute(mysql_backend::create_table_sql("my_tx"));

  int n = db->transaction([](my::connection& tx) {
    tx.execute("INSERT INTO my_tx VALUES (1, 'committed')");
    CHECK_THROWS_AS(tx.transaction([](my::connection&) {}), std::logic_error);
    return 7;
  });
  CHECK(n == 7);
  CHECK(mysql_backend::scalar(*other, "SELECT COUNT(*) FROM my_tx WHERE id = 1") == 1);

  CHECK_THROWS_AS(db->transaction([](my::connection& tx) {
    tx.execute("INSERT INTO my_tx VALUES (2, 'rolled back')");
    throw std::runtime_error("user failure");
  }),
                  std::runtime_error);
  CHECK(mysql_backend::scalar(*other, "SELECT COUNT(*) FROM my_tx WHERE id = 2") == 0);

  // A failing statement inside rolls everything back too.
  auto failed = capture([&] {
    db->transaction([](my::connection& tx) {
      tx.execute("INSERT INTO my_tx VALUES (3, 'x')");
      tx.execute("INSERT INTO my_tx VALUES (1, 'duplicate')");
    });
  });
  REQUIRE(failed.code.has_value());
  CHECK(*failed.code == infra::errc::constraint_violation);
  CHECK(mysql_backend::scalar(*other, "SELECT COUNT(*) FROM my_tx WHERE id = 3") == 0);

  int target = 0;
  int& ref = db->transaction([&](my::connection&) -> int& { return target; });
  CHECK(&ref == &target);
  auto text = db->transaction([](my::connection& tx) { return *tx.execute("SELECT v FROM my_tx").at(0, 0); });
  CHECK(text == "committed");
  db->execute("DROP TABLE my_tx");
}

TEST_CASE("mysql lost session inside a transaction never reconnects mid-transaction", "[mysql]") {
  auto db = open();
  auto other = open();
  db->execute(mysql_backend::create_table_sql("my_tx_lost"));
  auto first = capture([&] {
    db->transaction([&](my::connection& tx) {
      tx.execute("INSERT INTO my_tx_lost VALUES (1, 'a')");
      mysql_backend::kill_session(tx);
      auto lost = capture([&] { tx.execute("SELECT 1"); });
      auto still_lost = capture([&] { tx.execute("SELECT 1"); });
      if (lost.code != infra::errc::connection_lost || still_lost.code != infra::errc::connection_lost) {
        throw std::runtime_error("expected connection_lost twice, got: " + lost.what + " / " + still_lost.what);
      }
      if (tx.connection_id() != 0) throw std::runtime_error("reconnected inside the transaction");
      throw std::runtime_error("give up");
    });
  });
  CHECK(first.what == "unexpected exception: give up");

  // The session breaks after the last statement: COMMIT itself fails -> outcome unknown.
  auto commit = capture([&] {
    db->transaction([&](my::connection& tx) {
      tx.execute("INSERT INTO my_tx_lost VALUES (2, 'b')");
      mysql_backend::kill_session(tx);
    });
  });
  REQUIRE(commit.code.has_value());
  CHECK(*commit.code == infra::errc::outcome_unknown);
  CHECK(commit.what.find("COMMIT") != std::string::npos);

  // After the transaction the next call reconnects; neither insert survived.
  CHECK(mysql_backend::scalar(*db, "SELECT COUNT(*) FROM my_tx_lost") == 0);
  other->execute("DROP TABLE my_tx_lost");
}

TEST_CASE("mysql cancel interrupts SELECT SLEEP from another thread", "[mysql]") {
  auto db = open();
  auto observer = open();
  db->cancel();  // nothing running: a no-op
  CHECK(mysql_backend::scalar(*db, "SELECT 1") == 1);
  auto id = db->connection_id();

  outcome result;
  steady::time_point finished;
  std::thread t([&] {
    result = capture([&] { db->execute("SELECT SLEEP(30)"); });
    finished = steady::now();
  });
  REQUIRE(wait_until([&] { return running(*observer, id, "SELECT SLEEP"); }));
  auto t0 = steady::now();
  db->cancel();
  auto cancel_took = steady::now() - t0;
  t.join();
  CHECK(cancel_took < 200ms);
  CHECK(finished - t0 < 10s);
  INFO(result.what);
  REQUIRE(result.code.has_value());
  CHECK(*result.code == infra::errc::cancelled);
  CHECK(result.native == 1317);
  CHECK(mysql_backend::scalar(*db, "SELECT 3") == 3);
  CHECK(db->connection_id() == id);  // KILL QUERY keeps the session
}

TEST_CASE("mysql cancel returns at once on a paused server", "[mysql]") {
  auto db = open();
  auto observer = open();
  auto id = db->connection_id();
  outcome result;
  std::atomic<bool> done{false};
  std::thread t([&] {
    result = capture([&] { db->execute("SELECT SLEEP(20)"); });
    done = true;
  });
  REQUIRE(wait_until([&] { return running(*observer, id, "SELECT SLEEP"); }));
  std::chrono::nanoseconds cancel_took{};
  {
    servers::pause_guard paused("mysql");
    auto t0 = steady::now();
    db->cancel();
    cancel_took = steady::now() - t0;
    paused.resume();
  }
  // The first helper may have timed out against the frozen server: keep asking until it lands.
  bool ended = wait_until([&] {
    db->cancel();
    return done.load();
  }, 25s);
  t.join();
  CHECK(cancel_took < 200ms);
  CHECK(ended);
  INFO(result.what);
  REQUIRE(result.code.has_value());
  CHECK(*result.code == infra::errc::cancelled);
}

TEST_CASE("mysql connect to a paused server times out", "[mysql]") {
  servers::pause_guard paused("mysql");
  my::connection_options o;
  o.connect_timeout = 1s;
  auto t0 = steady::now();
  auto r = capture([&] { open(o); });
  auto took = steady::now() - t0;
  paused.resume();
  INFO(r.what);
  REQUIRE(r.code.has_value());
  CHECK(*r.code == infra::errc::timeout);
  CHECK(took < 5s);
}

TEST_CASE("mysql read_timeout ends a long statement with timeout and reconnects", "[mysql]") {
  my::connection_options o;
  o.read_timeout = 1s;
  auto db = open(o);
  auto id = db->connection_id();
  auto t0 = steady::now();
  auto r = capture([&] { db->execute("SELECT SLEEP(10)"); });
  auto took = steady::now() - t0;
  INFO(r.what);
  REQUIRE(r.code.has_value());
  CHECK(*r.code == infra::errc::timeout);
  // The driver only says "Lost connection ..."; the message says it was the read_timeout.
  CHECK(r.what.rfind("mysql: no answer within read_timeout (1 s), so the session was dropped: ", 0) == 0);
  CHECK(took < 6s);
  CHECK(mysql_backend::scalar(*db, "SELECT 4") == 4);
  CHECK(db->connection_id() != id);
}

TEST_CASE("mysql max_statement_time is errc timeout and keeps the session", "[mysql]") {
  auto db = open();
  auto id = db->connection_id();
  auto r = capture([&] { db->execute("SET STATEMENT max_statement_time = 1 FOR SELECT SLEEP(10)"); });
  REQUIRE(r.code.has_value());
  CHECK(*r.code == infra::errc::timeout);
  CHECK(r.native == 1969);
  db->ping();
  CHECK(db->connection_id() == id);
}

TEST_CASE("mysql connection shared by several threads", "[mysql]") {
  auto db = open();
  db->execute(mysql_backend::create_table_sql("my_shared"));
  constexpr int threads = 4;
  constexpr int per_thread = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        auto o = capture([&] {
          int key = t * 1000 + i;
          if (i % 4 == 0) {
            db->transaction([&](my::connection& tx) {
              tx.execute("INSERT INTO my_shared VALUES (" + std::to_string(key) + ", 'tx')");
              (void)mysql_backend::scalar(tx, "SELECT COUNT(*) FROM my_shared");
            });
          } else {
            db->execute("INSERT INTO my_shared VALUES (" + std::to_string(key) + ", 'plain')");
            db->ping();
          }
        });
        if (!o.ok) ++failures;
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(failures == 0);
  CHECK(mysql_backend::scalar(*db, "SELECT COUNT(*) FROM my_shared") == threads * per_thread);
  db->execute("DROP TABLE my_shared");
}

TEST_CASE("mysql close is idempotent final and waits for the statement in flight", "[mysql]") {
  auto db = open();
  auto observer = open();
  auto id = db->connection_id();
  outcome result;
  std::thread t([&] { result = capture([&] { db->execute("SELECT SLEEP(2)"); }); });
  REQUIRE(wait_until([&] { return running(*observer, id, "SELECT SLEEP"); }));
  auto t0 = steady::now();
  db->close();
  auto took = steady::now() - t0;
  t.join();
  CHECK(result.ok);    // the statement was not cut off
  CHECK(took > 1s);    // close waited for it (SLEEP(2) was already running)
  CHECK_FALSE(db->is_open());
  db->close();         // no-op
  db->cancel();        // no-op
  for (auto& o : {capture([&] { db->execute("SELECT 1"); }), capture([&] { db->ping(); }),
                  capture([&] { db->server_version(); }),
                  capture([&] { db->transaction([](my::connection&) {}); }),
                  capture([&] { db->native(); })}) {
    REQUIRE(o.code.has_value());
    CHECK(*o.code == infra::errc::closed);
  }
  CHECK(wait_until([&] {
    return mysql_backend::scalar(*observer, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
                                                std::to_string(id)) == 0;
  }));
}

namespace {

/// The test URL with `params` appended (it has no parameters of its own).
std::string url_with(const std::string& params) { return mysql_backend::url() + "?" + params; }

std::string ssl_cipher(my::connection& c) {
  auto r = c.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
  return r.empty() ? std::string() : r.at(0, 1).value_or("");
}

}  // namespace

TEST_CASE("mysql TLS: ssl-mode with the fixture's CA gives an encrypted session", "[mysql]") {
  const std::string tls = servers::mysql_tls_dir();
  my::connection plain(url_with("ssl-mode=disabled"));
  CHECK(ssl_cipher(plain).empty());  // the fixture's server also serves plain sessions

  my::connection required(url_with("ssl-mode=required"));
  CHECK_FALSE(ssl_cipher(required).empty());

  my::connection verified(url_with("ssl-mode=verify_identity&ssl-ca=" + tls + "/ca.pem"));
  CHECK_FALSE(ssl_cipher(verified).empty());
  CHECK(mysql_backend::scalar(verified, "SELECT 1") == 1);

  // The same through connection_options, with a client certificate for a REQUIRE X509 account.
  std::string url = mysql_backend::url();
  url.replace(url.find("kysera:"), 7, "kysera_x509:");
  my::connection_options o;
  o.ssl_mode = my::ssl_mode::verify_ca;
  o.ssl_ca = tls + "/ca.pem";
  o.ssl_cert = tls + "/client-cert.pem";
  o.ssl_key = tls + "/client-key.pem";
  my::connection x509(url, o);
  CHECK_FALSE(ssl_cipher(x509).empty());
  CHECK(mysql_backend::scalar(x509, "SELECT 2") == 2);
}

TEST_CASE("mysql TLS: a server certificate the given CA did not sign fails clearly", "[mysql]") {
  const std::string tls = servers::mysql_tls_dir();
  for (const char* mode : {"verify_ca", "verify_identity"}) {
    INFO(mode);
    auto o = capture([&] { my::connection c(url_with(std::string("ssl-mode=") + mode + "&ssl-ca=" + tls + "/other-ca.pem")); });
    REQUIRE(o.code.has_value());
    CHECK(*o.code == infra::errc::backend_error);
    CHECK(o.native == 2026);
    CHECK(o.what.rfind("mysql: TLS handshake failed (", 0) == 0);
    CHECK_THAT(o.what, Catch::Matchers::Contains("certificate"));
    CHECK_THAT(o.what, Catch::Matchers::Contains("check ssl-mode, ssl-ca, ssl-cert and ssl-key (connecting to mysql://kysera@127.0.0.1:"));
    CHECK(lacks(o.what, mysql_backend::password()));
  }
}

TEST_CASE("mysql socket: mysql://user@localhost/db?socket=/path connects over the unix socket", "[mysql]") {
  std::string url = mysql_backend::url();
  const auto at = url.find('@');
  url = url.substr(0, at + 1) + "localhost" + url.substr(url.find('/', at)) + "?socket=" + servers::mysql_socket();
  my::connection db(url);
  // The server sees a socket client: no host:port.
  auto r = db.execute("SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()");
  CHECK(r.at(0, 0).value_or("") == "localhost");
  CHECK(mysql_backend::scalar(db, "SELECT 3") == 3);

  // cancel() sends KILL QUERY over a second session to the same socket.
  auto observer = open();
  const auto id = db.connection_id();
  outcome slept;
  std::thread t([&] { slept = capture([&] { db.execute("SELECT SLEEP(30)"); }); });
  REQUIRE(wait_until([&] { return running(*observer, id, "SELECT SLEEP"); }));
  db.cancel();
  t.join();
  REQUIRE(slept.code.has_value());
  CHECK(*slept.code == infra::errc::cancelled);

  auto missing = capture([&] { my::connection c(url + ".missing"); });
  REQUIRE(missing.code.has_value());
  CHECK(*missing.code == infra::errc::connection_refused);
  CHECK_THAT(missing.what, Catch::Matchers::Contains(": No such file or directory. Is the server running, with its socket at that path?"));
  CHECK(lacks(missing.what, mysql_backend::password()));
}

#endif  // KYSERA_INFRA_HAS_MYSQL
