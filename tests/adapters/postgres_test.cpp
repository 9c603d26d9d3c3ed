// PostgreSQL adapter, no server needed: options, connection strings, error translation.
#include "support/catch.hpp"

// Only in builds that have the PostgreSQL adapter (kysera::infra-postgres linked).
#if defined(KYSERA_INFRA_HAS_POSTGRES)

#include <kysera/infra/adapters/postgres.hpp>
#include <kysera/infra/database.hpp>

#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

namespace infra = kysera::infra;
namespace pg = kysera::infra::postgres;
namespace detail = kysera::infra::postgres::detail;
using namespace std::chrono_literals;

namespace {

// Nothing listens on port 1 of the loopback interface, so a connect that got that far fails fast.
constexpr const char* refused_url = "postgres://app:pw-Unit-77@127.0.0.1:1/app";

template <class Fn>
std::string invalid_argument_text(Fn&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no std::invalid_argument)";
}

infra::database_error connect_error(const std::string& text) {
  try {
    pg::connection c(text);
  } catch (const infra::database_error& e) {
    return e;
  }
  FAIL("the connection was expected to fail");
  throw std::logic_error("unreachable");
}

infra::database_error translated(std::exception_ptr e, detail::phase when,
                                 bool session_open = true) {
  static const std::vector<std::string> secrets{"pw-Unit-77"};
  return detail::translate(e, when, session_open, "postgres://app@127.0.0.1:5432/app", secrets);
}

}  // namespace

TEST_CASE("postgres connection models database and every optional capability", "[postgres]") {
  static_assert(infra::database<pg::connection>);
  static_assert(infra::database_with_ping<pg::connection>);
  static_assert(infra::database_with_cancel<pg::connection>);
  static_assert(infra::database_with_server_version<pg::connection>);
  static_assert(infra::database_with_transaction<pg::connection>);
  static_assert(!std::is_copy_constructible_v<pg::connection>);
  static_assert(!std::is_move_constructible_v<pg::connection>);
  STATIC_REQUIRE(pg::connection::backend_name == "postgres");
}

TEST_CASE("postgres connection_options defaults", "[postgres]") {
  pg::connection_options o;
  CHECK(o.connect_timeout == 10s);
  CHECK(o.statement_timeout == 0ms);
  CHECK(o.application_name == "kysera-infra");
}

TEST_CASE("postgres bad options throw invalid_argument naming the field before connecting",
          "[postgres]") {
  pg::connection_options o;
  o.connect_timeout = 0ms;
  CHECK_THAT(invalid_argument_text([&] { pg::connection c(refused_url, o); }),
             Catch::Matchers::Contains("connect_timeout"));
  o.connect_timeout = -5ms;
  CHECK_THAT(invalid_argument_text([&] { pg::connection c(refused_url, o); }),
             Catch::Matchers::Contains("connect_timeout"));
  o = {};
  o.statement_timeout = -1ms;
  CHECK_THAT(invalid_argument_text([&] { pg::connection c(refused_url, o); }),
             Catch::Matchers::Contains("statement_timeout"));
  o = {};
  o.application_name = std::string("a\0b", 3);
  CHECK_THAT(invalid_argument_text([&] { pg::connection c(refused_url, o); }),
             Catch::Matchers::Contains("application_name"));
}

TEST_CASE("postgres malformed connection strings throw invalid_url without the password",
          "[postgres]") {
  const std::vector<std::string> bad{
      "postgres://app:pw-Unit-77@127.0.0.1:99999/app",          // port out of range
      "postgres://app:pw-Unit-77@127.0.0.1:54x2/app",           // bad port
      "postgres://app:pw-Unit-77@127.0.0.1:5432/app?x",         // query parameter without =
      "postgres://app:pw-Unit-77%zz@127.0.0.1:5432/app",        // bad escape
      "mysql://app:pw-Unit-77@127.0.0.1:3306/app",              // wrong scheme
      "host=127.0.0.1 password=pw-Unit-77 port",                // keyword without =
      "host=127.0.0.1 password='pw-Unit-77",                    // unterminated quote
      "host=127.0.0.1 password=pw-Unit-77 colour=blue",         // libpq: invalid connection option
      "postgres://app:pw-Unit-77@127.0.0.1:1/app?colour=blue",  // the same in a URI
  };
  for (const auto& text : bad) {
    CAPTURE(text);
    auto e = connect_error(text);
    CHECK(e.code() == infra::errc::invalid_url);
    CHECK(e.backend() == "postgres");
    CHECK(std::string(e.what()).find("pw-Unit-77") == std::string::npos);
  }
}

