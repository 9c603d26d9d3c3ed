// The bad-input catalogue, part 1 (no server needed): malformed connection strings of every
// adapter (PostgreSQL and MySQL strings that get past parsing point at port 1, where nothing
// listens), every invalid option of every module, malformed periods and signal lists, SQLite SQL
// text that is empty, huge or holds NUL bytes, and calling things after close(). Each case must
// give a clear exception or its documented result: never a crash, a hang or a password in a
// message. The PostgreSQL and MySQL statement cases are in bad_input_it.cpp.

#include "support/catch.hpp"
#include "support/fake_database.hpp"

#include <kysera/infra.hpp>

#include <cmath>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "support_reliability.hpp"

namespace infra = kysera::infra;
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace std::string_view_literals;
using kysera::test::reliability::capture;
using kysera::test::reliability::outcome;
using kysera::test::reliability::run_bounded;
using kysera::test::reliability::scoped_env;

namespace {

constexpr std::string_view pw = "S3cr3t-Pw-4bad";  // the password inside every bad string below

struct bad_string {
  const char* label;
  std::string text;
};

/// Every case must throw database_error(errc::invalid_url) whose message holds no password.
template <class Open>
void require_all_invalid_url(const std::vector<bad_string>& cases, Open open) {
  for (const auto& c : cases) {
    outcome o = capture([&] { open(c.text); });
    INFO("case '" << c.label << "': " << o.describe());
    CHECK(o.is(infra::errc::invalid_url));
    CHECK(o.message.find(pw) == std::string::npos);
    CHECK(o.message.find(kysera::test::reliability::percent_encode(pw)) == std::string::npos);
  }
}

std::string with_nul(std::string_view before, std::string_view after) {
  std::string s(before);
  s.push_back('\0');
  s.append(after);
  return s;
}

/// A fresh directory under the system temp dir, removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string templ = (fs::temp_directory_path() / "kysera-rel-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path = templ;
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const char* name) const { return (path / name).string(); }
};

#if defined(KYSERA_INFRA_HAS_SQLITE)
std::unique_ptr<infra::sqlite::connection> memory_db() {
  return std::make_unique<infra::sqlite::connection>(":memory:");
}
#endif

}  // namespace

