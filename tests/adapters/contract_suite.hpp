#pragma once
// The adapter contract suite: the behaviour every adapter connection promises
// (docs/adapters/writing-an-adapter.md), as Catch2 tests templated over backend traits structs
// (tests/adapters/*_traits.hpp). The includer names the backends before including it:
//   KYSERA_CONTRACT_ALL_BACKENDS     every backend, comma-separated;
//   KYSERA_CONTRACT_SERVER_BACKENDS  (optional) those with a server whose session a test can
//                                    kill or pause (tests/support/servers.sh).
// contract_it.cpp runs it over the real backends, contract_fake_test.cpp over the fake one.

#include "support/catch.hpp"
#if defined(KYSERA_CONTRACT_SERVER_BACKENDS)
#include "support/servers.hpp"
#endif

#include <kysera/infra/database.hpp>
#include <kysera/infra/error.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <latch>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>

#include <unistd.h>

namespace infra = kysera::infra;
using infra::errc;
using namespace std::chrono_literals;

#if defined(KYSERA_CONTRACT_ALL_BACKENDS)

namespace {

template <class F>
infra::database_error error_of(F&& fn) {
  try {
    fn();
  } catch (const infra::database_error& e) {
    return e;
  }
  FAIL("expected a database_error");
  throw std::logic_error("unreachable");
}

// A table name unique to this process and call; servers are shared by every test run.
inline std::string unique_table() {
  static std::atomic<int> counter{0};
  return "kysera_contract_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
}

// Creates a fresh table on `c` and drops it again at scope exit (best effort).
template <class B>
struct scratch_table {
  typename B::connection& c;
  std::string name = unique_table();
  explicit scratch_table(typename B::connection& conn) : c(conn) {
    (void)c.execute("DROP TABLE IF EXISTS " + name);
    (void)c.execute(B::create_table_sql(name));
  }
  ~scratch_table() {
    try {
      if (c.is_open()) (void)c.execute("DROP TABLE IF EXISTS " + name);
    } catch (...) {
    }
  }
  scratch_table(const scratch_table&) = delete;
  scratch_table& operator=(const scratch_table&) = delete;
  std::int64_t rows() { return B::scalar(c, "SELECT COUNT(*) FROM " + name); }
  void insert(int id, const std::string& v) {
    (void)c.execute("INSERT INTO " + name + " (id, v) VALUES (" + std::to_string(id) + ", '" + v + "')");
  }
};

// The error has the shape every adapter promises: errc, backend name, a "<backend>: " message
// without the password.
template <class B>
void check_shape(const infra::database_error& e, errc expected) {
  INFO(e.what());
  CHECK(e.code() == expected);
  CHECK(e.backend() == B::name);
  CHECK(std::string(e.what()).rfind(std::string(B::name) + ": ", 0) == 0);
  if (!B::password().empty()) CHECK(std::string(e.what()).find(B::password()) == std::string::npos);
}

}  // namespace

TEMPLATE_TEST_CASE("contract: the connection models database with every capability", "[contract]",
                   KYSERA_CONTRACT_ALL_BACKENDS) {
  using connection = typename TestType::connection;
  static_assert(infra::database<connection>);
  static_assert(infra::database_with_ping<connection>);
  static_assert(infra::database_with_cancel<connection>);
  static_assert(infra::database_with_server_version<connection>);
  static_assert(infra::database_with_transaction<connection>);
  static_assert(infra::database_with_bounded_ping<connection>);
  static_assert(!std::is_copy_constructible_v<connection> && !std::is_move_constructible_v<connection>);
  STATIC_REQUIRE(connection::backend_name == std::string_view(TestType::name));
  auto c = TestType::open();
  CHECK(c->is_open());
  CHECK_FALSE(c->description().empty());
  if (!TestType::password().empty()) CHECK(c->description().find(TestType::password()) == std::string::npos);
}

TEMPLATE_TEST_CASE("contract: execute runs statements and returns rows", "[contract]",
                   KYSERA_CONTRACT_ALL_BACKENDS) {
  auto c = TestType::open();
  CHECK(TestType::scalar(*c, TestType::select_one_sql()) == 1);
  scratch_table<TestType> t(*c);
  CHECK(t.rows() == 0);
  t.insert(1, "a");
  t.insert(2, "b");
  CHECK(t.rows() == 2);
  CHECK(TestType::scalar(*c, "SELECT id FROM " + t.name + " WHERE v = 'b'") == 2);
}

TEMPLATE_TEST_CASE("contract: ping and server_version talk to the database", "[contract]",
                   KYSERA_CONTRACT_ALL_BACKENDS) {
  auto c = TestType::open();
  c->ping();
  auto version = c->server_version();
  INFO(version);
  CHECK_FALSE(version.empty());
  CHECK(version.find_first_of("0123456789") != std::string::npos);
  CHECK(infra::server_version(*c) == std::optional<std::string>(version));
  infra::ping(*c);
}