TEST_CASE("postgres reads URIs as libpq does", "[postgres]") {
  auto c = detail::parse_connection_string(
      "postgresql://us%40er:p%40ss%2Fw@db.example:6543/my%20db?sslmode=disable&application_name=x");
  CHECK(c.is_url);
  CHECK(c.value("user") == "us@er");
  CHECK(c.value("password") == "p@ss/w");
  CHECK(c.value("port") == "6543");
  CHECK(c.value("dbname") == "my db");
  CHECK(c.has("sslmode"));
  CHECK(c.has("application_name"));
  CHECK_FALSE(c.has("connect_timeout"));
  // Both the decoded and the written form of the password are redacted.
  CHECK_THAT(c.secrets, Catch::Matchers::VectorContains(std::string("p@ss/w")));
  CHECK_THAT(c.secrets, Catch::Matchers::VectorContains(std::string("p%40ss%2Fw")));
  CHECK(detail::describe(c) == "postgresql://us%40er@db.example:6543/my%20db");

  auto multi = detail::parse_connection_string("postgres://u:pw@h1:5432,[::1]:5433/db");
  CHECK(multi.value("host") == "h1,::1");
  CHECK(multi.value("port") == "5432,5433");
  CHECK(detail::describe(multi) == "postgres://u@h1:5432,[::1]:5433/db");

  auto bare = detail::parse_connection_string("postgres://");
  CHECK(bare.is_url);
  CHECK(bare.secrets.empty());
  CHECK(detail::describe(bare) == "postgres:///");

  auto query_password = detail::parse_connection_string("postgres://h/db?password=q%21pw");
  CHECK(query_password.value("password") == "q!pw");
  CHECK_THAT(query_password.secrets, Catch::Matchers::VectorContains(std::string("q!pw")));
  CHECK_THAT(query_password.secrets, Catch::Matchers::VectorContains(std::string("q%21pw")));
}

TEST_CASE("postgres reads keyword value conninfo as libpq does", "[postgres]") {
  auto c = detail::parse_connection_string(
      "host=10.0.0.5 port = 5433 user=app dbname='my db' password='it\\'s s\\\\ecret'");
  CHECK_FALSE(c.is_url);
  CHECK(c.value("host") == "10.0.0.5");
  CHECK(c.value("port") == "5433");
  CHECK(c.value("user") == "app");
  CHECK(c.value("dbname") == "my db");
  CHECK(c.value("password") == "it's s\\ecret");
  CHECK_THAT(c.secrets, Catch::Matchers::VectorContains(std::string("it's s\\ecret")));
  CHECK_THAT(c.secrets, Catch::Matchers::VectorContains(std::string("'it\\'s s\\\\ecret'")));
  CHECK(detail::describe(c) == "postgres://app@10.0.0.5:5433/my%20db");

  auto hostaddr = detail::parse_connection_string("hostaddr=127.0.0.1 dbname=x");
  CHECK(detail::describe(hostaddr) == "postgres://127.0.0.1/x");

  auto one_port = detail::parse_connection_string("host=a,b port=6000");
  CHECK(detail::describe(one_port) == "postgres://a:6000,b:6000/");

  auto socket = detail::parse_connection_string("host=/var/run/postgresql dbname=x");
  CHECK(detail::describe(socket) == "postgres://%2Fvar%2Frun%2Fpostgresql/x");

  auto empty = detail::parse_connection_string("");
  CHECK(empty.params.empty());
  CHECK(detail::describe(empty) == "postgres:///");
}