// ---------------------------------------------------------------------------------------------
// Connection strings
// ---------------------------------------------------------------------------------------------

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres malformed URLs throw invalid_url without the password", "[reliability][postgres]") {
  const std::string p(pw);
  std::vector<bad_string> cases = {
      {"port 0", "postgres://app:" + p + "@127.0.0.1:0/app"},
      {"port 70000", "postgres://app:" + p + "@127.0.0.1:70000/app"},
      {"port with letters", "postgres://app:" + p + "@127.0.0.1:54x2/app"},
      {"empty port", "postgres://app:" + p + "@127.0.0.1:/app"},
      {"second host bad port", "postgres://app:" + p + "@127.0.0.1:1,127.0.0.2:99999/app"},
      {"bad %-escape in password", "postgres://app:" + p + "%zz@127.0.0.1:1/app"},
      {"truncated %-escape", "postgres://app:" + p + "@127.0.0.1:1/app%4"},
      {"bad %-escape in a parameter", "postgres://app:" + p + "@127.0.0.1:1/app?sslmode=%G1"},
      {"%00 in the password", "postgres://app:" + p + "%00x@127.0.0.1:1/app"},
      {"unterminated [IPv6]", "postgres://app:" + p + "@[::1:1/app"},
      {"junk after [IPv6]", "postgres://app:" + p + "@[::1]x:1/app"},
      {"NUL byte inside", with_nul("postgres://app:" + p + "@127.0.0.1:1/ap", "p")},
      {"parameter without =", "postgres://app:" + p + "@127.0.0.1:1/app?sslmode"},
      {"empty parameter name", "postgres://app:" + p + "@127.0.0.1:1/app?=x"},
      {"unknown parameter", "postgres://app:" + p + "@127.0.0.1:1/app?no_such_option=1"},
      {"non-numeric connect_timeout", "postgres://app:" + p + "@127.0.0.1:1/app?connect_timeout=abc"},
      {"another scheme", "mysql://app:" + p + "@127.0.0.1:1/app"},
      {"http scheme", "http://app:" + p + "@127.0.0.1:1/app"},
  };
  require_all_invalid_url(cases, [](const std::string& s) { infra::postgres::connection c(s); });
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres option values that libpq rejects are invalid_url", "[reliability][postgres]") {
  // libpq checks these values before it connects; a bad value is a malformed connection string,
  // not a refused connection.
  const std::string base = "postgres://app:" + std::string(pw) + "@127.0.0.1:1/app?";
  std::vector<bad_string> cases = {
      {"sslmode", base + "sslmode=sometimes"},
      {"target_session_attrs", base + "target_session_attrs=whichever"},
      {"channel_binding", base + "channel_binding=maybe"},
      {"gssencmode", base + "gssencmode=perhaps"},
      {"sslmode in conninfo", "host=127.0.0.1 port=1 sslmode=sometimes password=" + std::string(pw)},
  };
  require_all_invalid_url(cases, [](const std::string& s) { infra::postgres::connection c(s); });
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres URL with empty IPv6 brackets is invalid_url", "[reliability][postgres]") {
  // libpq rejects "[]" itself ("IPv6 host address may not be empty in URI"); that is a malformed
  // string, not a refused connection.
  outcome o = capture([] { infra::postgres::connection c("postgres://app:" + std::string(pw) + "@[]:1/app"); });
  INFO(o.describe());
  CHECK(o.is(infra::errc::invalid_url));
  CHECK(o.message.find(pw) == std::string::npos);
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres URL without a scheme does not quote the text", "[reliability][postgres]") {
  // Without "postgres://" the string is read as conninfo; the error must not echo it, because
  // it holds the password.
  for (std::string text : {"app:" + std::string(pw) + "@127.0.0.1:5432/app",
                           "//app:" + std::string(pw) + "@127.0.0.1:5432/app"}) {
    outcome o = capture([&] { infra::postgres::connection c(text); });
    INFO(o.describe());
    CHECK(o.is(infra::errc::invalid_url));
    CHECK(o.message.find(pw) == std::string::npos);
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres malformed conninfo throws invalid_url without the password", "[reliability][postgres]") {
  const std::string p(pw);
  std::vector<bad_string> cases = {
      {"unbalanced quote", "host=127.0.0.1 port=1 password='" + p},
      {"unbalanced quote after escape", "host=127.0.0.1 port=1 password='" + p + "\\'"},
      {"unknown keyword", "host=127.0.0.1 port=1 pasword=" + p},
      {"keyword without =", "host=127.0.0.1 port=1 password"},
      {"empty keyword", "host=127.0.0.1 port=1 =" + p},
      {"port 70000", "host=127.0.0.1 port=70000 password=" + p},
      {"port with letters", "host=127.0.0.1 port=abc password=" + p},
      {"NUL byte inside", with_nul("host=127.0.0.1 port=1 password=" + p, " dbname=x")},
  };
  require_all_invalid_url(cases, [](const std::string& s) { infra::postgres::connection c(s); });
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres conninfo with a stray word after the password does not quote it", "[reliability][postgres]") {
  // An unquoted password with a space: libpq would read "Tail-Fragment-9c1" as a keyword. The
  // second half of what the user meant as a password must not appear in the message either.
  outcome o = capture([] {
    infra::postgres::connection c("host=127.0.0.1 port=1 password=" + std::string(pw) + " Tail-Fragment-9c1");
  });
  INFO(o.describe());
  CHECK(o.is(infra::errc::invalid_url));
  CHECK(o.message.find("Tail-Fragment-9c1") == std::string::npos);
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres empty connection string means libpq defaults and the environment", "[reliability][postgres]") {
  // Documented: "" is valid conninfo (libpq defaults plus PG* variables); here they point at a
  // port where nothing listens, so the connect is refused, and PGPASSWORD is redacted.
  scoped_env host("PGHOST", "127.0.0.1");
  scoped_env port("PGPORT", "1");
  scoped_env password("PGPASSWORD", std::string(pw).c_str());
  outcome o = capture([] { infra::postgres::connection c(""); });
  INFO(o.describe());
  CHECK(o.is(infra::errc::connection_refused));
  CHECK(o.message.find(pw) == std::string::npos);
}
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres well-formed URL to a closed port is refused without the password", "[reliability][postgres]") {
  // The control case for the catalogue above: parsing accepts it, the connect fails.
  for (std::string text : {"postgres://app:" + std::string(pw) + "@127.0.0.1:1/app",
                           "postgresql://app:" + kysera::test::reliability::percent_encode("p@ss:/?#w%rd") +
                               "@127.0.0.1:1/app",
                           "host=127.0.0.1 port=1 user=app password='" + std::string(pw) + "'"}) {
    outcome o = capture([&] { infra::postgres::connection c(text); });
    INFO(o.describe());
    CHECK(o.is(infra::errc::connection_refused));
    CHECK(o.message.find(pw) == std::string::npos);
    CHECK(o.message.find("p@ss:/?#w%rd") == std::string::npos);
    CHECK(o.message.find("p%40ss") == std::string::npos);
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql malformed URLs throw invalid_url without the password", "[reliability][mysql]") {
  const std::string p(pw);
  std::vector<bad_string> cases = {
      {"empty string", ""},
      {"no scheme", "app:" + p + "@127.0.0.1:1/app"},
      {"scheme without //", "mysql:app:" + p + "@127.0.0.1:1/app"},
      {"another scheme", "postgres://app:" + p + "@127.0.0.1:1/app"},
      {"port 0", "mysql://app:" + p + "@127.0.0.1:0/app"},
      {"port 70000", "mysql://app:" + p + "@127.0.0.1:70000/app"},
      {"port with letters", "mysql://app:" + p + "@127.0.0.1:33o6/app"},
      {"empty port", "mysql://app:" + p + "@127.0.0.1:/app"},
      {"bad %-escape in password", "mysql://app:" + p + "%zz@127.0.0.1:1/app"},
      {"truncated %-escape", "mysql://app:" + p + "@127.0.0.1:1/app%4"},
      {"unterminated [IPv6]", "mysql://app:" + p + "@[::1:1/app"},
      {"junk after [IPv6]", "mysql://app:" + p + "@[::1]x/app"},
      {"NUL byte inside", with_nul("mysql://app:" + p + "@127.0.0.1:1/ap", "p")},
      {"unknown parameter", "mysql://app:" + p + "@127.0.0.1:1/app?ssl=true"},
      {"empty parameter name", "mysql://app:" + p + "@127.0.0.1:1/app?=1"},
      {"parameter not a number", "mysql://app:" + p + "@127.0.0.1:1/app?connect_timeout=abc"},
      {"negative parameter", "mysql://app:" + p + "@127.0.0.1:1/app?connect_timeout=-1"},
      {"zero connect_timeout", "mysql://app:" + p + "@127.0.0.1:1/app?connect_timeout=0"},
      {"huge parameter", "mysql://app:" + p + "@127.0.0.1:1/app?read_timeout=99999999999999"},
      {"parameter over a year", "mysql://app:" + p + "@127.0.0.1:1/app?read_timeout=999999999"},
      {"path with two segments", "mysql://app:" + p + "@127.0.0.1:1/app/extra"},
  };
  require_all_invalid_url(cases, [](const std::string& s) { infra::mysql::connection c(s); });
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql URL whose escapes decode to a NUL byte is invalid_url", "[reliability][mysql]") {
  // The client library takes C strings: a %00 would silently cut the user, password or database
  // name (and put a NUL into description()). It must be rejected like a literal NUL byte.
  const std::string p(pw);
  std::vector<bad_string> cases = {
      {"%00 in the user", "mysql://ap%00p:" + p + "@127.0.0.1:1/app"},
      {"%00 in the password", "mysql://app:" + p + "%00tail@127.0.0.1:1/app"},
      {"%00 in the database", "mysql://app:" + p + "@127.0.0.1:1/ap%00p"},
  };
  require_all_invalid_url(cases, [](const std::string& s) { infra::mysql::connection c(s); });
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql well-formed URL to a closed port is refused without the password", "[reliability][mysql]") {
  for (std::string text : {"mysql://app:" + std::string(pw) + "@127.0.0.1:1/app",
                           "mariadb://app:" + kysera::test::reliability::percent_encode("p@ss:/?#w%rd") +
                               "@127.0.0.1:1/app?connect_timeout=2"}) {
    outcome o = capture([&] { infra::mysql::connection c(text); });
    INFO(o.describe());
    CHECK(o.is(infra::errc::connection_refused));
    CHECK(o.message.find(pw) == std::string::npos);
    CHECK(o.message.find("p@ss:/?#w%rd") == std::string::npos);
    CHECK(o.message.find("p%40ss") == std::string::npos);
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("sqlite malformed connection strings throw invalid_url", "[reliability][sqlite]") {
  std::vector<bad_string> cases = {
      {"empty string", ""},
      {"NUL byte in a path", with_nul("/tmp/kysera-rel", ".db")},
      {"NUL byte in a URL", with_nul("sqlite:///tmp/kysera-rel", ".db")},
      {"%00 in a URL", "sqlite:///tmp/kysera-rel%00.db"},
      {"scheme only", "sqlite:"},
      {"no // after the scheme", "sqlite:relative.db"},
      {"no path after sqlite://", "sqlite://"},
      {"bad %-escape", "sqlite:///tmp/kysera-rel%zz.db"},
      {"truncated %-escape", "sqlite:///tmp/kysera-rel.db%4"},
      {"unknown parameter", "sqlite:///tmp/kysera-rel.db?cache=shared"},
      {"bad mode", "sqlite:///tmp/kysera-rel.db?mode=rwx"},
      {"mode without value", "sqlite:///tmp/kysera-rel.db?mode"},
      {"empty parameter name", "sqlite:///tmp/kysera-rel.db?=ro"},
  };
  require_all_invalid_url(cases, [](const std::string& s) { infra::sqlite::connection c(s); });
  CHECK_FALSE(fs::exists("/tmp/kysera-rel.db"));
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("sqlite file URI that SQLite rejects is invalid_url", "[reliability][sqlite]") {
  // "file:" URIs go to SQLite unchanged; one it cannot use is a bad connection string, not a
  // failed statement (errc::query_failed is for statements).
  temp_dir dir;
  for (std::string text : {"file:" + dir.file("a.db") + "?mode=bogus", "file:" + dir.file("a.db") + "?vfs=no-such-vfs",
                           "file://otherhost" + dir.file("a.db")}) {
    outcome o = capture([&] { infra::sqlite::connection c(text); });
    INFO(text << " -> " << o.describe());
    CHECK(o.is(infra::errc::invalid_url));
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("sqlite has no host or port so such URLs name relative paths", "[reliability][sqlite]") {
  // Documented: everything after sqlite:// is a path. These name directories that do not exist,
  // so opening is refused (SQLITE_CANTOPEN), and nothing is created.
  for (const char* text : {"sqlite://[::1/app.db", "sqlite://localhost:70000/app.db", "sqlite://host:0/app.db"}) {
    outcome o = capture([&] { infra::sqlite::connection c(text); });
    INFO(text << " -> " << o.describe());
    CHECK(o.is(infra::errc::connection_refused));
  }
  CHECK_FALSE(fs::exists("[::1"));
  CHECK_FALSE(fs::exists("localhost:70000"));
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("sqlite plain path in a missing directory is refused, a missing file without create is not found", "[reliability][sqlite]") {
  temp_dir dir;
  outcome o = capture([&] { infra::sqlite::connection c(dir.file("missing/app.db")); });
  INFO(o.describe());
  CHECK(o.is(infra::errc::connection_refused));
  outcome ro = capture([&] { infra::sqlite::connection c("sqlite://" + dir.file("absent.db") + "?mode=rw"); });
  INFO(ro.describe());
  CHECK(ro.is(infra::errc::database_not_found));
  CHECK_FALSE(fs::exists(dir.file("absent.db")));
}
#endif

// ---------------------------------------------------------------------------------------------
// Adapter options
// ---------------------------------------------------------------------------------------------

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres connection_options reject bad values before connecting", "[reliability][postgres]") {
  const std::string url = "postgres://app:" + std::string(pw) + "@127.0.0.1:1/app";
  auto open = [&](infra::postgres::connection_options o) { infra::postgres::connection c(url, std::move(o)); };
  KYSERA_INFRA_REQUIRE_INVALID("connect_timeout", open({.connect_timeout = 0ms}));
  KYSERA_INFRA_REQUIRE_INVALID("connect_timeout", open({.connect_timeout = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("statement_timeout", open({.statement_timeout = -1ms}));
  // PostgreSQL's statement_timeout is an int of milliseconds: a larger value makes every
  // (re)connect fail at "SET statement_timeout", so it must be refused up front.
  KYSERA_INFRA_REQUIRE_INVALID("statement_timeout", open({.statement_timeout = 3'000'000'000ms}));
  KYSERA_INFRA_REQUIRE_INVALID("statement_timeout", open({.statement_timeout = std::chrono::milliseconds::max()}));
  KYSERA_INFRA_REQUIRE_INVALID("application_name", open({.application_name = with_nul("app", "x")}));
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql connection_options reject bad values before connecting", "[reliability][mysql]") {
  const std::string url = "mysql://app:" + std::string(pw) + "@127.0.0.1:1/app";
  auto open = [&](infra::mysql::connection_options o) { infra::mysql::connection c(url, o); };
  KYSERA_INFRA_REQUIRE_INVALID("connect_timeout", open({.connect_timeout = 0ms}));
  KYSERA_INFRA_REQUIRE_INVALID("connect_timeout", open({.connect_timeout = -5ms}));
  KYSERA_INFRA_REQUIRE_INVALID("connect_timeout", open({.connect_timeout = std::chrono::hours(24 * 400)}));
  KYSERA_INFRA_REQUIRE_INVALID("read_timeout", open({.read_timeout = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("write_timeout", open({.write_timeout = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("cancel_timeout", open({.cancel_timeout = 0ms}));
  KYSERA_INFRA_REQUIRE_INVALID("cancel_timeout", open({.cancel_timeout = -1ms}));
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("sqlite connection_options reject bad values before opening", "[reliability][sqlite]") {
  temp_dir dir;
  const std::string path = dir.file("never.db");
  auto open = [&](infra::sqlite::connection_options o) { infra::sqlite::connection c(path, std::move(o)); };
  KYSERA_INFRA_REQUIRE_INVALID("connect_timeout", open({.connect_timeout = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("busy_timeout", open({.busy_timeout = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("journal_mode", open({.journal_mode = "bogus"}));
  KYSERA_INFRA_REQUIRE_INVALID("journal_mode", open({.journal_mode = "WAL; DROP TABLE t"}));
  KYSERA_INFRA_REQUIRE_INVALID("journal_mode", open({.journal_mode = ""}));
  KYSERA_INFRA_REQUIRE_INVALID("transaction_mode",
                               open({.transaction_mode = static_cast<infra::sqlite::transaction_mode>(42)}));
  CHECK_FALSE(fs::exists(path));
}
#endif

// ---------------------------------------------------------------------------------------------
// Module options
// ---------------------------------------------------------------------------------------------

TEST_CASE("retry_options reject bad values before fn runs", "[reliability][resilience]") {
  namespace res = infra::resilience;
  int calls = 0;
  auto fn = [&] { return ++calls; };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  KYSERA_INFRA_REQUIRE_INVALID("max_attempts", res::with_retry(fn, {.max_attempts = 0}));
  KYSERA_INFRA_REQUIRE_INVALID("max_attempts", res::with_retry(fn, {.max_attempts = -3}));
  KYSERA_INFRA_REQUIRE_INVALID("delay", res::with_retry(fn, {.delay = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("max_delay", res::with_retry(fn, {.delay = 100ms, .max_delay = 99ms}));
  KYSERA_INFRA_REQUIRE_INVALID("max_delay", res::with_retry(fn, {.max_delay = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("jitter", res::with_retry(fn, {.jitter = -0.01}));
  KYSERA_INFRA_REQUIRE_INVALID("jitter", res::with_retry(fn, {.jitter = 1.01}));
  KYSERA_INFRA_REQUIRE_INVALID("jitter", res::with_retry(fn, {.jitter = nan}));
  KYSERA_INFRA_REQUIRE_INVALID("jitter", res::with_retry(fn, {.jitter = inf}));
  // The wrapper checks its options once, when it is made.
  KYSERA_INFRA_REQUIRE_INVALID("max_attempts", (void)res::create_retry_wrapper(fn, {.max_attempts = 0}));
  KYSERA_INFRA_REQUIRE_INVALID("jitter", (void)res::create_retry_wrapper(fn, {.jitter = nan}));
  CHECK(calls == 0);

  // Boundaries are accepted.
  CHECK(res::with_retry(fn, {.max_attempts = 1, .delay = 0ms, .max_delay = 0ms, .jitter = 0.0}) == 1);
  CHECK(res::with_retry(fn, {.jitter = 1.0}) == 2);
}

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("with_transaction_retry rejects bad options before the transaction", "[reliability][resilience][sqlite]") {
  namespace res = infra::resilience;
  auto db = memory_db();
  int calls = 0;
  auto fn = [&](infra::sqlite::connection&) { ++calls; };
  KYSERA_INFRA_REQUIRE_INVALID("max_attempts", res::with_transaction_retry(*db, fn, res::transaction_retry_options{.max_attempts = 0}));
  KYSERA_INFRA_REQUIRE_INVALID("jitter", res::with_transaction_retry(*db, fn, res::transaction_retry_options{.jitter = 2.0}));
  KYSERA_INFRA_REQUIRE_INVALID("delay", res::with_transaction_retry(*db, fn, res::retry_options{.delay = -1ms}));
  CHECK(calls == 0);
}
#endif

TEST_CASE("circuit_breaker_options reject bad values", "[reliability][resilience]") {
  namespace res = infra::resilience;
  KYSERA_INFRA_REQUIRE_INVALID("threshold", res::circuit_breaker(res::circuit_breaker_options{.threshold = 0}));
  KYSERA_INFRA_REQUIRE_INVALID("threshold", res::circuit_breaker(res::circuit_breaker_options{.threshold = -1}));
  KYSERA_INFRA_REQUIRE_INVALID("reset_time",
                               res::circuit_breaker(res::circuit_breaker_options{.reset_time = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("threshold", res::circuit_breaker(0, 1000ms));
  KYSERA_INFRA_REQUIRE_INVALID("reset_time", res::circuit_breaker(3, -1ms));
  // reset_time 0 is allowed: the next call after opening is the probe.
  res::circuit_breaker zero(1, 0ms);
  CHECK(zero.is_closed());
}

#if defined(KYSERA_INFRA_HAS_SQLITE)  // its pools hold SQLite connections
TEST_CASE("pool_options reject bad values before any connection opens", "[reliability][pool]") {
  int opened = 0;
  auto factory = [&] {
    ++opened;
    return memory_db();
  };
  using pool_t = infra::pool::connection_pool<infra::sqlite::connection>;
  auto make = [&](infra::pool::pool_options o) { pool_t p(factory, o); };
  const double nan = std::numeric_limits<double>::quiet_NaN();
  KYSERA_INFRA_REQUIRE_INVALID("max_size", make({.max_size = 0}));
  KYSERA_INFRA_REQUIRE_INVALID("min_idle", make({.max_size = 2, .min_idle = 3}));
  KYSERA_INFRA_REQUIRE_INVALID("acquire_timeout", make({.acquire_timeout = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("idle_timeout", make({.idle_timeout = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("max_lifetime", make({.max_lifetime = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("validation_threshold", make({.validation_threshold = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("max_lifetime_jitter", make({.max_lifetime_jitter = -0.1}));
  KYSERA_INFRA_REQUIRE_INVALID("max_lifetime_jitter", make({.max_lifetime_jitter = 0.6}));
  KYSERA_INFRA_REQUIRE_INVALID("max_lifetime_jitter", make({.max_lifetime_jitter = nan}));
  KYSERA_INFRA_REQUIRE_INVALID("housekeeping_interval", make({.housekeeping_interval = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("factory", pool_t(pool_t::factory_type{}, {}));
  CHECK(opened == 0);

  pool_t pool(factory, {.max_size = 1, .housekeeping_interval = 0ms});
  KYSERA_INFRA_REQUIRE_INVALID("timeout", (void)pool.acquire(-1ms));
  CHECK(opened == 0);
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("health check options reject bad values", "[reliability][health][sqlite]") {
  namespace health = infra::health;
  auto db = memory_db();
  auto check = [&](health::health_check_options o) { (void)health::perform_health_check(*db, o); };
  KYSERA_INFRA_REQUIRE_INVALID("timeout", check({.timeout = 0ms}));
  KYSERA_INFRA_REQUIRE_INVALID("timeout", check({.timeout = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("degraded_threshold", check({.degraded_threshold = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("unhealthy_threshold",
                               check({.degraded_threshold = 600ms, .unhealthy_threshold = 500ms}));
  KYSERA_INFRA_REQUIRE_INVALID("unhealthy_threshold", check({.unhealthy_threshold = -1ms}));
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("health_monitor options reject bad values", "[reliability][health][sqlite]") {
  namespace health = infra::health;
  auto db = memory_db();
  auto make = [&](health::health_monitor_options o) { health::health_monitor<infra::sqlite::connection> m(*db, o); };
  KYSERA_INFRA_REQUIRE_INVALID("interval", make({.interval = 0ms}));
  KYSERA_INFRA_REQUIRE_INVALID("interval", make({.interval = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("timeout", make({.timeout = 0ms}));
  KYSERA_INFRA_REQUIRE_INVALID("timeout", make({.timeout = -5ms}));
  KYSERA_INFRA_REQUIRE_INVALID("degraded_threshold", make({.degraded_threshold = -1ms}));
  KYSERA_INFRA_REQUIRE_INVALID("unhealthy_threshold",
                               make({.degraded_threshold = 600ms, .unhealthy_threshold = 500ms}));
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("debug_options and get_metrics options reject bad values", "[reliability][health][sqlite]") {
  namespace health = infra::health;
  auto db = memory_db();
  KYSERA_INFRA_REQUIRE_INVALID("max_metrics", (void)health::with_debug(*db, {.max_metrics = 0}));
  auto dbg = health::with_debug(*db);
  dbg.execute("SELECT 1");
  KYSERA_INFRA_REQUIRE_INVALID("slow_query_threshold", (void)health::get_metrics(dbg, {.slow_query_threshold = -1ms}));
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("get_metrics rejects periods that do not parse", "[reliability][health][sqlite]") {
  namespace health = infra::health;
  auto db = memory_db();
  auto dbg = health::with_debug(*db);
  dbg.execute("SELECT 1");
  const std::vector<std::string> bad = {
      "",      "abc",  "5x",   "-1h",   "1.5h", "99999999999999999999d", "999999999999999999d",
      "0s",    "0ms",  " 1h",  "1h ",   "1 h",  "+1h",                   "1H",
      "h",     "1hh",  "1h1m", "0x10s", "1e3s", with_nul("1", "h"),      with_nul("1h", ""),
      "٣h",  // Arabic-Indic digit three
  };
  for (const auto& period : bad) {
    INFO("period \"" << period << "\" (" << period.size() << " bytes)");
    KYSERA_INFRA_REQUIRE_INVALID("period", (void)health::get_metrics(dbg, {.period = period}));
  }
  // The accepted forms, for contrast.
  for (std::string period : {"500ms", "30s", "5m", "1h", "1d", "106751d"}) {
    INFO("period " << period);
    auto m = health::get_metrics(dbg, {.period = period});
    CHECK(m.period == period);
    REQUIRE(m.queries.has_value());
    CHECK(m.queries->total == 1);
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("graceful_shutdown rejects a timeout that is not positive before doing anything", "[reliability][shutdown][sqlite]") {
  namespace sd = infra::shutdown;
  auto db = memory_db();
  bool ran = false;
  KYSERA_INFRA_REQUIRE_INVALID("timeout", sd::graceful_shutdown(*db, {.timeout = 0ms, .on_shutdown = [&] { ran = true; }}));
  KYSERA_INFRA_REQUIRE_INVALID("timeout", sd::graceful_shutdown(*db, {.timeout = -1ms, .on_shutdown = [&] { ran = true; }}));
  CHECK_FALSE(ran);
  CHECK(db->is_open());
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("shutdown signal lists with invalid numbers are rejected", "[reliability][shutdown][sqlite]") {
  namespace sd = infra::shutdown;
  auto db = memory_db();
  const std::vector<std::vector<int>> bad = {
      {},         {0},       {-1},      {99999},   {NSIG},    {255},     {SIGTERM, 0},
      {SIGKILL},  {SIGSTOP}, {SIGSEGV}, {SIGBUS},  {SIGFPE},  {SIGILL},  {SIGABRT},
      {SIGTRAP},  {SIGSYS},  {std::numeric_limits<int>::min()}, {std::numeric_limits<int>::max()},
  };
  for (const auto& signals : bad) {
    std::string list;
    for (int s : signals) list += std::to_string(s) + " ";
    INFO("signals { " << list << "}");
    KYSERA_INFRA_REQUIRE_INVALID("signals", (void)sd::create_shutdown_controller(*db, {.on_shutdown = {}, .signals = signals}));
    KYSERA_INFRA_REQUIRE_INVALID("signals", sd::register_shutdown_handlers(*db, {.on_shutdown = {}, .signals = signals}));
  }
  KYSERA_INFRA_REQUIRE_INVALID("timeout", (void)sd::create_shutdown_controller(*db, {.timeout = 0ms, .on_shutdown = {}}));
  KYSERA_INFRA_REQUIRE_INVALID("timeout", sd::register_shutdown_handlers(*db, {.timeout = -1ms, .on_shutdown = {}}));

  // None of the rejected calls left a registration behind: a controller can still register,
  // and duplicates in a valid list are fine.
  auto controller = sd::create_shutdown_controller(*db, {.on_shutdown = {}, .signals = {SIGUSR2, SIGUSR2}});
  CHECK_NOTHROW(controller.register_signals());
  CHECK(db->is_open());
}
#endif

// ---------------------------------------------------------------------------------------------
// Extreme durations and sizes. Durations up to milliseconds::max() are honoured as "practically
// forever" (saturating, never an overflow that turns "wait forever" into "at once"), except where
// a driver cannot carry them (libpq's connect_timeout); sizes beyond a documented bound are
// rejected. Each case pins the one outcome the code documents.
// ---------------------------------------------------------------------------------------------

namespace {
constexpr auto forever = std::chrono::milliseconds::max();
constexpr std::chrono::milliseconds three_centuries = std::chrono::hours(24 * 365 * 300);
}  // namespace

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres connect_timeout too large for libpq is rejected", "[reliability][postgres]") {
  // libpq takes whole seconds in an int: a larger bound is std::invalid_argument naming the field
  // (before any connect), not an overflow into a bad conninfo.
  for (auto timeout : {forever, std::chrono::milliseconds(3'000'000'000'000LL)}) {
    outcome o = capture([&] {
      infra::postgres::connection c("postgres://app:" + std::string(pw) + "@127.0.0.1:1/app",
                                    {.connect_timeout = timeout});
    });
    INFO(timeout.count() << " ms -> " << o.describe());
    CHECK(o.what == outcome::kind::invalid_argument);
    CHECK(o.message.find("connect_timeout") != std::string::npos);
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("health check with a huge timeout is honoured", "[reliability][health][sqlite]") {
  auto db = memory_db();
  for (auto timeout : {forever, three_centuries}) {
    outcome o = capture([&] {
      auto r = infra::health::perform_health_check(*db, {.timeout = timeout});
      INFO("result: " << (r.checks.empty() ? std::string("no check") : r.checks[0].message));
      CHECK(r.status == infra::health::health_status::healthy);
    });
    INFO(timeout.count() << " ms -> " << o.describe());
    CHECK(o.what == outcome::kind::none);
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("health_monitor with a huge interval never rechecks early", "[reliability][health][sqlite]") {
  namespace health = infra::health;
  auto db = memory_db();
  auto quiet = infra::make_logger([](infra::log_level, std::string_view) {});
  for (auto interval : {forever, three_centuries}) {
    INFO("interval " << interval.count() << " ms");
    std::unique_ptr<health::health_monitor<infra::sqlite::connection>> monitor;
    outcome made = capture([&] {
      monitor = std::make_unique<health::health_monitor<infra::sqlite::connection>>(
          *db, health::health_monitor_options{.interval = interval, .logger = &quiet});
    });
    INFO(made.describe());
    REQUIRE_FALSE(made.threw());
    std::mutex mutex;
    std::condition_variable cv;
    int calls = 0;
    monitor->start([&](const health::health_check_result&) {
      std::lock_guard lock(mutex);
      ++calls;
      cv.notify_all();
    });
    {
      std::unique_lock lock(mutex);
      REQUIRE(cv.wait_for(lock, 20s, [&] { return calls > 0; }));
    }
    // The next check is due after the interval (or "never"), not in the past.
    auto next = monitor->next_check_time();
    REQUIRE(next.has_value());
    CHECK(*next > std::chrono::steady_clock::now() + std::chrono::hours(24 * 365));
    run_bounded("monitor stop", 10s, [&] { monitor->stop(); });
    CHECK(calls == 1);
  }
}
#endif

TEST_CASE("circuit breaker with a huge reset_time stays open", "[reliability][resilience]") {
  namespace res = infra::resilience;
  for (auto reset : {forever, three_centuries}) {
    INFO("reset_time " << reset.count() << " ms");
    std::unique_ptr<res::circuit_breaker> breaker;
    outcome made = capture([&] { breaker = std::make_unique<res::circuit_breaker>(1, reset); });
    INFO(made.describe());
    REQUIRE_FALSE(made.threw());
    (void)capture([&] { breaker->execute([] { throw std::runtime_error("down"); }); });
    CHECK(breaker->get_state().state == res::circuit_state::open);
    bool ran = false;
    outcome rejected = capture([&] { breaker->execute([&] { ran = true; }); });
    CHECK_FALSE(ran);
    CHECK(rejected.message.find("Circuit breaker is open") != std::string::npos);
  }
}

TEST_CASE("graceful shutdown with a huge timeout completes", "[reliability][shutdown]") {
  namespace sd = infra::shutdown;
  auto quiet = infra::make_logger([](infra::log_level, std::string_view) {});
  for (auto timeout : {forever, three_centuries}) {
    INFO("timeout " << timeout.count() << " ms");
    kysera::test::fake_database db;
    bool ran = false;
    outcome o = capture([&] {
      sd::graceful_shutdown(db, {.timeout = timeout, .on_shutdown = [&] { ran = true; }, .logger = &quiet});
    });
    INFO(o.describe());
    CHECK_FALSE(o.threw());
    CHECK(ran);
    CHECK(db.close_calls() == 1);

    kysera::test::fake_database db2;
    outcome c = capture([&] {
      auto controller = sd::create_shutdown_controller(db2, {.timeout = timeout, .on_shutdown = [] {}, .logger = &quiet});
      controller.execute();
    });
    INFO("controller: " << c.describe());
    CHECK_FALSE(c.threw());
    CHECK(db2.close_calls() == 1);
  }
}

#if defined(KYSERA_INFRA_HAS_SQLITE)  // its pools hold SQLite connections
TEST_CASE("pool with a huge housekeeping_interval stays idle", "[reliability][pool]") {
  // The housekeeper makes one pass at start (here: one failing attempt to open min_idle), then
  // waits the interval. An interval that overflows the wait must not turn into a busy loop that
  // hammers the server with connects.
  using pool_t = infra::pool::connection_pool<infra::sqlite::connection>;
  auto quiet = infra::make_logger([](infra::log_level, std::string_view) {});
  for (auto interval : {forever, three_centuries}) {
    INFO("housekeeping_interval " << interval.count() << " ms");
    std::mutex mutex;
    std::condition_variable cv;
    int attempts = 0;
    auto factory = [&]() -> std::unique_ptr<infra::sqlite::connection> {
      {
        std::lock_guard lock(mutex);
        ++attempts;
      }
      cv.notify_all();
      throw infra::database_error(infra::errc::connection_refused, "down", "test");
    };
    std::unique_ptr<pool_t> pool;
    outcome made = capture([&] {
      pool = std::make_unique<pool_t>(factory, infra::pool::pool_options{.max_size = 1, .min_idle = 1,
                                                                         .housekeeping_interval = interval,
                                                                         .logger = &quiet});
    });
    INFO(made.describe());
    REQUIRE_FALSE(made.threw());
    std::unique_lock lock(mutex);
    REQUIRE(cv.wait_for(lock, 20s, [&] { return attempts >= 1; }));
    // A correct housekeeper now sleeps for centuries; a broken one retries at once, thousands of
    // times a second. Three attempts within half a second can only come from the broken one.
    CHECK_FALSE(cv.wait_for(lock, 500ms, [&] { return attempts >= 3; }));
    lock.unlock();
    run_bounded("pool close", 10s, [&] { pool->close(); });
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)  // its pools hold SQLite connections
TEST_CASE("pool max_size above its bound is rejected", "[reliability][pool]") {
  // max_size is documented in [1, 1'000'000]: anything larger is std::invalid_argument naming it,
  // before any allocation.
  using pool_t = infra::pool::connection_pool<infra::sqlite::connection>;
  for (std::size_t size : {std::numeric_limits<std::size_t>::max(), std::size_t{1} << 63, std::size_t{1} << 58}) {
    outcome o = capture([&] { pool_t p([] { return memory_db(); }, {.max_size = size, .housekeeping_interval = 0ms}); });
    INFO("max_size " << size << " -> " << o.describe());
    CHECK(o.what == outcome::kind::invalid_argument);
    CHECK(o.message.find("max_size") != std::string::npos);
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("with_debug max_metrics above its bound is rejected", "[reliability][health][sqlite]") {
  // max_metrics is documented in [1, 10'000'000]: anything larger is std::invalid_argument
  // naming it, before the ring is allocated.
  auto db = memory_db();
  for (std::size_t size : {std::numeric_limits<std::size_t>::max(), std::size_t{1} << 63, std::size_t{10'000'001}}) {
    outcome o = capture([&] { (void)infra::health::with_debug(*db, {.max_metrics = size}); });
    INFO("max_metrics " << size << " -> " << o.describe());
    CHECK(o.what == outcome::kind::invalid_argument);
    CHECK(o.message.find("max_metrics") != std::string::npos);
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("huge durations that are honoured", "[reliability][resilience][pool][sqlite]") {
  // Values that mean "practically forever" and already work: the documented result.
  std::vector<std::chrono::milliseconds> sleeps;
  int attempts = 0;
  outcome o = capture([&] {
    infra::resilience::with_retry(
        [&] {
          ++attempts;
          throw infra::database_error(infra::errc::timeout, "slow");
        },
        {.max_attempts = 3, .delay = forever, .max_delay = forever, .sleep = [&](auto d) { sleeps.push_back(d); }});
  });
  CHECK(o.is(infra::errc::timeout));
  CHECK(attempts == 3);
  REQUIRE(sleeps.size() == 2);
  for (auto d : sleeps) {
    CHECK(d >= 0ms);
    CHECK(d <= forever);
  }

  using pool_t = infra::pool::connection_pool<infra::sqlite::connection>;
  pool_t pool([] { return memory_db(); }, {.max_size = 1, .acquire_timeout = forever, .idle_timeout = forever,
                                           .max_lifetime = forever, .validation_threshold = forever,
                                           .housekeeping_interval = 0ms});
  auto lease = pool.acquire();
  CHECK(capture([&] { (void)pool.acquire(10ms); }).is(infra::errc::pool_exhausted));
  lease.release();
  CHECK_NOTHROW(pool.execute("SELECT 1"));

  infra::sqlite::connection busy(":memory:", {.connect_timeout = forever, .busy_timeout = forever});
  CHECK(busy.execute("SELECT 1").size() == 1);
  auto dbg = infra::health::with_debug(busy, {.max_sql_length = std::numeric_limits<std::size_t>::max()});
  dbg.execute("SELECT 1");
  auto m = infra::health::get_metrics(dbg, {.period = "999999999999999999ms", .pool = {}, .slow_query_threshold = forever});
  REQUIRE(m.queries.has_value());
  CHECK(m.queries->slow_count == 0);
}
#endif

// ---------------------------------------------------------------------------------------------
// SQL text (SQLite; the server backends are in bad_input_it.cpp)
// ---------------------------------------------------------------------------------------------

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("sqlite empty and whitespace-only SQL return an empty result", "[reliability][sqlite]") {
  auto db = memory_db();
  for (std::string_view sql : {""sv, "   "sv, " \n\t\r "sv, ";"sv, ";;;"sv, "-- a comment"sv, "/* open comment"sv}) {
    INFO("sql \"" << sql << "\"");
    infra::rows r;
    REQUIRE_NOTHROW(r = db->execute(sql));
    CHECK(r.empty());
    CHECK(r.columns.empty());
    CHECK(r.affected_rows == 0);
  }
  CHECK(db->execute("SELECT 1").size() == 1);
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("sqlite huge SQL text runs or fails cleanly", "[reliability][sqlite]") {
  auto db = memory_db();
  SECTION("10 MB comment") {
    std::string sql = "SELECT 7 -- " + std::string(10'000'000, 'x');
    auto r = db->execute(sql);
    REQUIRE(r.size() == 1);
    CHECK(r.at(0, 0) == "7");
  }
  SECTION("IN list of 200000 values") {
    std::string sql = "SELECT 1 WHERE 199999 IN (";
    for (int i = 0; i < 200000; ++i) sql += (i ? "," : "") + std::to_string(i);
    sql += ")";
    CHECK(db->execute(sql).size() == 1);
  }
  SECTION("10 MB string literal") {
    auto r = db->execute("SELECT length('" + std::string(10'000'000, 'y') + "')");
    CHECK(r.at(0, 0) == "10000000");
  }
  SECTION("100000 nested parentheses") {
    std::string sql = "SELECT " + std::string(100000, '(') + "1" + std::string(100000, ')');
    outcome o = capture([&] { db->execute(sql); });
    INFO(o.describe());
    CHECK(o.is(infra::errc::query_failed));
    CHECK(db->execute("SELECT 1").size() == 1);
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("sqlite SQL with a NUL byte is rejected before anything runs", "[reliability][sqlite]") {
  auto db = memory_db();
  for (std::string sql : {with_nul("SELECT 1", " garbage"), with_nul("SELECT 1", ""), with_nul("", "SELECT 1"),
                          with_nul("CREATE TABLE t_nul (x integer)", "; SELECT 1")}) {
    outcome o = capture([&] { db->execute(sql); });
    INFO(o.describe());
    CHECK(o.is(infra::errc::query_failed));
    CHECK(o.message.find("NUL") != std::string::npos);
  }
  // The statement before the NUL did not run.
  CHECK(db->execute("SELECT count(*) FROM sqlite_master WHERE name = 't_nul'").at(0, 0) == "0");
}
#endif

// ---------------------------------------------------------------------------------------------
// After close()
// ---------------------------------------------------------------------------------------------

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("sqlite connection after close throws closed and close is idempotent", "[reliability][sqlite]") {
  temp_dir dir;
  infra::sqlite::connection db(dir.file("a.db"));
  const std::string description = db.description();
  run_bounded("sqlite close", 10s, [&] { db.close(); });
  run_bounded("sqlite close again", 10s, [&] { db.close(); });
  CHECK_FALSE(db.is_open());
  CHECK(db.description() == description);
  CHECK(capture([&] { db.execute("SELECT 1"); }).is(infra::errc::closed));
  CHECK(capture([&] { db.execute(""); }).is(infra::errc::closed));
  CHECK(capture([&] { db.ping(); }).is(infra::errc::closed));
  CHECK(capture([&] { (void)db.server_version(); }).is(infra::errc::closed));
  CHECK(capture([&] { (void)db.native(); }).is(infra::errc::closed));
  CHECK(capture([&] { db.transaction([](auto&) {}); }).is(infra::errc::closed));
  CHECK(capture([&] { db.transaction(infra::sqlite::transaction_mode::deferred, [](auto&) {}); })
            .is(infra::errc::closed));
  CHECK_NOTHROW(db.cancel());
  // Module entry points on a closed connection: documented results, no throw.
  auto r = infra::health::check_database_health(db);
  CHECK(r.status == infra::health::health_status::unhealthy);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("closed") != std::string::npos);
  auto m = infra::pool::create_metrics_pool(db).get_metrics();
  CHECK(m.active == 0);
  CHECK(m.idle == 0);
  CHECK(m.waiting == 0);
  CHECK(m.max == 1);
  CHECK_NOTHROW(infra::shutdown::graceful_shutdown(db, {.timeout = 5s, .on_shutdown = {}, .logger = &infra::silent_logger()}));
  CHECK_NOTHROW(infra::shutdown::shutdown_database(db));
  // errc::closed is not transient: with_retry gives up after one attempt.
  int attempts = 0;
  auto retried = capture([&] {
    infra::resilience::with_retry([&] { ++attempts; db.execute("SELECT 1"); }, {.delay = 0ms});
  });
  CHECK(retried.is(infra::errc::closed));
  CHECK(attempts == 1);
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("closing inside a transaction then using the connection throws closed", "[reliability][sqlite]") {
  auto db = memory_db();
  outcome o = capture([&] {
    db->transaction([&](infra::sqlite::connection& c) {
      c.execute("CREATE TABLE t (x integer)");
      c.close();
      c.execute("INSERT INTO t VALUES (1)");
    });
  });
  INFO(o.describe());
  CHECK(o.is(infra::errc::closed));
  CHECK_FALSE(db->is_open());
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("pool after close throws pool_closed and close is idempotent", "[reliability][pool][sqlite]") {
  using pool_t = infra::pool::connection_pool<infra::sqlite::connection>;
  int opened = 0;
  pool_t pool([&] { ++opened; return memory_db(); }, {.max_size = 2, .housekeeping_interval = 0ms});
  auto held = pool.acquire();
  pool.execute("SELECT 1");  // opens a second connection, idle at close()
  infra::sqlite::connection* held_connection = &*held;
  auto handle = infra::pool::create_metrics_pool(pool);

  run_bounded("pool close", 10s, [&] { pool.close(); });
  run_bounded("pool close again", 10s, [&] { pool.close(); });
  run_bounded("metrics_pool close", 10s, [&] { handle.close(); });
  CHECK(capture([&] { (void)pool.acquire(); }).is(infra::errc::pool_closed));
  CHECK(capture([&] { (void)pool.acquire(0ms); }).is(infra::errc::pool_closed));
  CHECK(capture([&] { (void)pool.try_acquire(); }).is(infra::errc::pool_closed));
  CHECK(capture([&] { pool.execute("SELECT 1"); }).is(infra::errc::pool_closed));
  CHECK(capture([&] { pool.ping(); }).is(infra::errc::pool_closed));
  CHECK(capture([&] { (void)pool.server_version(); }).is(infra::errc::pool_closed));
  CHECK(capture([&] { pool.transaction([](auto&) {}); }).is(infra::errc::pool_closed));
  CHECK(capture([&] { pool.with_connection([](auto&) { return 1; }); }).is(infra::errc::pool_closed));

  // The lease taken before close() stays usable until it ends; then its connection is closed.
  CHECK(held->execute("SELECT 2").at(0, 0) == "2");
  CHECK(held_connection->is_open());
  held.release();
  held.release();  // twice: nothing
  CHECK(pool.get_metrics() == infra::pool::pool_metrics{0, 0, 0, 0, 2});
  CHECK(handle.get_metrics() == infra::pool::pool_metrics{0, 0, 0, 0, 2});
  bool all_closed = false;
  run_bounded("pool close_for", 10s, [&] { all_closed = pool.close_for(1s); });
  CHECK(all_closed);
  CHECK(opened == 2);

  // Health checks of a closed pool report it; they do not throw.
  auto r = infra::health::check_database_health(pool, handle);
  CHECK(r.status == infra::health::health_status::unhealthy);
  REQUIRE(r.metrics.pool_metrics.has_value());
  CHECK(r.metrics.pool_metrics->max == 2);
  CHECK_NOTHROW(infra::shutdown::graceful_shutdown(pool, {.timeout = 5s, .on_shutdown = {}, .logger = &infra::silent_logger()}));
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("with_debug wrapper after close records the failures and still reports", "[reliability][health][sqlite]") {
  auto db = memory_db();
  auto dbg = infra::health::with_debug(*db, {.max_metrics = 8});
  dbg.execute("SELECT 1");
  run_bounded("with_debug close", 10s, [&] { dbg.close(); });
  run_bounded("with_debug close again", 10s, [&] { dbg.close(); });
  CHECK_FALSE(db->is_open());
  CHECK(capture([&] { dbg.execute("SELECT 1"); }).is(infra::errc::closed));
  CHECK(capture([&] { dbg.ping(); }).is(infra::errc::closed));
  CHECK(capture([&] { (void)dbg.server_version(); }).is(infra::errc::closed));
  CHECK_NOTHROW(dbg.cancel());
  auto metrics = dbg.query_metrics();
  REQUIRE(metrics.size() == 2);
  CHECK_FALSE(metrics[0].failed);
  CHECK(metrics[1].failed);
  auto m = infra::health::get_metrics(dbg);
  REQUIRE(m.queries.has_value());
  CHECK(m.queries->total == 2);
  CHECK(m.queries->error_count == 1);

  // A moved-from wrapper may be destroyed or assigned to; the new owner keeps working.
  auto moved = std::move(dbg);
  CHECK(moved.metrics_size() == 2);
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("health_monitor stop start and destroy in any order", "[reliability][health][sqlite]") {
  namespace health = infra::health;
  auto db = memory_db();
  auto quiet = infra::make_logger([](infra::log_level, std::string_view) {});
  std::mutex mutex;
  std::condition_variable cv;
  int first_calls = 0;
  int second_calls = 0;
  {
    health::health_monitor<infra::sqlite::connection> monitor(*db, {.interval = 1h, .logger = &quiet});
    run_bounded("stop before start", 10s, [&] { monitor.stop(); });
    run_bounded("stop twice before start", 10s, [&] { monitor.stop(); });
    CHECK_FALSE(monitor.is_running());

    monitor.start([&](const health::health_check_result&) {
      std::lock_guard lock(mutex);
      ++first_calls;
      cv.notify_all();
    });
    {
      std::unique_lock lock(mutex);
      REQUIRE(cv.wait_for(lock, 20s, [&] { return first_calls > 0; }));
    }
    run_bounded("stop", 10s, [&] { monitor.stop(); });
    run_bounded("stop again", 10s, [&] { monitor.stop(); });
    CHECK_FALSE(monitor.is_running());

    monitor.start([&](const health::health_check_result&) {
      std::lock_guard lock(mutex);
      ++second_calls;
      cv.notify_all();
    });
    CHECK(monitor.is_running());
    {
      std::unique_lock lock(mutex);
      REQUIRE(cv.wait_for(lock, 20s, [&] { return second_calls > 0; }));
    }
    run_bounded("stop after restart", 10s, [&] { monitor.stop(); });
    CHECK(first_calls == 1);
    CHECK(second_calls == 1);

    // check_now works on a stopped monitor, and on a closed database it reports, not throws.
    db->close();
    auto r = monitor.check_now();
    CHECK(r.status == health::health_status::unhealthy);
    REQUIRE(monitor.get_last_check().has_value());
    monitor.start();
    // The destructor stops a running monitor.
  }
  CHECK(first_calls == 1);
  CHECK(second_calls == 1);
}
#endif

TEST_CASE("shutdown controller execute twice and after move", "[reliability][shutdown]") {
  namespace sd = infra::shutdown;
  auto quiet = infra::make_logger([](infra::log_level, std::string_view) {});
  SECTION("successful shutdown: the second execute is a no-op") {
    kysera::test::fake_database db;
    int ran = 0;
    auto controller = sd::create_shutdown_controller(db, {.timeout = 5s, .on_shutdown = [&] { ++ran; }, .logger = &quiet});
    run_bounded("execute", 10s, [&] { controller.execute(); });
    run_bounded("execute again", 10s, [&] { controller.execute(); });
    CHECK(ran == 1);
    CHECK(db.close_calls() == 1);
    CHECK(controller.is_shutting_down());
  }
  SECTION("failed shutdown: every execute reports the same error") {
    kysera::test::fake_database db;
    auto controller = sd::create_shutdown_controller(
        db, {.timeout = 5s, .on_shutdown = [] { throw std::runtime_error("flush failed"); }, .logger = &quiet});
    std::string first;
    std::string second;
    run_bounded("execute", 10s, [&] { first = capture([&] { controller.execute(); }).message; });
    run_bounded("execute again", 10s, [&] { second = capture([&] { controller.execute(); }).message; });
    CHECK(first.find("flush failed") != std::string::npos);
    CHECK(first == second);
    CHECK(db.close_calls() == 1);
  }
  SECTION("a moved-from controller refuses work") {
    kysera::test::fake_database db;
    auto controller = sd::create_shutdown_controller(db, {.timeout = 5s, .on_shutdown = {}, .logger = &quiet});
    auto other = std::move(controller);
    CHECK_FALSE(controller.is_shutting_down());  // NOLINT(bugprone-use-after-move): documented
    CHECK(capture([&] { controller.execute(); }).what == outcome::kind::logic_error);
    CHECK(capture([&] { controller.register_signals(); }).what == outcome::kind::logic_error);
    CHECK(db.close_calls() == 0);
    run_bounded("execute on the new owner", 10s, [&] { other.execute(); });
    CHECK(db.close_calls() == 1);
  }
}

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("graceful_shutdown of an already closed database succeeds", "[reliability][shutdown][sqlite]") {
  auto db = memory_db();
  auto quiet = infra::make_logger([](infra::log_level, std::string_view) {});
  infra::shutdown::graceful_shutdown(*db, {.timeout = 5s, .on_shutdown = {}, .logger = &quiet});
  CHECK_FALSE(db->is_open());
  run_bounded("second graceful_shutdown", 10s,
              [&] { infra::shutdown::graceful_shutdown(*db, {.timeout = 5s, .on_shutdown = {}, .logger = &quiet}); });
}
#endif