TEMPLATE_TEST_CASE("contract: transaction commits and returns what fn returns", "[contract]",
                   KYSERA_CONTRACT_ALL_BACKENDS) {
  auto c = TestType::open();
  scratch_table<TestType> t(*c);
  int result = c->transaction([&](auto& s) {
    static_assert(std::is_same_v<std::remove_cvref_t<decltype(s)>, typename TestType::connection>);
    CHECK(&s == c.get());
    (void)s.execute("INSERT INTO " + t.name + " (id, v) VALUES (1, 'a')");
    (void)s.execute("INSERT INTO " + t.name + " (id, v) VALUES (2, 'b')");
    return 42;
  });
  CHECK(result == 42);
  c->transaction([&](auto& s) { (void)s.execute("INSERT INTO " + t.name + " (id, v) VALUES (3, 'c')"); });
  CHECK(t.rows() == 3);
}

TEMPLATE_TEST_CASE("contract: transaction rolls back and rethrows when fn throws", "[contract]",
                   KYSERA_CONTRACT_ALL_BACKENDS) {
  struct marker : std::runtime_error {
    using std::runtime_error::runtime_error;
  };
  auto c = TestType::open();
  scratch_table<TestType> t(*c);
  t.insert(1, "kept");
  CHECK_THROWS_AS(c->transaction([&](auto& s) {
    (void)s.execute("INSERT INTO " + t.name + " (id, v) VALUES (2, 'gone')");
    throw marker("from fn");
  }),
                  marker);
  CHECK(t.rows() == 1);
  // A failing statement inside fn: its database_error propagates, the transaction is undone.
  auto e = error_of([&] {
    c->transaction([&](auto& s) {
      (void)s.execute("INSERT INTO " + t.name + " (id, v) VALUES (3, 'gone')");
      (void)s.execute("INSERT INTO " + t.name + " (id, v) VALUES (1, 'duplicate')");
    });
  });
  check_shape<TestType>(e, errc::constraint_violation);
  CHECK(t.rows() == 1);
  // Nested transaction() on the same connection is a programming error.
  CHECK_THROWS_AS(c->transaction([&](auto& s) {
    (void)s.execute("INSERT INTO " + t.name + " (id, v) VALUES (4, 'gone')");
    s.transaction([](auto&) {});
  }),
                  std::logic_error);
  CHECK(t.rows() == 1);
  c->transaction([&](auto& s) { (void)s.execute("INSERT INTO " + t.name + " (id, v) VALUES (5, 'ok')"); });
  CHECK(t.rows() == 2);
}

TEMPLATE_TEST_CASE("contract: after close every call throws closed", "[contract]",
                   KYSERA_CONTRACT_ALL_BACKENDS) {
  auto c = TestType::open();
  c->close();
  CHECK_FALSE(c->is_open());
  c->close();  // idempotent
  c->cancel();  // a no-op, never throws
  check_shape<TestType>(error_of([&] { (void)c->execute(TestType::select_one_sql()); }), errc::closed);
  check_shape<TestType>(error_of([&] { c->ping(); }), errc::closed);
  check_shape<TestType>(error_of([&] { (void)c->server_version(); }), errc::closed);
  check_shape<TestType>(error_of([&] { c->transaction([](auto&) {}); }), errc::closed);
}

TEMPLATE_TEST_CASE("contract: cancel interrupts a long statement running on another thread", "[contract]",
                   KYSERA_CONTRACT_ALL_BACKENDS) {
  auto c = TestType::open();
  std::latch started(1);
  auto result = std::async(std::launch::async, [&]() -> std::optional<infra::database_error> {
    started.count_down();
    try {
      (void)c->execute(TestType::long_statement_sql());
    } catch (const infra::database_error& e) {
      return e;
    }
    return std::nullopt;
  });
  started.wait();
  // The statement may not have reached the database when the first cancel() lands: repeat it
  // until the statement ends. Every cancel() must return at once.
  const auto first = std::chrono::steady_clock::now();
  auto slowest_cancel = std::chrono::steady_clock::duration::zero();
  while (result.wait_for(20ms) != std::future_status::ready &&
         std::chrono::steady_clock::now() - first < 25s) {
    auto before = std::chrono::steady_clock::now();
    c->cancel();
    slowest_cancel = std::max(slowest_cancel, std::chrono::steady_clock::now() - before);
  }
  REQUIRE(result.wait_for(0s) == std::future_status::ready);  // well before the statement's own end
  CHECK(slowest_cancel < 2s);
  auto e = result.get();
  REQUIRE(e.has_value());
  check_shape<TestType>(*e, errc::cancelled);
  // The connection works afterwards, and a cancel() while idle hits nothing.
  c->cancel();
  CHECK(TestType::scalar(*c, TestType::select_one_sql()) == 1);
}