namespace {

using pairs = std::vector<std::pair<std::string, std::string>>;

// What libpq reads in the string the adapter hands it.
pairs libpq_reading(const std::string& libpq_string) {
  return detail::parse_connection_string(libpq_string).params;
}

// The user's pairs plus the given additions, in libpq's keyword order.
pairs expected_reading(const std::string& user_text, const pairs& added) {
  auto all = detail::parse_connection_string(user_text).params;
  for (const auto& a : added) all.push_back(a);
  std::string text;
  for (const auto& [k, v] : all) text += k + "=" + detail::quote_conninfo_value(v) + " ";
  return detail::parse_connection_string(text).params;
}

}  // namespace

TEST_CASE("postgres adds connect_timeout and application_name unless the string sets them",
          "[postgres]") {
  auto kv = detail::parse_connection_string("host=h user=u");
  CHECK(detail::with_defaults(kv, 10, "kysera-infra") ==
        "user='u' host='h' connect_timeout='10' application_name='kysera-infra'");
  CHECK(detail::with_defaults(kv, 3, "it's") ==
        "user='u' host='h' connect_timeout='3' application_name='it\\'s'");
  CHECK(detail::with_defaults(kv, 3, "") == "user='u' host='h' connect_timeout='3'");

  const std::string set = "host=h connect_timeout=2 application_name=mine";
  CHECK(libpq_reading(detail::with_defaults(detail::parse_connection_string(set), 10, "kysera")) ==
        detail::parse_connection_string(set).params);

  const std::string url = "postgres://u@h/db";
  CHECK(libpq_reading(detail::with_defaults(detail::parse_connection_string(url), 10,
                                            "kysera infra")) ==
        expected_reading(url, {{"connect_timeout", "10"}, {"application_name", "kysera infra"}}));
  const std::string url_set = "postgres://u@h/db?connect_timeout=1&application_name=x";
  CHECK(libpq_reading(detail::with_defaults(detail::parse_connection_string(url_set), 10,
                                            "kysera-infra")) ==
        detail::parse_connection_string(url_set).params);
}

TEST_CASE("postgres additions never change what the user's string means to libpq",
          "[postgres][regression]") {
  // Each of these once made the appended connect_timeout part of the user's last value (so no
  // connect timeout applied), or made the string one libpq rejects.
  for (std::string text : {
           "dbname=app password=",      // empty last value took "connect_timeout='N'"
           "host=db port=",             // the same for the port
           "password=abcd\\",           // a trailing backslash escaped the added space
           "host=h password='a b'\t",   // trailing whitespace
           "postgres://u:12?a=secretpw@h/db",  // '?' before '@': libpq's credentials, not a query
           "postgres://u?password=ottb?",      // a query ending in '?'
           "postgres://u@h/db?",               // an empty query
           "postgres://h/db#frag",             // libpq has no fragments: part of the dbname
       }) {
    CAPTURE(text);
    auto c = detail::parse_connection_string(text);
    const std::string handed = detail::with_defaults(c, 7, "kysera-infra");
    CHECK(libpq_reading(handed) ==
          expected_reading(text, {{"connect_timeout", "7"}, {"application_name", "kysera-infra"}}));
  }
  // What libpq uses is what the adapter redacts.
  auto backslash = detail::parse_connection_string("password=abcd\\");
  CHECK(backslash.value("password") == "abcd");
  CHECK_THAT(backslash.secrets, Catch::Matchers::VectorContains(std::string("abcd")));
  auto question = detail::parse_connection_string("postgres://u:12?a=secretpw@h/db");
  CHECK(question.value("user") == "u");
  CHECK(question.value("password") == "12?a=secretpw");
  CHECK(question.value("dbname") == "db");
  CHECK(detail::describe(question) == "postgres://u@h/db");
  CHECK_THAT(question.secrets, Catch::Matchers::VectorContains(std::string("12?a=secretpw")));
}

TEST_CASE("postgres redacts every password a string holds, the one libpq uses included",
          "[postgres][regression]") {
  for (std::string text : {"password=secret password=secretpass",
                           "postgres://u:secret@h/db?password=secretpass",
                           "password=secretpass password=secret"}) {
    CAPTURE(text);
    auto c = detail::parse_connection_string(text);
    std::string message = detail::error_message("auth failed for secretpass and secret",
                                                infra::errc::authentication_failed,
                                                detail::phase::connect, detail::describe(c),
                                                c.secrets);
    CAPTURE(message);
    CHECK(message.find("secret") == std::string::npos);
    CHECK(message.find("pass") == std::string::npos);
  }
}

