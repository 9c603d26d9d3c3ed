// The bad-input catalogue, part 2 (real PostgreSQL and MariaDB servers): SQL text that is empty,
// whitespace, huge or holds NUL bytes; connection strings that parse but name something the
// server does not have; and calling everything after close() on real connections and pools.
// Each case must give a clear exception or its documented result, never a crash or a hang, and
// the connection must stay usable after a statement failed.

#include "support/catch.hpp"
#include "support/servers.hpp"

#include <kysera/infra.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "support_reliability.hpp"

namespace infra = kysera::infra;
namespace servers = kysera::test::servers;
using namespace std::chrono_literals;
using namespace std::string_view_literals;
using kysera::test::reliability::capture;
using kysera::test::reliability::outcome;
using kysera::test::reliability::run_bounded;

// Every test here needs a server backend.
#if defined(KYSERA_INFRA_HAS_POSTGRES) || defined(KYSERA_INFRA_HAS_MYSQL)
namespace {

std::string with_nul(std::string_view before, std::string_view after) {
  std::string s(before);
  s.push_back('\0');
  s.append(after);
  return s;
}

/// The test server's URL with the path (database name) replaced.
std::string with_database(const std::string& url, const std::string& database) {
  auto scheme_end = url.find("://");
  auto slash = url.find('/', scheme_end + 3);
  REQUIRE(slash != std::string::npos);
  return url.substr(0, slash + 1) + database;
}

/// The test server's URL with the user and password replaced.
std::string with_credentials(const std::string& url, const std::string& user, const std::string& password) {
  auto scheme_end = url.find("://");
  auto at = url.find('@', scheme_end);
  REQUIRE(at != std::string::npos);
  return url.substr(0, scheme_end + 3) + user + ":" + password + url.substr(at);
}

std::string in_list_sql(int n) {
  std::string sql = "SELECT 1 WHERE " + std::to_string(n - 1) + " IN (";
  for (int i = 0; i < n; ++i) sql += (i ? "," : "") + std::to_string(i);
  return sql + ")";
}

std::string nested_sql(int depth) {
  return "SELECT " + std::string(static_cast<std::size_t>(depth), '(') + "1" +
         std::string(static_cast<std::size_t>(depth), ')');
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// PostgreSQL
// ---------------------------------------------------------------------------------------------

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres empty and whitespace-only SQL return an empty result", "[reliability][postgres]") {
  infra::postgres::connection db(servers::postgres_url());
  for (std::string_view sql : {""sv, "   "sv, " \n\t\r "sv, "-- a comment"sv, ";"sv}) {
    INFO("sql \"" << sql << "\"");
    pqxx::result r;
    REQUIRE_NOTHROW(r = db.execute(sql));
    CHECK(r.empty());
    CHECK(r.columns() == 0);
  }
  CHECK(db.execute("SELECT 1").size() == 1);
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres huge SQL text runs or fails cleanly", "[reliability][postgres]") {
  infra::postgres::connection db(servers::postgres_url());
  SECTION("10 MB comment") {
    auto r = db.execute("SELECT 7 -- " + std::string(10'000'000, 'x'));
    REQUIRE(r.size() == 1);
    CHECK(r[0][0].as<int>() == 7);
  }
  SECTION("IN list of 200000 values") {
    CHECK(db.execute(in_list_sql(200000)).size() == 1);
  }
  SECTION("10 MB string literal") {
    auto r = db.execute("SELECT length('" + std::string(10'000'000, 'y') + "')");
    CHECK(r[0][0].as<long>() == 10'000'000);
  }
  SECTION("100000 nested parentheses") {
    outcome o = capture([&] { db.execute(nested_sql(100000)); });
    INFO(o.describe());
    CHECK(o.is(infra::errc::query_failed));
  }
  CHECK(db.execute("SELECT 1").size() == 1);  // the session survived
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres SQL with a NUL byte is rejected before anything runs", "[reliability][postgres]") {
  // The protocol cannot carry a NUL byte in a query: libpq would stop at it and run only the
  // part before. The adapter must refuse such text (errc::query_failed, like SQLite) rather than
  // run a different statement than the one it was given.
  infra::postgres::connection db(servers::postgres_url());
  db.execute("DROP TABLE IF EXISTS kysera_rel_nul");
  for (std::string sql : {with_nul("SELECT 1", " garbage"), with_nul("SELECT 1", ""),
                          with_nul("CREATE TABLE kysera_rel_nul (x integer)", "; DROP TABLE nothing")}) {
    outcome o = capture([&] { db.execute(sql); });
    INFO(o.describe());
    CHECK(o.is(infra::errc::query_failed));
  }
  CHECK(db.execute("SELECT to_regclass('kysera_rel_nul') IS NULL")[0][0].as<bool>());
  db.execute("DROP TABLE IF EXISTS kysera_rel_nul");
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres connection strings the server cannot serve", "[reliability][postgres]") {
  const std::string url = servers::postgres_url();
  SECTION("a database that does not exist") {
    outcome o = capture([&] { infra::postgres::connection c(with_database(url, "kysera_no_such_db")); });
    INFO(o.describe());
    CHECK(o.what == outcome::kind::database_error);
    CHECK(o.is(infra::errc::database_not_found));
    CHECK(o.message.find("kysera_no_such_db") != std::string::npos);
    CHECK(o.message.find(servers::postgres_password()) == std::string::npos);
  }
  SECTION("a user that does not exist") {
    outcome o = capture([&] { infra::postgres::connection c(with_credentials(url, "kysera_nobody", "x-Pass-1")); });
    INFO(o.describe());
    CHECK(o.is(infra::errc::authentication_failed));
    CHECK(o.message.find("x-Pass-1") == std::string::npos);
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres connection after close throws closed and close is idempotent", "[reliability][postgres]") {
  infra::postgres::connection db(servers::postgres_url());
  const std::string description = db.description();
  run_bounded("postgres close", 20s, [&] { db.close(); });
  run_bounded("postgres close again", 20s, [&] { db.close(); });
  CHECK_FALSE(db.is_open());
  CHECK(db.description() == description);
  CHECK(db.backend_pid() == 0);
  CHECK(capture([&] { db.execute("SELECT 1"); }).is(infra::errc::closed));
  CHECK(capture([&] { db.execute(""); }).is(infra::errc::closed));
  CHECK(capture([&] { db.ping(); }).is(infra::errc::closed));
  CHECK(capture([&] { (void)db.server_version(); }).is(infra::errc::closed));
  CHECK(capture([&] { (void)db.native(); }).is(infra::errc::closed));
  CHECK(capture([&] { db.transaction([](auto&) {}); }).is(infra::errc::closed));
  run_bounded("postgres cancel after close", 20s, [&] { db.cancel(); });
  auto r = infra::health::check_database_health(db);
  CHECK(r.status == infra::health::health_status::unhealthy);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("closed") != std::string::npos);
}
#endif

// ---------------------------------------------------------------------------------------------
// MySQL / MariaDB
// ---------------------------------------------------------------------------------------------

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql empty SQL is a query error and comment-only SQL is empty", "[reliability][mysql]") {
  // Documented: the server answers an empty or whitespace-only query with error 1065 "Query was
  // empty" (errc::query_failed); a comment alone is a valid, empty statement.
  infra::mysql::connection db(servers::mysql_url());
  for (std::string_view sql : {""sv, "   "sv, " \n\t\r "sv}) {
    outcome o = capture([&] { db.execute(sql); });
    INFO("sql \"" << sql << "\" -> " << o.describe());
    CHECK(o.is(infra::errc::query_failed));
  }
  for (std::string_view sql : {"-- a comment"sv, "/* a comment */"sv}) {
    INFO("sql \"" << sql << "\"");
    infra::rows r;
    REQUIRE_NOTHROW(r = db.execute(sql));
    CHECK(r.empty());
  }
  CHECK(db.execute("SELECT 1").size() == 1);
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql huge SQL text runs or fails cleanly", "[reliability][mysql]") {
  infra::mysql::connection db(servers::mysql_url());
  SECTION("10 MB comment") {
    auto r = db.execute("SELECT 7 -- " + std::string(10'000'000, 'x'));
    REQUIRE(r.size() == 1);
    CHECK(r.at(0, 0) == "7");
  }
  SECTION("IN list of 200000 values") {
    CHECK(db.execute(in_list_sql(200000)).size() == 1);
  }
  SECTION("100000 nested parentheses") {
    outcome o = capture([&] { db.execute(nested_sql(100000)); });
    INFO(o.describe());
    CHECK(o.is(infra::errc::query_failed));
  }
  SECTION("a statement larger than max_allowed_packet") {
    // Documented: the server drops the session (errc::connection_lost, never replayed); the next
    // call reconnects.
    auto limit = std::stoll(*db.execute("SELECT @@max_allowed_packet").at(0, 0));
    std::string sql = "SELECT 1 -- " + std::string(static_cast<std::size_t>(limit) + 1'000'000, 'z');
    outcome o = capture([&] { db.execute(sql); });
    INFO(o.describe());
    CHECK(o.what == outcome::kind::database_error);
    CHECK((o.is(infra::errc::connection_lost) || o.is(infra::errc::query_failed)));
  }
  CHECK(db.execute("SELECT 1").size() == 1);  // usable again (reconnected where needed)
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql SQL with NUL bytes goes to the server as bytes", "[reliability][mysql]") {
  // Documented: the MySQL protocol is binary-safe, so the adapter sends the text unchanged. A NUL
  // outside a literal is a syntax error (errc::query_failed); inside a literal it is data.
  infra::mysql::connection db(servers::mysql_url());
  outcome o = capture([&] { db.execute(with_nul("SELECT 1", " garbage")); });
  INFO(o.describe());
  CHECK(o.is(infra::errc::query_failed));
  auto r = db.execute(with_nul("SELECT 'a", "b' AS v"));
  REQUIRE(r.size() == 1);
  CHECK(r.at(0, 0) == with_nul("a", "b"));
  CHECK(db.execute("SELECT 1").size() == 1);
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql connection strings the server cannot serve", "[reliability][mysql]") {
  const std::string url = servers::mysql_url();
  SECTION("a database that does not exist") {
    outcome o = capture([&] { infra::mysql::connection c(with_database(url, "kysera_no_such_db")); });
    INFO(o.describe());
    CHECK(o.what == outcome::kind::database_error);
    CHECK(o.is(infra::errc::database_not_found));  // server error 1049 "Unknown database"
    CHECK(o.message.find(servers::mysql_password()) == std::string::npos);
  }
  SECTION("a user that does not exist") {
    outcome o = capture([&] { infra::mysql::connection c(with_credentials(url, "kysera_nobody", "x-Pass-1")); });
    INFO(o.describe());
    CHECK(o.is(infra::errc::authentication_failed));
    CHECK(o.message.find("x-Pass-1") == std::string::npos);
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql connection after close throws closed and close is idempotent", "[reliability][mysql]") {
  infra::mysql::connection db(servers::mysql_url());
  const std::string description = db.description();
  run_bounded("mysql close", 20s, [&] { db.close(); });
  run_bounded("mysql close again", 20s, [&] { db.close(); });
  CHECK_FALSE(db.is_open());
  CHECK(db.description() == description);
  CHECK(db.connection_id() == 0);
  CHECK(capture([&] { db.execute("SELECT 1"); }).is(infra::errc::closed));
  CHECK(capture([&] { db.execute(""); }).is(infra::errc::closed));
  CHECK(capture([&] { db.ping(); }).is(infra::errc::closed));
  CHECK(capture([&] { (void)db.server_version(); }).is(infra::errc::closed));
  CHECK(capture([&] { (void)db.native(); }).is(infra::errc::closed));
  CHECK(capture([&] { db.transaction([](auto&) {}); }).is(infra::errc::closed));
  run_bounded("mysql cancel after close", 20s, [&] { db.cancel(); });
  auto r = infra::health::check_database_health(db);
  CHECK(r.status == infra::health::health_status::unhealthy);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("closed") != std::string::npos);
}
#endif

