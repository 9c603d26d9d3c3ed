// Statement deadlines on SQLite (no server needed): a long query and a lock wait are cut at the
// deadline with errc::timeout, a COMMIT so cut is errc::outcome_unknown, and the connection stays
// usable afterwards.

#include "support/catch.hpp"

#if defined(KYSERA_INFRA_HAS_SQLITE)

#include "sqlite_traits.hpp"

#include <kysera/infra/adapters/sqlite.hpp>
#include <kysera/infra/deadline.hpp>

#include <chrono>
#include <stdexcept>
#include <string>

namespace infra = kysera::infra;
namespace sq = kysera::infra::sqlite;
using namespace std::chrono_literals;
using infra::errc;
using clock_type = std::chrono::steady_clock;

namespace {

std::string fresh_path() { return kysera::test::sqlite_scratch::instance().unique_path("deadline").string(); }

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

const std::string long_sql = sqlite_backend::long_statement_sql();
constexpr auto deadline = 300ms;
constexpr auto margin = 1s;  // scheduling on a loaded machine

}  // namespace

TEST_CASE("sqlite deadline: a long query is cut at statement_deadline and the connection stays usable",
          "[sqlite][deadline]") {
  sq::connection db(":memory:", {.statement_deadline = deadline});
  const auto started = clock_type::now();
  auto e = error_of([&] { db.execute(long_sql); });
  const auto took = clock_type::now() - started;
  CHECK(e.code() == errc::timeout);
  CHECK_THAT(e.what(), Catch::Matchers::Contains("deadline"));
  CHECK(took >= deadline - 10ms);
  CHECK(took < deadline + margin);
  CHECK(db.execute("SELECT 1").at(0, 0) == "1");
}

TEST_CASE("sqlite deadline: an ambient deadline cuts a query on a connection without statement_deadline",
          "[sqlite][deadline]") {
  sq::connection db(":memory:");
  const auto started = clock_type::now();
  auto e = error_of([&] { infra::with_deadline(deadline, [&] { return db.execute(long_sql); }); });
  CHECK(e.code() == errc::timeout);
  CHECK(clock_type::now() - started < deadline + margin);
  // An ambient deadline that has passed sends nothing.
  auto early = error_of([&] {
    infra::deadline_scope scope(clock_type::now() - 1ms);
    db.execute("CREATE TABLE never (x)");
  });
  CHECK(early.code() == errc::timeout);
  CHECK(db.execute("SELECT count(*) FROM sqlite_master WHERE name = 'never'").at(0, 0) == "0");
}

TEST_CASE("sqlite deadline: a lock wait is cut at the deadline, not at busy_timeout", "[sqlite][deadline]") {
  auto path = fresh_path();
  sq::connection a(path);
  sq::connection b(path, {.busy_timeout = 30s, .statement_deadline = deadline});
  a.execute("CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)");  // a keeps the write lock
  const auto started = clock_type::now();
  auto e = error_of([&] { b.execute("INSERT INTO t VALUES (2)"); });
  const auto took = clock_type::now() - started;
  CHECK(e.code() == errc::timeout);
  CHECK(took >= deadline - 10ms);
  CHECK(took < deadline + margin);
  a.execute("COMMIT");
  CHECK(b.execute("INSERT INTO t VALUES (2)").affected_rows == 1);
}

TEST_CASE("sqlite deadline: a COMMIT cut at the deadline is outcome_unknown", "[sqlite][deadline]") {
  auto path = fresh_path();
  sq::connection writer(path, {.busy_timeout = 30s, .journal_mode = "delete"});
  sq::connection reader(path);
  writer.execute("CREATE TABLE t (x); INSERT INTO t VALUES (0)");
  // The reader's open read transaction keeps a shared lock: the writer's COMMIT waits for it.
  reader.execute("BEGIN DEFERRED; SELECT count(*) FROM t");
  const auto started = clock_type::now();
  auto cut = error_of([&] {
    infra::with_deadline(deadline, [&] {
      writer.transaction(sq::transaction_mode::deferred, [&](sq::connection& c) { c.execute("INSERT INTO t VALUES (2)"); });
    });
  });
  CHECK(cut.code() == errc::outcome_unknown);
  CHECK(clock_type::now() - started < deadline + margin);
  reader.execute("COMMIT");
  CHECK(writer.execute("SELECT 1").at(0, 0) == "1");
}

TEST_CASE("sqlite deadline: a negative statement_deadline is refused", "[sqlite][deadline]") {
  CHECK_THROWS_AS(sq::connection(":memory:", {.statement_deadline = -1ms}), std::invalid_argument);
}

#endif