TEST_CASE("postgres connect_timeout is rounded up to whole seconds", "[postgres]") {
  CHECK(detail::whole_seconds(1ms) == 1);
  CHECK(detail::whole_seconds(1000ms) == 1);
  CHECK(detail::whole_seconds(1500ms) == 2);
  CHECK(detail::whole_seconds(10s) == 10);
}

TEST_CASE("postgres maps SQLSTATEs onto errc", "[postgres]") {
  using detail::phase;
  using infra::errc;
  struct row {
    const char* sqlstate;
    const char* message;
    errc expected;
  };
  const std::vector<row> rows{
      {"08001", "", errc::connection_refused},
      {"08004", "", errc::connection_refused},
      {"08006", "", errc::connection_lost},
      {"08003", "", errc::connection_lost},
      {"08007", "", errc::outcome_unknown},
      {"40003", "", errc::outcome_unknown},
      {"57P01", "terminating connection due to administrator command", errc::connection_lost},
      {"57P02", "", errc::connection_lost},
      {"57P03", "the database system is starting up", errc::connection_refused},
      {"53300", "sorry, too many clients already", errc::too_many_connections},
      {"28P01", "password authentication failed", errc::authentication_failed},
      {"28000", "no pg_hba.conf entry", errc::authentication_failed},
      {"40001", "could not serialize access", errc::serialization_failure},
      {"40P01", "deadlock detected", errc::deadlock},
      {"55P03", "canceling statement due to lock timeout", errc::lock_timeout},
      {"57014", "canceling statement due to statement timeout", errc::timeout},
      {"57014", "canceling statement due to user request", errc::cancelled},
      {"23505", "duplicate key value", errc::constraint_violation},
      {"23503", "violates foreign key constraint", errc::constraint_violation},
      {"23502", "null value in column", errc::constraint_violation},
      {"42601", "syntax error", errc::query_failed},
      {"42P01", "relation does not exist", errc::query_failed},
      {"22012", "division by zero", errc::query_failed},
      {"P0001", "raised by a function", errc::query_failed},
      {"XX000", "internal error", errc::backend_error},
      {"53100", "disk full", errc::backend_error},
  };
  for (const auto& r : rows) {
    CAPTURE(r.sqlstate, r.message);
    CHECK(detail::errc_for_sqlstate(r.sqlstate, r.message, phase::statement) == r.expected);
  }
  // A session lost during COMMIT leaves the outcome unknown.
  CHECK(detail::errc_for_sqlstate("57P01", "", phase::commit) == errc::outcome_unknown);
  CHECK(detail::errc_for_sqlstate("08006", "", phase::commit) == errc::outcome_unknown);
  // ...but a COMMIT the server refused did not commit.
  CHECK(detail::errc_for_sqlstate("40001", "", phase::commit) == errc::serialization_failure);
}

TEST_CASE("postgres classifies connect failures by libpq message", "[postgres]") {
  using infra::errc;
  struct row {
    const char* message;
    errc expected;
    const char* sqlstate;
  };
  const std::vector<row> rows{
      {"connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the server "
       "running on that host and accepting TCP/IP connections?\n",
       errc::connection_refused, "08001"},
      {"could not connect to server: Connection refused", errc::connection_refused, "08001"},
      {"connection to server at \"127.0.0.1\", port 5432 failed: FATAL:  password authentication "
       "failed for user \"postgres\"",
       errc::authentication_failed, "28P01"},
      {"fe_sendauth: no password supplied", errc::authentication_failed, "28P01"},
      {"FATAL:  no pg_hba.conf entry for host \"10.0.0.1\"", errc::authentication_failed, "28000"},
      {"FATAL:  role \"nobody\" does not exist", errc::authentication_failed, "28000"},
      {"timeout expired", errc::timeout, "08001"},
      {"FATAL:  sorry, too many clients already", errc::too_many_connections, "53300"},
      {"FATAL:  too many connections for role \"limited\"", errc::too_many_connections, "53300"},
      {"FATAL:  remaining connection slots are reserved for non-replication superuser connections",
       errc::too_many_connections, "53300"},
      {"FATAL:  the database system is starting up", errc::connection_refused, "57P03"},
      {"FATAL:  the database system is shutting down", errc::connection_refused, "57P03"},
      {"could not translate host name \"nowhere.invalid\" to address", errc::connection_refused,
       "08001"},
      {"invalid connection option \"colour\"", errc::invalid_url, ""},
      {"FATAL:  database \"nope\" does not exist", errc::database_not_found, "3D000"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.message);
    auto c = detail::classify_connect_message(r.message);
    CHECK(c.code == r.expected);
    CHECK(c.sqlstate == r.sqlstate);
  }
}

