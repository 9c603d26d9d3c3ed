// Tests of the SQLite adapter against real files in a scratch directory (no server needed).

#include "support/catch.hpp"

// Only in builds that have the SQLite adapter (kysera::infra-sqlite linked).
#if defined(KYSERA_INFRA_HAS_SQLITE)

#include "sqlite_traits.hpp"

#include <kysera/infra/adapters/sqlite.hpp>
#include <kysera/infra/database.hpp>
#include <kysera/infra/pool/metrics.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <latch>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
namespace sq = kysera::infra::sqlite;
using namespace std::chrono_literals;
using infra::errc;

namespace {

std::string fresh_path(const std::string& stem = "db") {
  return kysera::test::sqlite_scratch::instance().unique_path(stem).string();
}

// Runs fn, which must throw database_error; returns it.
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

// A statement that runs for minutes unless interrupted.
const std::string long_sql = sqlite_backend::long_statement_sql();

std::int64_t count(sq::connection& c, const std::string& table) {
  return std::stoll(c.execute("SELECT count(*) FROM " + table).at(0, 0).value());
}

// Calls cancel() until the statement running in `f` ends, or the deadline passes.
template <class T>
bool cancel_until_done(sq::connection& c, std::future<T>& f, std::chrono::seconds deadline = 30s) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (f.wait_for(10ms) != std::future_status::ready) {
    if (std::chrono::steady_clock::now() > until) return false;
    c.cancel();
  }
  return true;
}

// Runs fn on a new thread after it counted down `started`; yields its database_error, if any.
template <class F>
std::future<std::optional<infra::database_error>> run_async(std::latch& started, F fn) {
  return std::async(std::launch::async, [&started, fn]() -> std::optional<infra::database_error> {
    started.count_down();
    try {
      fn();
    } catch (const infra::database_error& e) {
      return e;
    }
    return std::nullopt;
  });
}

}  // namespace

// ---------------------------------------------------------------- connection strings, options

TEST_CASE("sqlite connection strings: every documented form is parsed", "[sqlite]") {
  using sq::detail::parse_target;
  auto plain = parse_target("/var/lib/app.db");
  CHECK(plain.filename == "/var/lib/app.db");
  CHECK_FALSE(plain.memory);
  CHECK_FALSE(plain.uri);
  CHECK_FALSE(plain.mode.has_value());
  CHECK(parse_target("rel/app?.db").filename == "rel/app?.db");  // plain paths are literal
  CHECK(parse_target(":memory:").memory);
  CHECK(parse_target("file:x.db?mode=ro").uri);
  CHECK(parse_target("file:x.db?mode=ro").filename == "file:x.db?mode=ro");

  auto abs = parse_target("sqlite:///abs/path/app.db");
  CHECK(abs.filename == "/abs/path/app.db");
  auto rel = parse_target("sqlite://relative/path.db");
  CHECK(rel.filename == "relative/path.db");
  CHECK(parse_target("SQLite:///x").filename == "/x");
  CHECK(parse_target("sqlite:///with%20space.db").filename == "/with space.db");
  CHECK(parse_target("sqlite::memory:").memory);
  CHECK(parse_target("sqlite::memory:").filename == ":memory:");
  CHECK(parse_target("sqlite://:memory:").memory);

  CHECK(parse_target("sqlite:///a.db?mode=ro").mode == std::optional<std::string>("ro"));
  CHECK(parse_target("sqlite:///a.db?mode=rw").mode == std::optional<std::string>("rw"));
  CHECK(parse_target("sqlite://a.db?mode=rwc").mode == std::optional<std::string>("rwc"));
  CHECK(parse_target("sqlite:///a.db?mode=ro").filename == "/a.db");
}

TEST_CASE("sqlite connection strings: malformed ones throw invalid_url", "[sqlite]") {
  const std::string bad[] = {"",
                             std::string("a\0b", 3),
                             std::string("sqlite:///a\0b", 13),
                             "sqlite:",
                             "sqlite:relative.db",
                             "sqlite://",
                             "sqlite:///a.db?mode=memory",
                             "sqlite:///a.db?cache=shared",
                             "sqlite:///a%zz.db",
                             "sqlite:///a.db?mode=%2"};
  for (const auto& text : bad) {
    INFO("text size " << text.size());
    auto e = error_of([&] { sq::connection c(text); });
    CHECK(e.code() == errc::invalid_url);
    CHECK(e.backend() == "sqlite");
    CHECK(std::string(e.what()).rfind("sqlite: ", 0) == 0);
  }
}