TEMPLATE_TEST_CASE("contract: two threads share one connection", "[contract]", KYSERA_CONTRACT_ALL_BACKENDS) {
  auto c = TestType::open();
  scratch_table<TestType> t(*c);
  constexpr int per_thread = 40;
  std::latch go(2);
  std::atomic<int> failures{0};
  // No Catch2 assertions on the workers (they are not thread-safe): count, check afterwards.
  auto worker = [&](int base) {
    go.arrive_and_wait();
    for (int i = 0; i < per_thread; ++i) {
      try {
        if (i % 2 == 0) {
          (void)c->execute("INSERT INTO " + t.name + " (id, v) VALUES (" + std::to_string(base + i) + ", 'x')");
        } else {
          c->transaction([&](auto& s) {
            (void)s.execute("INSERT INTO " + t.name + " (id, v) VALUES (" + std::to_string(base + i) + ", 'y')");
          });
        }
        c->ping();
        if (TestType::scalar(*c, TestType::select_one_sql()) != 1) ++failures;
      } catch (...) {
        ++failures;
      }
    }
  };
  std::thread a(worker, 0);
  std::thread b(worker, 1000);
  a.join();
  b.join();
  CHECK(failures == 0);
  CHECK(t.rows() == 2 * per_thread);
}

#if defined(KYSERA_CONTRACT_SERVER_BACKENDS)
TEMPLATE_TEST_CASE("contract: a killed session throws connection_lost once then reconnects", "[contract]",
                   KYSERA_CONTRACT_SERVER_BACKENDS) {
  auto c = TestType::open();
  scratch_table<TestType> t(*c);
  TestType::kill_session(*c);
  // The call that meets the broken session fails and is not replayed...
  check_shape<TestType>(error_of([&] { t.insert(1, "lost"); }), errc::connection_lost);
  // ...and the next call reconnects first.
  CHECK(t.rows() == 0);
  t.insert(2, "after");
  CHECK(t.rows() == 1);
  CHECK(c->is_open());
}
#endif

#if defined(KYSERA_CONTRACT_SERVER_BACKENDS)
TEMPLATE_TEST_CASE("contract: a session killed inside a transaction never reconnects mid-transaction",
                   "[contract]", KYSERA_CONTRACT_SERVER_BACKENDS) {
  auto c = TestType::open();
  scratch_table<TestType> t(*c);
  auto e = error_of([&] {
    c->transaction([&](auto& s) {
      (void)s.execute("INSERT INTO " + t.name + " (id, v) VALUES (1, 'in-tx')");
      TestType::kill_session(s);
      (void)s.execute("INSERT INTO " + t.name + " (id, v) VALUES (2, 'in-tx')");
    });
  });
  check_shape<TestType>(e, errc::connection_lost);
  // After the transaction the connection reconnects; nothing of the transaction survived.
  CHECK(t.rows() == 0);
}
#endif

TEMPLATE_TEST_CASE("contract: a wrong password or unreadable database is authentication_failed", "[contract]",
                   KYSERA_CONTRACT_ALL_BACKENDS) {
  // SQLite has no password: its traits open a file that is not a database instead.
  auto e = error_of([] { TestType::open_wrong_password(); });
  check_shape<TestType>(e, errc::authentication_failed);
}

TEMPLATE_TEST_CASE("contract: nothing listening is connection_refused", "[contract]", KYSERA_CONTRACT_ALL_BACKENDS) {
  auto e = error_of([] { typename TestType::connection c(TestType::refused_url()); });
  check_shape<TestType>(e, errc::connection_refused);
}