TEST_CASE("postgres translates libpqxx exceptions into database_error", "[postgres]") {
  using detail::phase;
  using infra::errc;

  auto e = translated(
      std::make_exception_ptr(pqxx::sql_error("ERROR:  deadlock detected\n", "update t", "40P01")),
      phase::statement);
  CHECK(e.code() == errc::deadlock);
  CHECK(e.sqlstate() == "40P01");
  CHECK(e.backend() == "postgres");
  CHECK(e.native_code() == 0);
  CHECK_THAT(e.what(), Catch::Matchers::StartsWith("postgres: ERROR: deadlock detected"));

  auto lost = translated(
      std::make_exception_ptr(pqxx::broken_connection("server closed the connection unexpectedly")),
      phase::statement, false);
  CHECK(lost.code() == errc::connection_lost);
  CHECK_THAT(lost.what(), Catch::Matchers::Contains("postgres://app@127.0.0.1:5432/app"));

  auto in_commit =
      translated(std::make_exception_ptr(pqxx::broken_connection("lost")), phase::commit, false);
  CHECK(in_commit.code() == errc::outcome_unknown);

  auto doubt = translated(
      std::make_exception_ptr(pqxx::in_doubt_error("WARNING: Connection lost while committing")),
      phase::commit, false);
  CHECK(doubt.code() == errc::outcome_unknown);

  auto refused =
      translated(std::make_exception_ptr(pqxx::broken_connection(
                     "connection to server at \"127.0.0.1\", port 1 failed: Connection refused")),
                 phase::connect, false);
  CHECK(refused.code() == errc::connection_refused);
  CHECK(refused.sqlstate() == "08001");
  CHECK_THAT(refused.what(),
             Catch::Matchers::Contains("(connecting to postgres://app@127.0.0.1:5432/app)"));

  auto too_many = translated(std::make_exception_ptr(pqxx::too_many_connections(
                                 "FATAL:  sorry, too many clients already")),
                             phase::connect, false);
  CHECK(too_many.code() == errc::too_many_connections);
  CHECK(too_many.sqlstate() == "53300");

  // An error whose session is gone afterwards is a lost session, whatever the SQLSTATE said.
  auto shutdown =
      translated(std::make_exception_ptr(pqxx::sql_error("FATAL: terminating", "", "57P01")),
                 phase::statement, false);
  CHECK(shutdown.code() == errc::connection_lost);
  CHECK(shutdown.sqlstate() == "57P01");

  auto other = translated(std::make_exception_ptr(std::runtime_error("boom")), phase::statement);
  CHECK(other.code() == errc::backend_error);

  auto ours =
      translated(std::make_exception_ptr(infra::database_error(errc::closed, "closed", "postgres")),
                 phase::statement);
  CHECK(ours.code() == errc::closed);

#if KYSERA_INFRA_PQXX_MAJOR < 7
  // libpqxx 6 drops the SQLSTATE of these; the type tells it.
  auto serialization =
      translated(std::make_exception_ptr(pqxx::serialization_failure("could not serialize")),
                 phase::statement);
  CHECK(serialization.code() == errc::serialization_failure);
  CHECK(serialization.sqlstate() == "40001");
  auto deadlock = translated(std::make_exception_ptr(pqxx::deadlock_detected("deadlock detected")),
                             phase::statement);
  CHECK(deadlock.code() == errc::deadlock);
  CHECK(deadlock.sqlstate() == "40P01");
  auto completion = translated(
      std::make_exception_ptr(pqxx::statement_completion_unknown("unknown")), phase::statement);
  CHECK(completion.code() == errc::outcome_unknown);
  CHECK(completion.sqlstate() == "40003");
#endif
}