// ---------------------------------------------------------------------------------------------
// Pools of real connections
// ---------------------------------------------------------------------------------------------

// Over each server backend of this build.
#if defined(KYSERA_INFRA_HAS_POSTGRES) && defined(KYSERA_INFRA_HAS_MYSQL)
#define KYSERA_RELIABILITY_SERVER_CONNECTIONS infra::postgres::connection, infra::mysql::connection
#elif defined(KYSERA_INFRA_HAS_POSTGRES)
#define KYSERA_RELIABILITY_SERVER_CONNECTIONS infra::postgres::connection
#elif defined(KYSERA_INFRA_HAS_MYSQL)
#define KYSERA_RELIABILITY_SERVER_CONNECTIONS infra::mysql::connection
#endif

#if defined(KYSERA_RELIABILITY_SERVER_CONNECTIONS)
namespace {
#if defined(KYSERA_INFRA_HAS_POSTGRES)
[[maybe_unused]] std::string server_url(const infra::postgres::connection*) { return servers::postgres_url(); }
#endif
#if defined(KYSERA_INFRA_HAS_MYSQL)
[[maybe_unused]] std::string server_url(const infra::mysql::connection*) { return servers::mysql_url(); }
#endif
}  // namespace

TEMPLATE_TEST_CASE("pool of server connections after close throws pool_closed", "[reliability][postgres][mysql]",
                   KYSERA_RELIABILITY_SERVER_CONNECTIONS) {
  using connection = TestType;
  const std::string url = server_url(static_cast<const connection*>(nullptr));
  infra::pool::connection_pool<connection> pool([&] { return std::make_unique<connection>(url); },
                                                {.max_size = 2, .housekeeping_interval = 0ms});
  auto held = pool.acquire();
  pool.ping();
  run_bounded("pool close", 20s, [&] { pool.close(); });
  run_bounded("pool close again", 20s, [&] { pool.close(); });
  CHECK(capture([&] { (void)pool.acquire(); }).is(infra::errc::pool_closed));
  CHECK(capture([&] { (void)pool.try_acquire(); }).is(infra::errc::pool_closed));
  CHECK(capture([&] { pool.execute("SELECT 1"); }).is(infra::errc::pool_closed));
  CHECK(capture([&] { (void)pool.server_version(); }).is(infra::errc::pool_closed));
  CHECK(capture([&] { pool.transaction([](auto&) {}); }).is(infra::errc::pool_closed));
  CHECK_NOTHROW(held->execute("SELECT 1"));
  held.release();
  CHECK(pool.get_metrics() == infra::pool::pool_metrics{0, 0, 0, 0, 2});
  bool all_closed = false;
  run_bounded("pool close_for", 20s, [&] { all_closed = pool.close_for(5s); });
  CHECK(all_closed);
  auto r = infra::health::check_database_health(pool, infra::pool::create_metrics_pool(pool));
  CHECK(r.status == infra::health::health_status::unhealthy);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("closed") != std::string::npos);
}
#endif  // KYSERA_RELIABILITY_SERVER_CONNECTIONS
#endif  // a server backend