TEMPLATE_TEST_CASE("contract: statement errors have the documented shape", "[contract]", KYSERA_CONTRACT_ALL_BACKENDS) {
  const std::string name = TestType::name;
  auto c = TestType::open();
  scratch_table<TestType> t(*c);
  t.insert(1, "a");

  auto syntax = error_of([&] { (void)c->execute("SELEC 1"); });
  check_shape<TestType>(syntax, errc::query_failed);
  auto missing = error_of([&] { (void)c->execute("SELECT * FROM kysera_no_such_table_4711"); });
  check_shape<TestType>(missing, errc::query_failed);
  auto duplicate = error_of([&] { t.insert(1, "again"); });
  check_shape<TestType>(duplicate, errc::constraint_violation);

  for (const auto* e : {&syntax, &missing, &duplicate}) {
    INFO(e->what());
    if (name == "sqlite") {
      CHECK(e->sqlstate().empty());  // SQLite has no SQLSTATE; native_code() is the extended code
      CHECK(e->native_code() != 0);
    } else {
      CHECK(e->sqlstate().size() == 5);
    }
    if (name == "mysql") CHECK(e->native_code() != 0);  // the MySQL error number
  }
  if (name == "postgres") {
    CHECK(syntax.sqlstate() == "42601");
    CHECK(missing.sqlstate() == "42P01");
    CHECK(duplicate.sqlstate() == "23505");
  } else if (name == "mysql") {
    CHECK(syntax.native_code() == 1064);
    CHECK(missing.native_code() == 1146);
    CHECK(duplicate.native_code() == 1062);
    CHECK(duplicate.sqlstate() == "23000");
  } else if (name == "fake") {
    CHECK(syntax.sqlstate() == "42601");
    CHECK(missing.sqlstate() == "42P01");
    CHECK(duplicate.sqlstate() == "23505");
  } else {
    CHECK(syntax.native_code() == 1);         // SQLITE_ERROR
    CHECK(missing.native_code() == 1);        // SQLITE_ERROR
    CHECK(duplicate.native_code() == 1555);   // SQLITE_CONSTRAINT_PRIMARYKEY
  }
  // The connection survives statement errors.
  CHECK(TestType::scalar(*c, TestType::select_one_sql()) == 1);
  CHECK(t.rows() == 1);
}

// ------------------------------------------------------------------ bounded ping (try_ping_until)

TEMPLATE_TEST_CASE("contract: try_ping_until answers a live database on the calling thread", "[contract]",
                   KYSERA_CONTRACT_ALL_BACKENDS) {
  auto c = TestType::open();
  // True means it really was bounded: for MySQL, the adapter found the session's socket.
  CHECK(c->try_ping_until(std::chrono::steady_clock::now() + 5s));
  CHECK(c->try_ping_until(std::chrono::steady_clock::time_point::max()));
  auto late = error_of([&] { (void)c->try_ping_until(std::chrono::steady_clock::now() - 1ms); });
  check_shape<TestType>(late, errc::timeout);
  // A deadline that had passed touched nothing: the session is the same and works.
  CHECK(TestType::scalar(*c, TestType::select_one_sql()) == 1);
  c->close();
  check_shape<TestType>(error_of([&] { (void)c->try_ping_until(std::chrono::steady_clock::now() + 5s); }),
                        errc::closed);
}

TEMPLATE_TEST_CASE("contract: try_ping_until gives up at the deadline while another call holds the connection",
                   "[contract]", KYSERA_CONTRACT_ALL_BACKENDS) {
  auto c = TestType::open();
  std::latch inside(1);
  std::latch release(1);
  std::thread holder([&] {
    c->transaction([&](auto&) {
      inside.count_down();
      release.wait();
    });
  });
  inside.wait();
  const auto start = std::chrono::steady_clock::now();
  auto e = error_of([&] { (void)c->try_ping_until(start + 200ms); });
  const auto elapsed = std::chrono::steady_clock::now() - start;
  release.count_down();
  holder.join();
  check_shape<TestType>(e, errc::timeout);
  CHECK(std::string(e.what()).find("busy") != std::string::npos);
  CHECK(elapsed >= 200ms);
  CHECK(elapsed < 200ms + 750ms);
  // Waiting for the lock cost the session nothing.
  CHECK(c->try_ping_until(std::chrono::steady_clock::now() + 5s));
}

#if defined(KYSERA_CONTRACT_SERVER_BACKENDS)
TEMPLATE_TEST_CASE("contract: try_ping_until against a paused server ends the session at the deadline",
                   "[contract]", KYSERA_CONTRACT_SERVER_BACKENDS) {
  auto c = TestType::open();
  REQUIRE(c->try_ping_until(std::chrono::steady_clock::now() + 5s));
  {
    kysera::test::servers::pause_guard paused(TestType::name);
    const auto start = std::chrono::steady_clock::now();
    auto e = error_of([&] { (void)c->try_ping_until(start + 300ms); });
    const auto elapsed = std::chrono::steady_clock::now() - start;
    INFO(e.what());
    check_shape<TestType>(e, errc::timeout);
    CHECK(std::string(e.what()).find("no answer by the deadline") != std::string::npos);
    CHECK(elapsed >= 300ms);
    CHECK(elapsed < 300ms + 750ms);
    // The session is gone; reopening it is not bounded by a deadline, so the next bounded ping
    // declines at once instead of connecting to the paused server.
    const auto again = std::chrono::steady_clock::now();
    CHECK_FALSE(c->try_ping_until(again + 300ms));
    CHECK(std::chrono::steady_clock::now() - again < 300ms);
    paused.resume();
  }
  // The next ordinary call reconnects; bounded pings work on the new session.
  CHECK(TestType::scalar(*c, TestType::select_one_sql()) == 1);
  CHECK(c->try_ping_until(std::chrono::steady_clock::now() + 5s));
}
#endif

#endif  // KYSERA_CONTRACT_ALL_BACKENDS