TEST_CASE("postgres error messages never contain the password", "[postgres]") {
  const std::vector<std::string> secrets{"pw-Unit-77", "pw%2DUnit"};
  auto e = detail::translate(std::make_exception_ptr(pqxx::broken_connection(
                                 "could not connect with password=pw-Unit-77 (pw%2DUnit)")),
                             detail::phase::connect, false, "postgres://app@h/db", secrets);
  std::string text = e.what();
  CHECK(text.find("pw-Unit-77") == std::string::npos);
  CHECK(text.find("pw%2DUnit") == std::string::npos);
  CHECK_THAT(text, Catch::Matchers::Contains("password=*** (***)"));

  // A password with a run of whitespace is redacted before the message is joined into one line.
  const std::vector<std::string> spaced{"two  spaces\tand tab"};
  auto s = detail::translate(
      std::make_exception_ptr(pqxx::sql_error("echo: two  spaces\tand tab\n", "", "42000")),
      detail::phase::statement, true, "postgres://app@h/db", spaced);
  CHECK(std::string(s.what()).find("spaces") == std::string::npos);
  CHECK_THAT(s.what(), Catch::Matchers::StartsWith("postgres: echo: ***"));
}

TEST_CASE("postgres error messages are single lines", "[postgres]") {
  CHECK(
      detail::one_line("ERROR:  relation \"x\" does not exist\nLINE 1: select * from x\n\t ^\n") ==
      "ERROR: relation \"x\" does not exist LINE 1: select * from x ^");
  CHECK(detail::one_line("") == "");
}

TEST_CASE("postgres joins libpq's continuation lines into sentences", "[postgres]") {
  // libpq 14+ and libpq 13: the hint starts a new sentence; a wrapped line (TCP/IP) does not.
  CHECK(detail::one_line("connection to server at \"127.0.0.1\", port 1 failed: Connection "
                         "refused\n\tIs the server running on that host and accepting TCP/IP "
                         "connections?\n") ==
        "connection to server at \"127.0.0.1\", port 1 failed: Connection refused. Is the server "
        "running on that host and accepting TCP/IP connections?");
  CHECK(detail::one_line("could not connect to server: Connection refused\n\tIs the server "
                         "running on host \"h\" and accepting\n\tTCP/IP connections on port 1?\n") ==
        "could not connect to server: Connection refused. Is the server running on host \"h\" and "
        "accepting TCP/IP connections on port 1?");
  // Already punctuated, or a new line that starts in lower case: only a space.
  CHECK(detail::one_line("first?\nconnection to server at \"b\" failed") ==
        "first? connection to server at \"b\" failed");
  CHECK(detail::one_line("FATAL:  no pg_hba.conf entry\nDETAIL:  x") ==
        "FATAL: no pg_hba.conf entry DETAIL: x");
  CHECK(detail::one_line("a b\tCapital") == "a b Capital");  // no line break, no full stop
}