TEST_CASE("sqlite options: invalid values throw invalid_argument naming the field", "[sqlite]") {
  auto message_of = [](sq::connection_options o) -> std::string {
    try {
      sq::connection c(":memory:", o);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "no exception";
  };
  sq::connection_options o;
  o.busy_timeout = -1ms;
  CHECK_THAT(message_of(o), Catch::Matchers::Contains("busy_timeout"));
  o = {};
  o.connect_timeout = -5ms;
  CHECK_THAT(message_of(o), Catch::Matchers::Contains("connect_timeout"));
  o = {};
  o.journal_mode = "WAL; DROP TABLE t";
  CHECK_THAT(message_of(o), Catch::Matchers::Contains("journal_mode"));
  o = {};
  o.transaction_mode = static_cast<sq::transaction_mode>(42);
  CHECK_THAT(message_of(o), Catch::Matchers::Contains("transaction_mode"));
  // Options are checked before the string: a bad option wins over a bad URL.
  o = {};
  o.busy_timeout = -1ms;
  CHECK_THROWS_AS(sq::connection("", o), std::invalid_argument);
  // Valid edge values.
  o = {};
  o.busy_timeout = 0ms;
  o.connect_timeout = 0ms;
  o.journal_mode = "wal";
  CHECK_NOTHROW(sq::connection(":memory:", o));
}

TEST_CASE("sqlite error mapping: result codes become errc values", "[sqlite]") {
  using sq::detail::classify;
  using sq::detail::phase;
  for (auto p : {phase::open, phase::statement, phase::commit}) {
    CHECK(classify(SQLITE_BUSY, p) == errc::busy);
    CHECK(classify(SQLITE_BUSY_SNAPSHOT, p) == errc::busy);
    CHECK(classify(SQLITE_BUSY_RECOVERY, p) == errc::busy);
    CHECK(classify(SQLITE_LOCKED, p) == errc::busy);
    CHECK(classify(SQLITE_LOCKED_SHAREDCACHE, p) == errc::busy);
    CHECK(classify(SQLITE_INTERRUPT, p) == errc::cancelled);
    CHECK(classify(SQLITE_CONSTRAINT_UNIQUE, p) == errc::constraint_violation);
    CHECK(classify(SQLITE_CONSTRAINT_FOREIGNKEY, p) == errc::constraint_violation);
    CHECK(classify(SQLITE_CONSTRAINT_NOTNULL, p) == errc::constraint_violation);
    CHECK(classify(SQLITE_AUTH, p) == errc::authentication_failed);
    CHECK(classify(SQLITE_PERM, p) == errc::authentication_failed);
    CHECK(classify(SQLITE_ERROR, p) == (p == phase::open ? errc::invalid_url : errc::query_failed));
    CHECK(classify(SQLITE_READONLY, p) == errc::query_failed);
    CHECK(classify(SQLITE_MISMATCH, p) == errc::query_failed);
    CHECK(classify(SQLITE_FULL, p) == errc::backend_error);
    CHECK(classify(SQLITE_CORRUPT, p) == errc::backend_error);
    CHECK(classify(SQLITE_NOMEM, p) == errc::backend_error);
    CHECK(classify(SQLITE_MISUSE, p) == errc::backend_error);
  }
  CHECK(classify(SQLITE_CANTOPEN, phase::open) == errc::connection_refused);
  CHECK(classify(SQLITE_CANTOPEN_ISDIR, phase::open) == errc::connection_refused);
  CHECK(classify(SQLITE_CANTOPEN, phase::statement) == errc::backend_error);
  CHECK(classify(SQLITE_NOTADB, phase::open) == errc::authentication_failed);
  CHECK(classify(SQLITE_NOTADB, phase::statement) == errc::backend_error);
  CHECK(classify(SQLITE_IOERR_WRITE, phase::statement) == errc::backend_error);
  CHECK(classify(SQLITE_IOERR_FSYNC, phase::commit) == errc::outcome_unknown);

  auto e = sq::detail::make_error(SQLITE_CONSTRAINT_UNIQUE, "UNIQUE constraint failed: t.v",
                                  phase::statement, "executing on sqlite:///x.db");
  CHECK(e.code() == errc::constraint_violation);
  CHECK(e.backend() == "sqlite");
  CHECK(e.sqlstate().empty());
  CHECK(e.native_code() == SQLITE_CONSTRAINT_UNIQUE);
  CHECK(std::string(e.what()).rfind("sqlite: UNIQUE constraint failed: t.v [code 2067] (executing on sqlite:///x.db)", 0) == 0);
  // Without a driver message the generic text for the code is used.
  CHECK_THAT(sq::detail::make_error(SQLITE_BUSY, "", phase::statement, "").what(),
             Catch::Matchers::Contains("database is locked"));
}

TEST_CASE("sqlite description is the canonical connection string", "[sqlite]") {
  CHECK(sq::connection(":memory:").description() == "sqlite::memory:");
  CHECK(sq::connection("sqlite://:memory:").description() == "sqlite::memory:");
  auto path = fresh_path("odd?name%");
  sq::connection rw(path);
  CHECK(rw.description().rfind("sqlite:///", 0) == 0);
  // The description opens the same file (here read-only, as asked).
  rw.execute("CREATE TABLE t (x)");
  sq::connection ro(path, {.read_only = true});
  CHECK(ro.description() == rw.description() + "?mode=ro");
  sq::connection again(ro.description());
  CHECK(again.description() == ro.description());
  CHECK(again.execute("SELECT name FROM sqlite_master").at(0, 0) == "t");
}

// ---------------------------------------------------------------- opening

TEST_CASE("sqlite open: plain paths, sqlite URLs and memory databases", "[sqlite]") {
  auto path = fresh_path();
  {
    sq::connection c(path);  // plain absolute path; creates the file
    CHECK(c.is_open());
    c.execute("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
  }
  CHECK(std::filesystem::exists(path));
  {
    sq::connection c("sqlite://" + path);  // sqlite:///abs/path
    CHECK(count(c, "t") == 1);
  }
  {
    auto relative = std::filesystem::relative(path, std::filesystem::current_path()).string();
    REQUIRE(relative.front() != '/');
    sq::connection plain(relative);
    CHECK(count(plain, "t") == 1);
    sq::connection c("sqlite://" + relative);  // sqlite://relative/path
    CHECK(count(c, "t") == 1);
    sq::connection rw("sqlite://" + relative + "?mode=rw");
    CHECK(count(rw, "t") == 1);
  }
  {
    sq::connection c("file:" + path + "?mode=ro");  // SQLite URI, passed through
    CHECK(count(c, "t") == 1);
    CHECK(error_of([&] { c.execute("INSERT INTO t VALUES (2)"); }).code() == errc::query_failed);
  }
  for (const char* memory : {":memory:", "sqlite::memory:", "sqlite://:memory:"}) {
    sq::connection a(memory);
    sq::connection b(memory);
    a.execute("CREATE TABLE m (x)");
    // Each in-memory database is private to its connection.
    CHECK(error_of([&] { b.execute("SELECT * FROM m"); }).code() == errc::query_failed);
  }
  auto created = fresh_path();
  sq::connection rwc("sqlite://" + created + "?mode=rwc");
  CHECK(std::filesystem::exists(created));
}

TEST_CASE("sqlite open: a missing directory is connection_refused, a missing file not to be created database_not_found", "[sqlite]") {
  auto missing_dir = sqlite_backend::refused_url();
  auto e = error_of([&] { sq::connection c(missing_dir); });
  CHECK(e.code() == errc::connection_refused);
  CHECK((e.native_code() & 0xff) == SQLITE_CANTOPEN);
  CHECK(e.backend() == "sqlite");
  CHECK_THAT(e.what(), Catch::Matchers::Contains("opening sqlite:///"));
  CHECK_THAT(e.what(), Catch::Matchers::StartsWith("sqlite: unable to open database file: its directory does not exist [code 14] (opening sqlite:///"));

  auto missing_file = fresh_path();
  auto no_create = error_of([&] { sq::connection c(missing_file, {.create = false}); });
  CHECK(no_create.code() == errc::database_not_found);
  CHECK((no_create.native_code() & 0xff) == SQLITE_CANTOPEN);
  CHECK(std::string(no_create.what()) ==
        "sqlite: unable to open database file: the file does not exist, and this connection does not create it "
        "[code 14] (opening sqlite://" + missing_file + ")");
  CHECK(error_of([&] { sq::connection c(missing_file, {.read_only = true}); }).code() ==
        errc::database_not_found);
  CHECK(error_of([&] { sq::connection c("sqlite://" + missing_file + "?mode=rw"); }).code() ==
        errc::database_not_found);
  CHECK(error_of([&] { sq::connection c("sqlite://" + missing_file + "?mode=ro"); }).code() ==
        errc::database_not_found);
  CHECK_FALSE(std::filesystem::exists(missing_file));
}

TEST_CASE("sqlite open: a file URI that SQLite refuses is invalid_url and creates nothing", "[sqlite]") {
  // SQLite reports a bad mode, cache, vfs or authority of a file: URI as SQLITE_ERROR from
  // sqlite3_open_v2: the connection string is wrong, not a statement.
  auto path = fresh_path();
  for (const std::string& uri : {"file:" + path + "?mode=bogus", "file:" + path + "?cache=bogus",
                                 "file:" + path + "?vfs=kysera-no-such-vfs", "file://otherhost" + path}) {
    INFO(uri);
    auto e = error_of([&] { sq::connection c(uri); });
    CHECK(e.code() == errc::invalid_url);
    CHECK(e.native_code() == SQLITE_ERROR);
    CHECK(e.backend() == "sqlite");
  }
  CHECK_FALSE(std::filesystem::exists(path));
  // After open, SQLITE_ERROR stays a failed statement.
  sq::connection ok("file:" + path + "?mode=rwc");
  CHECK(error_of([&] { ok.execute("SELEC 1"); }).code() == errc::query_failed);
}

TEST_CASE("sqlite open: a file that is not a database is authentication_failed", "[sqlite]") {
  auto e = error_of([] { sqlite_backend::open_wrong_password(); });
  CHECK(e.code() == errc::authentication_failed);
  CHECK(e.native_code() == SQLITE_NOTADB);
  CHECK_THAT(e.what(), Catch::Matchers::Contains("file is not a database"));
}

TEST_CASE("sqlite open: read-only connections refuse writes", "[sqlite]") {
  auto path = fresh_path();
  {
    sq::connection c(path);
    c.execute("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
  }
  for (auto ro : {std::make_pair(path, sq::connection_options{.read_only = true}),
                  std::make_pair("sqlite://" + path + "?mode=ro", sq::connection_options{}),
                  // read-only wins when only one of the two asks for it
                  std::make_pair("sqlite://" + path + "?mode=rwc", sq::connection_options{.read_only = true})}) {
    sq::connection c(ro.first, ro.second);
    CHECK(count(c, "t") == 1);
    auto e = error_of([&] { c.execute("INSERT INTO t VALUES (2)"); });
    CHECK(e.code() == errc::query_failed);
    CHECK((e.native_code() & 0xff) == SQLITE_READONLY);
  }
}

TEST_CASE("sqlite open: foreign_keys and journal_mode options are applied", "[sqlite]") {
  auto path = fresh_path();
  {
    sq::connection c(path, {.journal_mode = "WAL"});
    CHECK(c.execute("PRAGMA journal_mode").at(0, 0) == "wal");
    CHECK(c.execute("PRAGMA foreign_keys").at(0, 0) == "1");
    c.execute("CREATE TABLE p (id INTEGER PRIMARY KEY); CREATE TABLE ch (p INTEGER REFERENCES p(id))");
    auto e = error_of([&] { c.execute("INSERT INTO ch VALUES (7)"); });
    CHECK(e.code() == errc::constraint_violation);
    CHECK(e.native_code() == SQLITE_CONSTRAINT_FOREIGNKEY);
  }
  sq::connection off(path, {.foreign_keys = false});
  CHECK(off.execute("PRAGMA foreign_keys").at(0, 0) == "0");
  CHECK(off.execute("INSERT INTO ch VALUES (7)").affected_rows == 1);
  CHECK(off.execute("PRAGMA journal_mode").at(0, 0) == "wal");  // WAL persists in the file
}

// ---------------------------------------------------------------- execute

TEST_CASE("sqlite execute: rows carry names, text, numbers, NULL and raw blobs", "[sqlite]") {
  sq::connection c(fresh_path());
  auto r = c.execute("SELECT 42 AS i, 1.5 AS f, 'héllo' AS s, NULL AS n, X'610062' AS b, X'' AS e");
  REQUIRE(r.columns == std::vector<std::string>{"i", "f", "s", "n", "b", "e"});
  REQUIRE(r.size() == 1);
  CHECK(r.at(0, "i") == "42");
  CHECK(r.at(0, "f") == "1.5");
  CHECK(r.at(0, "s") == "héllo");
  CHECK_FALSE(r.at(0, "n").has_value());
  CHECK(r.at(0, "b") == std::string("a\0b", 3));
  CHECK(r.at(0, "e") == std::string());
  CHECK(r.affected_rows == 0);
  CHECK_FALSE(r.last_insert_id.has_value());

  c.execute(sqlite_backend::create_table_sql("t"));
  auto empty = c.execute("SELECT id, v FROM t");
  CHECK(empty.columns == std::vector<std::string>{"id", "v"});
  CHECK(empty.empty());
}

TEST_CASE("sqlite execute: affected rows and last insert id", "[sqlite]") {
  sq::connection c(fresh_path());
  c.execute(sqlite_backend::create_table_sql("t"));
  auto ins = c.execute("INSERT INTO t (v) VALUES ('a'), ('b'), ('c')");
  CHECK(ins.affected_rows == 3);
  CHECK(ins.last_insert_id == std::optional<std::int64_t>(3));
  CHECK(ins.columns.empty());
  CHECK(c.execute("UPDATE t SET v = 'x' WHERE id >= 2").affected_rows == 2);
  CHECK(c.execute("UPDATE t SET v = 'x' WHERE id > 100").affected_rows == 0);
  // A SELECT after writes reports no stale change count.
  auto sel = c.execute("SELECT count(*) FROM t");
  CHECK(sel.affected_rows == 0);
  CHECK_FALSE(sel.last_insert_id.has_value());
  CHECK(c.execute("DELETE FROM t").affected_rows == 3);
  auto returning = c.execute("INSERT INTO t (v) VALUES ('r') RETURNING id, v");
  CHECK(returning.affected_rows == 1);
  CHECK(returning.at(0, "v") == "r");
  CHECK(returning.last_insert_id == std::optional<std::int64_t>(std::stoll(returning.at(0, "id").value())));
}

TEST_CASE("sqlite execute: runs every statement of the text in order", "[sqlite]") {
  sq::connection c(fresh_path());
  auto r = c.execute(
      "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);"
      "INSERT INTO t (v) VALUES ('a');"
      "INSERT INTO t (v) VALUES ('b');"
      "SELECT v FROM t ORDER BY id;"
      "UPDATE t SET v = upper(v) -- trailing statement without columns\n;");
  // Rows of the last statement that produced columns; changes summed over the text.
  CHECK(r.columns == std::vector<std::string>{"v"});
  REQUIRE(r.size() == 2);
  CHECK(r.at(1, 0) == "b");
  CHECK(r.affected_rows == 4);
  CHECK(c.execute("SELECT group_concat(v) FROM t").at(0, 0) == "A,B");
  CHECK(c.execute("SELECT 1; SELECT 2 AS two").at(0, "two") == "2");

  // No implicit transaction: statements before a failing one keep their effects.
  auto e = error_of([&] { c.execute("INSERT INTO t (v) VALUES ('c'); SELEC oops; INSERT INTO t (v) VALUES ('d')"); });
  CHECK(e.code() == errc::query_failed);
  CHECK(count(c, "t") == 3);

  // Empty, blank and comment-only texts: an empty result.
  for (std::string_view nothing : {std::string_view{}, std::string_view(""), std::string_view("  \n\t"),
                                   std::string_view("-- just a comment"), std::string_view(";;")}) {
    auto empty = c.execute(nothing);
    CHECK(empty.columns.empty());
    CHECK(empty.empty());
    CHECK(empty.affected_rows == 0);
  }
  auto nul = error_of([&] { c.execute(std::string_view("SELECT 1;\0SELECT 2", 18)); });
  CHECK(nul.code() == errc::query_failed);
}

TEST_CASE("sqlite errors: syntax errors and missing tables are query_failed", "[sqlite]") {
  sq::connection c(fresh_path());
  auto syntax = error_of([&] { c.execute("SELEC 1"); });
  CHECK(syntax.code() == errc::query_failed);
  CHECK(syntax.native_code() == SQLITE_ERROR);
  CHECK(syntax.backend() == "sqlite");
  CHECK(syntax.sqlstate().empty());
  CHECK_THAT(syntax.what(), Catch::Matchers::StartsWith("sqlite: ") && Catch::Matchers::Contains("syntax error"));
  auto missing = error_of([&] { c.execute("SELECT * FROM no_such_table"); });
  CHECK(missing.code() == errc::query_failed);
  CHECK_THAT(missing.what(), Catch::Matchers::Contains("no such table: no_such_table"));
  CHECK_THAT(missing.what(), Catch::Matchers::Contains(c.description()));
  CHECK(c.execute("SELECT 1").at(0, 0) == "1");  // still usable
}

TEST_CASE("sqlite errors: constraint violations carry the extended result code", "[sqlite]") {
  sq::connection c(fresh_path());
  c.execute(
      "CREATE TABLE p (id INTEGER PRIMARY KEY, u TEXT UNIQUE, nn TEXT NOT NULL DEFAULT 'x', "
      "ck INTEGER CHECK (ck > 0));"
      "CREATE TABLE ch (p INTEGER REFERENCES p(id));"
      "INSERT INTO p (id, u) VALUES (1, 'a')");
  struct expectation {
    const char* sql;
    int code;
  };
  for (const auto& x : {expectation{"INSERT INTO p (id, u) VALUES (2, 'a')", SQLITE_CONSTRAINT_UNIQUE},
                           expectation{"INSERT INTO p (id) VALUES (1)", SQLITE_CONSTRAINT_PRIMARYKEY},
                           expectation{"INSERT INTO p (id, nn) VALUES (3, NULL)", SQLITE_CONSTRAINT_NOTNULL},
                           expectation{"INSERT INTO p (id, ck) VALUES (4, 0)", SQLITE_CONSTRAINT_CHECK},
                           expectation{"INSERT INTO ch VALUES (99)", SQLITE_CONSTRAINT_FOREIGNKEY}}) {
    INFO(x.sql);
    auto e = error_of([&] { c.execute(x.sql); });
    CHECK(e.code() == errc::constraint_violation);
    CHECK(e.native_code() == x.code);
    CHECK_THAT(e.what(), Catch::Matchers::Contains("constraint failed"));
  }
}

// ---------------------------------------------------------------- locking

TEST_CASE("sqlite busy: a second writer with busy_timeout 0 fails at once with errc busy", "[sqlite]") {
  auto path = fresh_path();
  sq::connection a(path);
  sq::connection b(path, {.busy_timeout = 0ms});
  a.execute("CREATE TABLE t (x)");
  a.execute("BEGIN IMMEDIATE; INSERT INTO t VALUES (1)");  // a keeps the write lock
  auto started = std::chrono::steady_clock::now();
  auto e = error_of([&] { b.execute("INSERT INTO t VALUES (2)"); });
  CHECK(std::chrono::steady_clock::now() - started < 2s);
  CHECK(e.code() == errc::busy);
  CHECK((e.native_code() & 0xff) == SQLITE_BUSY);
  CHECK(e.native_code() == sqlite3_extended_errcode(b.native()));
  CHECK_THAT(e.what(), Catch::Matchers::Contains("database is locked"));
  a.execute("COMMIT");
  CHECK(b.execute("INSERT INTO t VALUES (2)").affected_rows == 1);
}

TEST_CASE("sqlite busy: busy_timeout makes a writer wait that long for the lock", "[sqlite]") {
  auto path = fresh_path();
  sq::connection a(path);
  sq::connection b(path, {.busy_timeout = 300ms});
  a.execute("CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)");
  auto started = std::chrono::steady_clock::now();
  auto e = error_of([&] { b.execute("INSERT INTO t VALUES (2)"); });
  CHECK(std::chrono::steady_clock::now() - started >= 290ms);
  CHECK(e.code() == errc::busy);
  a.execute("ROLLBACK");
}

TEST_CASE("sqlite busy: connect_timeout bounds the lock wait while opening", "[sqlite]") {
  auto path = fresh_path();
  sq::connection holder(path);
  holder.execute("CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)");  // no readers either
  auto started = std::chrono::steady_clock::now();
  auto e = error_of([&] { sq::connection c(path, {.connect_timeout = 200ms, .busy_timeout = 60000ms}); });
  auto waited = std::chrono::steady_clock::now() - started;
  CHECK(e.code() == errc::busy);
  CHECK((e.native_code() & 0xff) == SQLITE_BUSY);
  CHECK_THAT(e.what(), Catch::Matchers::Contains("opening sqlite:///"));
  CHECK(waited >= 190ms);
  CHECK(waited < 30s);  // far below busy_timeout
  holder.execute("COMMIT");
  sq::connection c(path, {.connect_timeout = 200ms});
  CHECK(count(c, "t") == 1);
}

TEST_CASE("sqlite busy: try_ping_until gives up a lock wait at its deadline, not at busy_timeout", "[sqlite]") {
  auto path = fresh_path();
  sq::connection holder(path);
  sq::connection c(path, {.busy_timeout = 60000ms});
  CHECK(c.try_ping_until(std::chrono::steady_clock::now() + 5s));
  holder.execute("CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)");  // no readers either
  const auto started = std::chrono::steady_clock::now();
  auto e = error_of([&] { (void)c.try_ping_until(started + 200ms); });
  const auto waited = std::chrono::steady_clock::now() - started;
  INFO(e.what());
  CHECK(e.code() == errc::timeout);
  CHECK_THAT(e.what(), Catch::Matchers::Contains("no answer by the deadline"));
  CHECK(waited >= 200ms);
  CHECK(waited < 200ms + 750ms);  // far below busy_timeout
  holder.execute("COMMIT");
  // The connection is untouched: the next ping answers, and plain statements wait as configured.
  CHECK(c.try_ping_until(std::chrono::steady_clock::now() + 5s));
  CHECK(count(c, "t") == 1);
}

TEST_CASE("sqlite busy: a busy_timeout too large for the clock waits rather than failing at once", "[sqlite]") {
  auto path = fresh_path();
  sq::connection holder(path);
  sq::connection c(path, {.busy_timeout = std::chrono::milliseconds::max()});
  holder.execute("CREATE TABLE t (x); BEGIN EXCLUSIVE; INSERT INTO t VALUES (1)");
  // The bounded ping's deadline ends the wait; a busy_timeout that wrapped around would have
  // given up at once with errc::busy.
  const auto started = std::chrono::steady_clock::now();
  auto e = error_of([&] { (void)c.try_ping_until(started + 150ms); });
  CHECK(e.code() == errc::timeout);
  CHECK(std::chrono::steady_clock::now() - started >= 150ms);
  holder.execute("COMMIT");
}

TEST_CASE("sqlite ping works across a schema change and close releases its statement", "[sqlite]") {
  auto path = fresh_path();
  sq::connection c(path);
  sq::connection other(path);
  c.ping();
  other.execute("CREATE TABLE t (x)");  // bumps the schema version behind c's back
  c.ping();
  CHECK(c.try_ping_until(std::chrono::steady_clock::now() + 5s));
  CHECK(count(c, "t") == 0);
  c.close();  // finalizes the statement; else the handle would stay a zombie (LeakSanitizer)
  CHECK(error_of([&] { c.ping(); }).code() == errc::closed);
}

TEST_CASE("sqlite busy: a deferred transaction on a stale WAL snapshot gets SQLITE_BUSY_SNAPSHOT", "[sqlite]") {
  auto path = fresh_path();
  sq::connection a(path, {.busy_timeout = 0ms, .journal_mode = "WAL"});
  sq::connection b(path, {.busy_timeout = 2000ms});
  a.execute("CREATE TABLE t (x); INSERT INTO t VALUES (1)");

  // deferred: b reads a snapshot, a commits, b's write can never succeed (no wait helps).
  auto e = error_of([&] {
    b.transaction(sq::transaction_mode::deferred, [&](sq::connection& c) {
      CHECK(count(c, "t") == 1);
      a.execute("INSERT INTO t VALUES (2)");
      c.execute("INSERT INTO t VALUES (3)");
    });
  });
  CHECK(e.code() == errc::busy);
  CHECK(e.native_code() == SQLITE_BUSY_SNAPSHOT);
  CHECK(sqlite3_get_autocommit(b.native()) == 1);  // rolled back

  // immediate (the default): b holds the write lock from BEGIN, so a is the one refused.
  b.transaction([&](sq::connection& c) {
    CHECK(count(c, "t") == 2);
    CHECK(error_of([&] { a.execute("INSERT INTO t VALUES (4)"); }).code() == errc::busy);
    c.execute("INSERT INTO t VALUES (3)");
  });
  CHECK(count(a, "t") == 3);
}

TEST_CASE("sqlite transaction: deferred, immediate and exclusive lock as documented", "[sqlite]") {
  auto path = fresh_path();
  sq::connection a(path, {.busy_timeout = 0ms});
  a.execute("CREATE TABLE t (x); INSERT INTO t VALUES (1)");
  sq::connection deferred(path, {.transaction_mode = sq::transaction_mode::deferred});
  deferred.transaction([&](sq::connection&) {
    CHECK(a.execute("INSERT INTO t VALUES (2)").affected_rows == 1);  // no lock taken yet
  });
  sq::connection immediate(path);
  immediate.transaction([&](sq::connection&) {
    CHECK(count(a, "t") == 2);  // readers pass
    CHECK(error_of([&] { a.execute("INSERT INTO t VALUES (3)"); }).code() == errc::busy);
  });
  sq::connection exclusive(path, {.transaction_mode = sq::transaction_mode::exclusive});
  exclusive.transaction([&](sq::connection&) {
    CHECK(error_of([&] { a.execute("SELECT count(*) FROM t"); }).code() == errc::busy);
  });
  CHECK(count(a, "t") == 2);
}

// ---------------------------------------------------------------- cancel

TEST_CASE("sqlite cancel: interrupts a long recursive CTE running on another thread", "[sqlite]") {
  sq::connection c(fresh_path());
  std::latch started(1);
  auto result = run_async(started, [&] { c.execute(long_sql); });
  started.wait();
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(cancel_until_done(c, result));
  auto e = result.get();
  REQUIRE(e.has_value());
  CHECK(e->code() == errc::cancelled);
  CHECK(e->native_code() == SQLITE_INTERRUPT);
  CHECK(e->backend() == "sqlite");
  CHECK(std::chrono::steady_clock::now() - t0 < 30s);
  // The connection is fine afterwards, and the interrupt does not leak into the next statement.
  CHECK(c.execute("SELECT 1").at(0, 0) == "1");
  c.ping();
}

TEST_CASE("sqlite cancel: interrupts a wait for a lock held by another connection", "[sqlite]") {
  auto path = fresh_path();
  sq::connection holder(path);
  holder.execute("CREATE TABLE t (x); BEGIN IMMEDIATE; INSERT INTO t VALUES (1)");
  sq::connection waiter(path, {.busy_timeout = 600000ms});
  std::latch started(1);
  auto result = run_async(started, [&] { waiter.execute("INSERT INTO t VALUES (2)"); });
  started.wait();
  REQUIRE(cancel_until_done(waiter, result));
  auto e = result.get();
  REQUIRE(e.has_value());
  CHECK(e->code() == errc::cancelled);
  CHECK((e->native_code() & 0xff) == SQLITE_BUSY);
  holder.execute("COMMIT");
  CHECK(waiter.execute("INSERT INTO t VALUES (2)").affected_rows == 1);
}

TEST_CASE("sqlite cancel: while idle it is a no-op and never hits the next statement", "[sqlite]") {
  sq::connection c(fresh_path());
  c.cancel();
  c.cancel();
  CHECK(c.execute("SELECT 1").at(0, 0) == "1");
  CHECK(c.transaction([](sq::connection& s) { return s.execute("SELECT 2").at(0, 0).value(); }) == "2");
  c.close();
  c.cancel();  // after close: still a no-op
}

TEST_CASE("sqlite cancel: a cancelled statement inside a transaction rolls it back", "[sqlite]") {
  sq::connection c(fresh_path());
  c.execute(sqlite_backend::create_table_sql("t"));
  std::latch started(1);
  auto result = run_async(started, [&] {
    c.transaction([&](sq::connection& s) {
      s.execute("INSERT INTO t (v) VALUES ('a')");
      s.execute(long_sql);
    });
  });
  started.wait();
  REQUIRE(cancel_until_done(c, result));
  auto e = result.get();
  REQUIRE(e.has_value());
  CHECK(e->code() == errc::cancelled);
  CHECK(count(c, "t") == 0);
  CHECK(sqlite3_get_autocommit(c.native()) == 1);
}

// ---------------------------------------------------------------- transactions

TEST_CASE("sqlite transaction: commits and returns what fn returns", "[sqlite]") {
  sq::connection c(fresh_path());
  c.execute(sqlite_backend::create_table_sql("t"));
  int n = c.transaction([](sq::connection& s) {
    s.execute("INSERT INTO t (v) VALUES ('a'), ('b')");
    return 2;
  });
  CHECK(n == 2);
  c.transaction([](sq::connection& s) { s.execute("INSERT INTO t (v) VALUES ('c')"); });
  int target = 0;
  int& ref = c.transaction([&](sq::connection&) -> int& { return target; });
  CHECK(&ref == &target);
  sq::connection other(c.description());
  CHECK(count(other, "t") == 3);
  CHECK(sqlite3_get_autocommit(c.native()) == 1);
}

TEST_CASE("sqlite transaction: fn throwing rolls back and rethrows the same exception", "[sqlite]") {
  struct custom_error {
    int value;
  };
  sq::connection c(fresh_path());
  c.execute(sqlite_backend::create_table_sql("t"));
  try {
    c.transaction([](sq::connection& s) {
      s.execute("INSERT INTO t (v) VALUES ('a')");
      throw custom_error{7};
    });
    FAIL("no exception");
  } catch (const custom_error& e) {
    CHECK(e.value == 7);
  }
  CHECK(count(c, "t") == 0);
  // A failing statement inside fn: its database_error propagates, everything is rolled back.
  auto e = error_of([&] {
    c.transaction([](sq::connection& s) {
      s.execute("INSERT INTO t (id, v) VALUES (1, 'a')");
      s.execute("INSERT INTO t (id, v) VALUES (1, 'b')");
    });
  });
  CHECK(e.code() == errc::constraint_violation);
  CHECK(count(c, "t") == 0);
  CHECK(sqlite3_get_autocommit(c.native()) == 1);
}

TEST_CASE("sqlite transaction: a nested transaction throws logic_error", "[sqlite]") {
  sq::connection c(fresh_path());
  c.execute(sqlite_backend::create_table_sql("t"));
  CHECK_THROWS_AS(c.transaction([](sq::connection& s) {
    s.execute("INSERT INTO t (v) VALUES ('a')");
    s.transaction([](sq::connection&) {});
  }),
                  std::logic_error);
  CHECK(count(c, "t") == 0);
  // The flag is reset: the next transaction works.
  c.transaction([](sq::connection& s) { s.execute("INSERT INTO t (v) VALUES ('b')"); });
  CHECK(count(c, "t") == 1);
}

TEST_CASE("sqlite transaction: closing inside fn ends it with errc closed", "[sqlite]") {
  auto path = fresh_path();
  sq::connection c(path);
  c.execute(sqlite_backend::create_table_sql("t"));
  auto e = error_of([&] {
    c.transaction([](sq::connection& s) {
      s.execute("INSERT INTO t (v) VALUES ('a')");
      s.close();
    });
  });
  CHECK(e.code() == errc::closed);
  sq::connection check(path);
  CHECK(count(check, "t") == 0);
}

// ---------------------------------------------------------------- threads, close, metrics

TEST_CASE("sqlite threads: two threads share one connection", "[sqlite]") {
  // Catch2 assertions are not thread-safe: the workers count, the main thread checks.
  sq::connection c(fresh_path());
  c.execute(sqlite_backend::create_table_sql("t"));
  constexpr int per_thread = 150;
  std::latch go(2);
  int mismatches_one = 0, mismatches_two = 0, cancels = 0, other_errors = 0;
  // Thread one: transactions. Thread two's cancel() may interrupt one of them: it must then be
  // rolled back entirely and end in errc::cancelled, and thread one retries it.
  std::thread one([&] {
    go.arrive_and_wait();
    for (int done = 0; done < per_thread;) {
      try {
        c.transaction([&](sq::connection& s) {
          s.execute("INSERT INTO t (v) VALUES ('one')");
          if (s.execute("SELECT count(*) FROM t WHERE v = 'one'").at(0, 0) != std::to_string(done + 1)) {
            ++mismatches_one;
          }
        });
        ++done;
      } catch (const infra::database_error& e) {
        ++(e.code() == errc::cancelled ? cancels : other_errors);
      }
    }
  });
  // Thread two: plain statements, ping and cancel.
  std::thread two([&] {
    go.arrive_and_wait();
    try {
      for (int i = 0; i < per_thread; ++i) {
        auto r = c.execute("INSERT INTO t (v) VALUES ('two'); SELECT count(*) FROM t WHERE v = 'two'");
        if (r.at(0, 0) != std::to_string(i + 1)) ++mismatches_two;
        c.ping();
        c.cancel();
      }
    } catch (...) {
      ++other_errors;
    }
  });
  one.join();
  two.join();
  CHECK(mismatches_one == 0);
  CHECK(mismatches_two == 0);
  CHECK(other_errors == 0);
  CHECK(count(c, "t") == 2 * per_thread);
  INFO("cancelled transactions: " << cancels);
  CHECK(sqlite3_get_autocommit(c.native()) == 1);
}

TEST_CASE("sqlite close: waits for the statement in flight and never races cancel", "[sqlite]") {
  sq::connection c(fresh_path());
  std::latch started(1);
  auto result = run_async(started, [&] { c.execute(long_sql); });
  started.wait();
  // close() on a third thread blocks until the statement ends; cancel() keeps working meanwhile.
  auto closer = std::async(std::launch::async, [&] { c.close(); });
  REQUIRE(cancel_until_done(c, result));
  closer.get();
  CHECK_FALSE(c.is_open());
  auto e = result.get();
  REQUIRE(e.has_value());
  CHECK((e->code() == errc::cancelled || e->code() == errc::closed));
}

TEST_CASE("sqlite close: idempotent, and every call afterwards throws closed", "[sqlite]") {
  sq::connection c(fresh_path());
  CHECK(c.is_open());
  c.close();
  CHECK_FALSE(c.is_open());
  c.close();
  for (auto& call : std::vector<std::function<void()>>{
           [&] { c.execute("SELECT 1"); }, [&] { c.ping(); }, [&] { (void)c.server_version(); },
           [&] { c.transaction([](sq::connection&) {}); }, [&] { (void)c.native(); }}) {
    auto e = error_of(call);
    CHECK(e.code() == errc::closed);
    CHECK(e.backend() == "sqlite");
  }
  c.cancel();
  CHECK(c.description().rfind("sqlite:///", 0) == 0);
}

TEST_CASE("sqlite pool metrics: a single connection is a pool of one", "[sqlite]") {
  sq::connection c(fresh_path());
  static_assert(infra::pool::pool_with_metrics<sq::connection>);
  CHECK(infra::pool::is_metrics_pool(c));
  auto handle = infra::pool::create_metrics_pool(c);
  CHECK(handle.get_metrics() == infra::pool::pool_metrics{1, 0, 1, 0, 1});
  c.close();
  CHECK(handle.get_metrics() == infra::pool::pool_metrics{0, 0, 0, 0, 1});
  sq::connection d(":memory:");
  auto other = infra::pool::create_metrics_pool(d);
  other.close();  // closes the connection itself
  CHECK_FALSE(d.is_open());
  CHECK(other.get_metrics().active == 0);
}

TEST_CASE("sqlite models database with ping, cancel, server_version and transaction", "[sqlite]") {
  static_assert(infra::database<sq::connection>);
  static_assert(infra::database_with_ping<sq::connection>);
  static_assert(infra::database_with_cancel<sq::connection>);
  static_assert(infra::database_with_server_version<sq::connection>);
  static_assert(infra::database_with_transaction<sq::connection>);
  static_assert(!std::is_copy_constructible_v<sq::connection>);
  static_assert(!std::is_move_constructible_v<sq::connection>);
  static_assert(sq::connection::backend_name == "sqlite");
  sq::connection c(":memory:");
  CHECK(c.server_version() == sqlite3_libversion());
  CHECK(infra::server_version(c) == std::optional<std::string>(sqlite3_libversion()));
  infra::ping(c);
  CHECK(infra::try_cancel(c));
  CHECK(sq::to_string(sq::transaction_mode::immediate) == "immediate");
}

TEST_CASE("sqlite ping: fails on a file that stopped being a database", "[sqlite]") {
  auto path = fresh_path();
  sq::connection c(path);
  c.ping();
  // Overwrite the header behind SQLite's back (no lock is held between statements).
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0);
    f << "garbage garbage garbage garbage garbage garbage garbage garbage garbage";
  }
  auto e = error_of([&] { c.ping(); });
  CHECK(e.code() == errc::backend_error);
  CHECK(e.native_code() == SQLITE_NOTADB);
}

#endif  // KYSERA_INFRA_HAS_SQLITE