TEST_CASE("postgres messages: one sentence each, no errc name appended", "[postgres]") {
  using infra::errc;
  const std::vector<std::string> none;
  auto refused = detail::make_error(
      {detail::phase::connect, detail::failure_kind::broken_connection, "",
       "connection to server at \"127.0.0.1\", port 1 failed: Connection refused\n\tIs the "
       "server running on that host and accepting TCP/IP connections?\n",
       false},
      "postgres://app@127.0.0.1:1/app", none);
  CHECK(std::string(refused.what()) ==
        "postgres: connection to server at \"127.0.0.1\", port 1 failed: Connection refused. Is "
        "the server running on that host and accepting TCP/IP connections? (connecting to "
        "postgres://app@127.0.0.1:1/app)");
  // libpqxx 6's text for a session the server closed says what happened instead.
  auto lost = detail::make_error({detail::phase::statement, detail::failure_kind::broken_connection,
                                  "", "Could not obtain client encoding: not connected.", false},
                                 "postgres://app@h:5432/app", none);
  CHECK(lost.code() == errc::connection_lost);
  CHECK(std::string(lost.what()) ==
        "postgres: the server closed the connection (it shut down or restarted, or the session was "
        "terminated) (session to postgres://app@h:5432/app)");
  auto missing = detail::make_error(
      {detail::phase::connect, detail::failure_kind::broken_connection, "",
       "connection to server at \"h\", port 5432 failed: FATAL:  database \"shop\" does not exist\n",
       false},
      "postgres://app@h:5432/shop", none);
  CHECK(missing.code() == errc::database_not_found);
  CHECK(missing.sqlstate() == "3D000");
  CHECK(std::string(missing.what()) ==
        "postgres: connection to server at \"h\", port 5432 failed: FATAL: database \"shop\" does "
        "not exist (connecting to postgres://app@h:5432/shop)");
  CHECK(detail::errc_for_sqlstate("3D000", "", detail::phase::statement) ==
        errc::database_not_found);
}

TEST_CASE("postgres refused connect throws connection_refused with a password-free message",
          "[postgres]") {
  pg::connection_options o;
  o.connect_timeout = 2s;
  try {
    pg::connection c(refused_url, o);
    FAIL("connected to port 1");
  } catch (const infra::database_error& e) {
    CHECK(e.code() == infra::errc::connection_refused);
    CHECK(e.backend() == "postgres");
    std::string text = e.what();
    CHECK(text.find("pw-Unit-77") == std::string::npos);
    CHECK_THAT(text, Catch::Matchers::Contains("postgres://app@127.0.0.1:1/app"));
  }
}

TEST_CASE("postgres conninfo syntax errors give a position and never quote the text",
          "[postgres]") {
  struct row {
    const char* label;
    std::string text;
    const char* where;  // what the message must say instead of quoting
  };
  const std::vector<row> rows{
      {"URI without a scheme", "app:pw-Unit-77@127.0.0.1:5432/app", "at byte 0"},
      {"URI with only //", "//app:pw-Unit-77@127.0.0.1:5432/app", "at byte 0"},
      {"password with a space", "host=h password=pw-Unit-77 Tail-9c1", "at byte 27"},
      {"password with a space and =", "host=h password=pw-Unit Tail-9c1=x", "at byte 24"},
      {"unterminated quote", "host=h password='pw-Unit-77", "at byte 16"},
      {"empty keyword", "host=h =pw-Unit-77", "at byte 7"},
  };
  for (const auto& r : rows) {
    CAPTURE(r.label);
    try {
      (void)detail::parse_connection_string(r.text);
      FAIL("parsed");
    } catch (const infra::database_error& e) {
      std::string text = e.what();
      CAPTURE(text);
      CHECK(e.code() == infra::errc::invalid_url);
      CHECK(text.find("pw-Unit") == std::string::npos);
      CHECK(text.find("Tail-9c1") == std::string::npos);
      CHECK(text.find("app:") == std::string::npos);
      CHECK_THAT(text, Catch::Matchers::Contains(r.where));
    }
  }
  // The first word without "=" hints that the string was not read as a URI.
  try {
    (void)detail::parse_connection_string("app:pw-Unit-77@h/db");
    FAIL("parsed");
  } catch (const infra::database_error& e) {
    CHECK_THAT(e.what(), Catch::Matchers::Contains("postgres://"));
  }
  // libpq decides which keywords exist (they are case-sensitive); the message names the place.
  CHECK(detail::parse_connection_string("host=h sslmode=disable").params.size() == 2);
  for (std::string text : {"Host=h", "host=h pw-Unit=1"}) {
    CAPTURE(text);
    try {
      (void)detail::parse_connection_string(text);
      FAIL("parsed");
    } catch (const infra::database_error& e) {
      CHECK(e.code() == infra::errc::invalid_url);
      CHECK(std::string(e.what()).find("pw-Unit") == std::string::npos);
    }
  }
  CHECK_THROWS_WITH(detail::parse_connection_string("host=h gss_1=x"),
                    Catch::Matchers::Contains("unknown keyword at byte 7"));
}

TEST_CASE("postgres URI with empty IPv6 brackets is rejected while parsing", "[postgres]") {
  for (std::string text : {"postgres://u:pw-Unit-77@[]:1/app", "postgres://u:pw-Unit-77@[]/app",
                           "postgres://u:pw-Unit-77@h:1,[]:2/app"}) {
    CAPTURE(text);
    try {
      (void)detail::parse_connection_string(text);
      FAIL("parsed");
    } catch (const infra::database_error& e) {
      CHECK(e.code() == infra::errc::invalid_url);
      CHECK(std::string(e.what()).find("pw-Unit-77") == std::string::npos);
    }
  }
  CHECK(detail::parse_connection_string("postgres://u@[::1]:1/app").value("host") == "::1");
}

TEST_CASE("postgres classifies libpq option checks as invalid_url", "[postgres]") {
  for (const char* message : {
           "invalid sslmode value: \"sometimes\"",
           "invalid target_session_attrs value: \"whichever\"",
           "invalid channel_binding value: \"maybe\"",
           "invalid gssencmode value: \"perhaps\"",
           "invalid load_balance_hosts value: \"x\"",
           "IPv6 host address may not be empty in URI: \"postgres://u@[]:1/app\"",
           "end of string reached when looking for matching \"]\" in IPv6 host address in URI: "
           "\"postgres://[::1\"",
           "unexpected character \"x\" at position 12 in URI (expected \":\" or \"/\"): \"...\"",
           "could not match 2 port numbers to 3 hosts",
           "could not match 1 host names to 2 hostaddr values",
           "invalid value \"TLSv9\" for minimum SSL protocol version",
           "invalid SSL protocol version range",
       }) {
    CAPTURE(message);
    CHECK(detail::classify_connect_message(message).code == infra::errc::invalid_url);
  }
  // A server's complaint about a session parameter is not libpq's option check.
  CHECK_FALSE(detail::is_invalid_option_value(
      "FATAL:  invalid value for parameter \"TimeZone\": \"Mars/Base\""));
  CHECK_FALSE(detail::is_invalid_option_value("invalid  value: \"x\""));
}

TEST_CASE("postgres whole_seconds never overflows", "[postgres]") {
  using ms = std::chrono::milliseconds;
  CHECK(detail::whole_seconds(ms::max()) == ms::max().count() / 1000 + 1);
  CHECK(detail::whole_seconds(ms(3'000'000'000'000LL)) == 3'000'000'000LL);
  CHECK(detail::whole_seconds(ms(999)) == 1);
  CHECK(detail::whole_seconds(ms(0)) == 0);
}

TEST_CASE("postgres timeouts beyond the int range of libpq and the server are rejected",
          "[postgres]") {
  pg::connection_options o;
  for (auto too_long :
       {std::chrono::milliseconds::max(), std::chrono::milliseconds(3'000'000'000'000LL),
        std::chrono::milliseconds(2'147'483'647'001LL)}) {
    o = {};
    o.connect_timeout = too_long;
    CHECK_THAT(invalid_argument_text([&] { pg::connection c(refused_url, o); }),
               Catch::Matchers::Contains("connect_timeout"));
  }
  for (auto too_long :
       {std::chrono::milliseconds::max(), std::chrono::milliseconds(2147483648LL)}) {
    o = {};
    o.statement_timeout = too_long;
    CHECK_THAT(invalid_argument_text([&] { pg::connection c(refused_url, o); }),
               Catch::Matchers::Contains("statement_timeout"));
  }
  // The largest values are accepted: the connect gets as far as the closed port.
  o = {};
  o.connect_timeout = std::chrono::seconds(2147483647);
  o.statement_timeout = std::chrono::milliseconds(2147483647);
  try {
    pg::connection c(refused_url, o);
    FAIL("connected to port 1");
  } catch (const infra::database_error& e) {
    CHECK(e.code() == infra::errc::connection_refused);
  }
}

#endif  // KYSERA_INFRA_HAS_POSTGRES
