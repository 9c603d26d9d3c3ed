// Unit tests of the MySQL/MariaDB adapter that need no server: options, URLs, error mapping.

#include "support/catch.hpp"

// Only in builds that have the MySQL adapter (kysera::infra-mysql linked).
#if defined(KYSERA_INFRA_HAS_MYSQL)

#include <kysera/infra/adapters/mysql.hpp>
#include <kysera/infra/database.hpp>

#include <chrono>
#include <initializer_list>
#include <limits>
#include <utility>
#include <stdexcept>
#include <string>

namespace infra = kysera::infra;
namespace my = kysera::infra::mysql;
using my::detail::mysql_phase;
using namespace std::chrono_literals;

static_assert(infra::database<my::connection>);
static_assert(infra::database_with_ping<my::connection>);
static_assert(infra::database_with_cancel<my::connection>);
static_assert(infra::database_with_server_version<my::connection>);
static_assert(infra::database_with_transaction<my::connection>);
static_assert(!std::is_copy_constructible_v<my::connection> && !std::is_move_constructible_v<my::connection>);
static_assert(my::connection::backend_name == "mysql");

namespace {
std::string invalid_argument_of(const my::connection_options& o) {
  try {
    my::detail::validate(o);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

infra::errc invalid_url_code(const std::string& url) {
  my::connection_options o;
  try {
    (void)my::detail::parse_mysql_url(url, o);
  } catch (const infra::database_error& e) {
    CHECK(e.backend() == "mysql");
    CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
    return e.condition();
  }
  return infra::errc::backend_error;  // "did not throw"
}
}  // namespace

TEST_CASE("mysql options are validated and name the bad field", "[mysql]") {
  CHECK(invalid_argument_of({}).empty());
  my::connection_options o;
  o.connect_timeout = 0ms;
  CHECK(invalid_argument_of(o).find("connect_timeout") != std::string::npos);
  o = {};
  o.connect_timeout = -5ms;
  CHECK(invalid_argument_of(o).find("connect_timeout") != std::string::npos);
  o = {};
  o.read_timeout = -1ms;
  CHECK(invalid_argument_of(o).find("read_timeout") != std::string::npos);
  o = {};
  o.write_timeout = -1ms;
  CHECK(invalid_argument_of(o).find("write_timeout") != std::string::npos);
  o = {};
  o.cancel_timeout = 0ms;
  CHECK(invalid_argument_of(o).find("cancel_timeout") != std::string::npos);
  o = {};
  o.read_timeout = std::chrono::hours(24 * 366);
  CHECK(invalid_argument_of(o).find("read_timeout") != std::string::npos);
  o = {};
  o.read_timeout = 0ms;  // none
  o.write_timeout = 0ms;
  CHECK(invalid_argument_of(o).empty());
}

TEST_CASE("mysql connection rejects bad options before any network work", "[mysql]") {
  my::connection_options o;
  o.connect_timeout = 0ms;
  // The URL points nowhere: the options error must come first.
  CHECK_THROWS_AS(my::connection("mysql://u:p@127.0.0.1:1/db", o), std::invalid_argument);
  CHECK_THROWS_AS(my::connection("postgres://u:hunter2@127.0.0.1:1/db"), infra::database_error);
  try {
    my::connection c("mysql://u:hunter2@127.0.0.1:1/db?bogus=1");
    FAIL("accepted an unknown parameter");
  } catch (const infra::database_error& e) {
    CHECK(e.code() == infra::errc::invalid_url);
    CHECK(std::string(e.what()).find("bogus") != std::string::npos);
    CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
  }
}

TEST_CASE("mysql URLs: schemes, defaults and parameters", "[mysql]") {
  my::connection_options o;
  auto t = my::detail::parse_mysql_url("mysql://app:s%40cret@db.example:3307/shop", o);
  CHECK(t.scheme == "mysql");
  CHECK(t.user == "app");
  CHECK(t.password == "s@cret");
  CHECK(t.host == "db.example");
  CHECK(t.port == 3307);
  CHECK(t.schema == "shop");
  CHECK(my::detail::describe(t) == "mysql://app@db.example:3307/shop");
  CHECK(my::detail::driver_host_name(t) == "tcp://db.example:3307");

  auto d = my::detail::parse_mysql_url("mariadb://root@10.0.0.5/", o);
  CHECK(d.scheme == "mariadb");
  CHECK(d.port == 3306);
  CHECK(d.password.empty());
  CHECK(d.schema.empty());
  CHECK(my::detail::describe(d) == "mariadb://root@10.0.0.5:3306/");

  auto v6 = my::detail::parse_mysql_url("MySQL://u:p@[::1]:4000/x", o);
  CHECK(v6.scheme == "mysql");
  CHECK(my::detail::driver_host_name(v6) == "tcp://[::1]:4000");
  CHECK(my::detail::describe(v6) == "mysql://u@[::1]:4000/x");

  auto h = my::detail::parse_mysql_url("mysql://u@/x", o);
  CHECK(h.host == "localhost");

  my::connection_options p;
  p.connect_timeout = 10s;
  (void)my::detail::parse_mysql_url(
      "mysql://u:p@h/db?connect_timeout=3&read_timeout=1500ms&write_timeout=20s&cancel_timeout=1", p);
  CHECK(p.connect_timeout == 3s);
  CHECK(p.read_timeout == 1500ms);
  CHECK(p.write_timeout == 20s);
  CHECK(p.cancel_timeout == 1s);
}

TEST_CASE("mysql URLs that are malformed throw invalid_url without the password", "[mysql]") {
  for (const char* bad : {"http://u:hunter2@h/db", "mysql://u:hunter2@h/db?connect_timeout=abc",
                          "mysql://u:hunter2@h/db?connect_timeout=0", "mysql://u:hunter2@h/db?read_timeout=-1",
                          "mysql://u:hunter2@h/db?sslmode=x", "mysql://u:hunter2@h/a/b", "mysql://u:hunter2@h:0/db",
                          "u:hunter2@h/db", "mysql://u:hunter2@h/db?connect_timeout=10ms5"}) {
    INFO(bad);
    CHECK(invalid_url_code(bad) == infra::errc::invalid_url);
  }
}

TEST_CASE("mysql URL escapes that decode to a NUL byte are invalid_url", "[mysql]") {
  // The client library takes C strings and would silently cut the value at the NUL.
  for (const char* bad : {"mysql://u%00x:hunter2@h/db", "mysql://u:hunter2%00tail@h/db", "mysql://u:hunter2@h/d%00b",
                          "mysql://u:hunter2@h%00x/db", "mysql://u:hunter2@h/db?connect_timeout=5%00",
                          "mariadb://u:%00hunter2@h/db"}) {
    INFO(bad);
    CHECK(invalid_url_code(bad) == infra::errc::invalid_url);
  }
  // Other escapes still decode.
  my::connection_options o;
  auto t = my::detail::parse_mysql_url("mysql://u%41:p%01w@h/d%20b", o);
  CHECK(t.user == "uA");
  CHECK(t.password == "p\x01w");
  CHECK(t.schema == "d b");
}

TEST_CASE("mysql URLs split the authority before the query and reject what reads two ways",
          "[mysql][regression]") {
  // A password with an unencoded '?', '/' or '#': the '@' then stands after the authority.
  for (const char* bad : {"mysql://app:1234?Secret-pw@db/shop", "mysql://app:12/Secret-pw@db",
                          "mysql://app:12#Secret-pw@db/shop", "mysql://app@db/shop#Secret-pw"}) {
    CAPTURE(bad);
    my::connection_options o;
    try {
      (void)my::detail::parse_mysql_url(bad, o);
      FAIL("parsed");
    } catch (const infra::database_error& e) {
      CHECK(e.code() == infra::errc::invalid_url);
      CHECK(std::string(e.what()).find("Secret-pw") == std::string::npos);
    }
  }
  // The user info ends at the last '@' of the authority; a query may hold an '@' after it.
  my::connection_options o;
  auto t = my::detail::parse_mysql_url("mysql://a@b:p@ss@h/db?connect_timeout=5", o);
  CHECK(t.user == "a@b");
  CHECK(t.password == "p@ss");
  CHECK(t.host == "h");
  // Brackets belong to an [IPv6] host only.
  for (const char* bad : {"mysql://u@h]x/db", "mysql://u@[::1]]/db", "mysql://u@[::1]x]:1/db",
                          "mysql://u@[]/db", "mysql://u@h[1]/db", "mysql://u@a%3Ab/db"}) {
    CAPTURE(bad);
    CHECK(invalid_url_code(bad) == infra::errc::invalid_url);
  }
  // An unknown parameter is named only when it looks like a name.
  try {
    (void)my::detail::parse_mysql_url("mysql://u@h/db?x%20hunter2=1", o);
    FAIL("parsed");
  } catch (const infra::database_error& e) {
    CHECK(std::string(e.what()).find("hunter2") == std::string::npos);
  }
}

TEST_CASE("mysql describe() percent-encodes and parses back to the same target",
          "[mysql][regression]") {
  for (const char* url : {"mysql://a%3Ab:pw@h/db", "mysql://u@h/d%25b", "mariadb://u%2Fv@h:4000/x%3Fy",
                          "mysql://%40@[::1]:3307/%23", "mysql://u@h%2Dx/db", "mysql://h/"}) {
    CAPTURE(url);
    my::connection_options o;
    auto t = my::detail::parse_mysql_url(url, o);
    const std::string described = my::detail::describe(t);
    CAPTURE(described);
    auto back = my::detail::parse_mysql_url(described, o);
    CHECK(back.scheme == t.scheme);
    CHECK(back.user == t.user);
    CHECK(back.host == t.host);
    CHECK(back.port == t.port);
    CHECK(back.schema == t.schema);
    CHECK(back.password.empty());
  }
  my::connection_options o;
  CHECK(my::detail::describe(my::detail::parse_mysql_url("mysql://a%3Ab@h/db", o)) ==
        "mysql://a%3Ab@h:3306/db");
  CHECK(my::detail::describe(my::detail::parse_mysql_url("mysql://u@h/d%25b", o)) ==
        "mysql://u@h:3306/d%25b");
}

TEST_CASE("mysql redacts the password as decoded and as written", "[mysql][regression]") {
  my::connection_options o;
  auto t = my::detail::parse_mysql_url("mysql://u:p%61ss%2Dw0rd@h/db", o);
  CHECK(t.password == "pass-w0rd");
  CHECK_THAT(t.secrets, Catch::Matchers::VectorContains(std::string("pass-w0rd")));
  CHECK_THAT(t.secrets, Catch::Matchers::VectorContains(std::string("p%61ss%2Dw0rd")));
  CHECK(infra::detail::redact("x pass-w0rd p%61ss%2Dw0rd y", t.secrets) == "x *** *** y");
}

TEST_CASE("mysql durations become whole driver seconds rounded up", "[mysql]") {
  CHECK(my::detail::driver_seconds(0ms) == 0);
  CHECK(my::detail::driver_seconds(1ms) == 1);
  CHECK(my::detail::driver_seconds(1000ms) == 1);
  CHECK(my::detail::driver_seconds(1001ms) == 2);
  CHECK(my::detail::driver_seconds(10s) == 10);
  CHECK(my::detail::driver_seconds(-5ms) == 0);
  // The largest value saturates at the int the client library takes instead of overflowing.
  CHECK(my::detail::driver_seconds(std::chrono::milliseconds::max()) == std::numeric_limits<int>::max());
}

TEST_CASE("mysql error numbers map to the contract's errc", "[mysql]") {
  using infra::errc;
  auto map = [](int code, const char* state = "HY000", mysql_phase phase = mysql_phase::statement) {
    return my::detail::classify_mysql_error(code, state, phase);
  };
  // connecting
  CHECK(map(2003, "HY000", mysql_phase::connect) == errc::connection_refused);
  CHECK(map(2002, "HY000", mysql_phase::connect) == errc::connection_refused);
  CHECK(map(2005, "HY000", mysql_phase::connect) == errc::connection_refused);
  CHECK(map(2013, "HY000", mysql_phase::connect) == errc::connection_refused);
  CHECK(map(1040, "08004", mysql_phase::connect) == errc::too_many_connections);
  CHECK(map(1203, "42000", mysql_phase::connect) == errc::too_many_connections);
  CHECK(map(1226, "42000", mysql_phase::connect) == errc::too_many_connections);
  CHECK(map(1045, "28000", mysql_phase::connect) == errc::authentication_failed);
  CHECK(map(1044, "42000", mysql_phase::connect) == errc::authentication_failed);
  CHECK(map(1698, "28000", mysql_phase::connect) == errc::authentication_failed);
  CHECK(map(1049, "42000", mysql_phase::connect) == errc::database_not_found);
  CHECK(map(1049, "42000", mysql_phase::statement) == errc::database_not_found);  // USE nosuch
  // a broken session
  for (int code : {2006, 2013, 2055, 1927, 1053, 4031}) {
    INFO(code);
    CHECK(map(code) == errc::connection_lost);
    CHECK(map(code, "HY000", mysql_phase::commit) == errc::outcome_unknown);
    CHECK(my::detail::is_session_broken(code));
  }
  CHECK(map(0, "08S01") == errc::connection_lost);
  CHECK(map(0, "08S01", mysql_phase::commit) == errc::outcome_unknown);
  CHECK_FALSE(my::detail::is_session_broken(1062));
  CHECK_FALSE(my::detail::is_session_broken(1317));
  // statements
  CHECK(map(1213, "40001") == errc::deadlock);
  CHECK(map(1205) == errc::lock_timeout);
  CHECK(map(1317, "70100") == errc::cancelled);
  CHECK(map(1969, "70100") == errc::timeout);
  CHECK(map(3024) == errc::timeout);
  for (int code : {1062, 1451, 1452, 1048, 1364, 4025, 3819}) {
    INFO(code);
    CHECK(map(code, "23000") == errc::constraint_violation);
  }
  CHECK(map(1999, "23000") == errc::constraint_violation);  // by SQLSTATE class 23
  CHECK(map(1064, "42000") == errc::query_failed);
  CHECK(map(1146, "42S02") == errc::query_failed);
  CHECK(map(1054, "42S22") == errc::query_failed);
  CHECK(map(0, "40001") == errc::serialization_failure);
  CHECK(map(0, "08007") == errc::outcome_unknown);
  CHECK(map(0, "40003") == errc::outcome_unknown);
  CHECK(map(2014) == errc::backend_error);
  CHECK(map(0, "") == errc::backend_error);
}

TEST_CASE("mysql recognises INSERT and REPLACE for last_insert_id", "[mysql]") {
  using my::detail::mysql_is_insert;
  CHECK(mysql_is_insert("INSERT INTO t VALUES (1)"));
  CHECK(mysql_is_insert("  insert into t values (1)"));
  CHECK(mysql_is_insert("/* c */ replace INTO t VALUES (1)"));
  CHECK(mysql_is_insert("-- note\nINSERT INTO t VALUES (1)"));
  CHECK_FALSE(mysql_is_insert("INSERTX"));
  CHECK_FALSE(mysql_is_insert("UPDATE t SET a = 1"));
  CHECK_FALSE(mysql_is_insert("SELECT 'INSERT'"));
  CHECK_FALSE(mysql_is_insert("/* unterminated"));
  CHECK_FALSE(mysql_is_insert(""));
}

TEST_CASE("mysql connect to a refused port maps to connection_refused without the password", "[mysql]") {
  // Port 1 on loopback: nothing listens there on any sane machine, so no server is needed.
  try {
    my::connection c("mysql://u:hunter2-secret@127.0.0.1:1/db?connect_timeout=5");
    FAIL("connected to port 1");
  } catch (const infra::database_error& e) {
    CHECK(e.code() == infra::errc::connection_refused);
    CHECK(e.backend() == "mysql");
    // libmysqlclient says 2003 (CR_CONN_HOST_ERROR), MariaDB Connector/C 2002 (CR_CONNECTION_ERROR).
    CHECK((e.native_code() == 2003 || e.native_code() == 2002));
    UNSCOPED_INFO(e.what());
    std::string what = e.what();
    CHECK(what.rfind("mysql: ", 0) == 0);
    CHECK(what.find("mysql://u@127.0.0.1:1/db") != std::string::npos);
    CHECK(what.find("hunter2-secret") == std::string::npos);
  }
}

TEST_CASE("mysql connect failures read as one sentence instead of ending in an errno", "[mysql]") {
  using infra::errc;
  using kysera::infra::mysql::detail::readable_connect_text;
  // MariaDB Connector/C reports a refused connect with the EINPROGRESS of its non-blocking connect.
  CHECK(readable_connect_text(2002, "Can't connect to server on '127.0.0.1' (115)",
                              errc::connection_refused, false) ==
        "Can't connect to server on '127.0.0.1': the connection was refused or the host is "
        "unreachable. Is the server running and accepting TCP/IP connections on that port?");
  CHECK(readable_connect_text(2003, "Can't connect to MySQL server on '10.0.0.9:3306' (113)",
                              errc::connection_refused, false) ==
        "Can't connect to MySQL server on '10.0.0.9:3306': No route to host. Is the server running "
        "and accepting TCP/IP connections on that port?");
  CHECK(readable_connect_text(2002, "Can't connect to local server through socket '/run/x.sock' (2)",
                              errc::connection_refused, true) ==
        "Can't connect to local server through socket '/run/x.sock': No such file or directory. Is "
        "the server running, with its socket at that path?");
  CHECK(readable_connect_text(2002, "Can't connect to server on '10.0.0.9' (115)", errc::timeout,
                              false) ==
        "Can't connect to server on '10.0.0.9': no answer within the connect timeout");
  // Anything else is left as the driver wrote it.
  CHECK(readable_connect_text(1045, "Access denied for user 'a'@'h' (using password: YES)",
                              errc::authentication_failed, false) ==
        "Access denied for user 'a'@'h' (using password: YES)");
}

TEST_CASE("mysql URL errors carry no errc text after the message", "[mysql]") {
  kysera::infra::mysql::connection_options o;
  try {
    kysera::infra::mysql::detail::parse_mysql_url("mysql://u:pw@h:99999/db", o);
    FAIL("parsed");
  } catch (const kysera::infra::database_error& e) {
    CHECK(std::string(e.what()) == "invalid connection URL: port out of range");
  }
}

TEST_CASE("mysql URL TLS parameters reach the options", "[mysql]") {
  my::connection_options o;
  auto t = my::detail::parse_mysql_url(
      "mysql://app:pw@db/shop?ssl-mode=VERIFY_IDENTITY&ssl-ca=/etc/ca.pem&ssl-cert=/c.pem&ssl_key=%2Fk.pem", o);
  CHECK(o.ssl_mode == my::ssl_mode::verify_identity);
  CHECK(o.ssl_ca == "/etc/ca.pem");
  CHECK(o.ssl_cert == "/c.pem");
  CHECK(o.ssl_key == "/k.pem");
  CHECK(t.ssl_mode == my::ssl_mode::verify_identity);
  CHECK(t.ssl_ca == "/etc/ca.pem");
  CHECK(my::detail::driver_host_name(t) == "tcp://db:3306");
  // MySQL's names in any case, '-' or '_', and libpq's spellings.
  for (auto [text, mode] : std::initializer_list<std::pair<const char*, my::ssl_mode>>{
           {"disabled", my::ssl_mode::disabled}, {"disable", my::ssl_mode::disabled},
           {"Preferred", my::ssl_mode::preferred}, {"require", my::ssl_mode::required},
           {"verify-ca", my::ssl_mode::verify_ca}, {"verify-full", my::ssl_mode::verify_identity}}) {
    INFO(text);
    my::connection_options m;
    if (mode == my::ssl_mode::verify_ca || mode == my::ssl_mode::verify_identity) m.ssl_ca = "/ca.pem";
    my::detail::parse_mysql_url(std::string("mysql://u@h/db?sslmode=") + text, m);
    CHECK(m.ssl_mode == mode);
  }
  CHECK(my::to_string(my::ssl_mode::verify_ca) == "verify_ca");
}

TEST_CASE("mysql TLS parameters that contradict each other are invalid_url", "[mysql]") {
  auto message_of = [](const std::string& url) -> std::string {
    my::connection_options o;
    try {
      my::detail::parse_mysql_url(url, o);
    } catch (const infra::database_error& e) {
      CHECK(e.code() == infra::errc::invalid_url);
      return e.what();
    }
    return "accepted";
  };
  CHECK(message_of("mysql://u:Pw-9@h/db?ssl-mode=sometimes") ==
        "invalid connection URL: parameter ssl-mode must be disabled, preferred, required, verify_ca "
        "or verify_identity");
  CHECK(message_of("mysql://u:Pw-9@h/db?ssl-mode=verify_ca") ==
        "invalid connection URL: mysql::connection_options::ssl_ca is needed for ssl_mode verify_ca "
        "and verify_identity");
  CHECK(message_of("mysql://u:Pw-9@h/db?ssl-cert=/c.pem") ==
        "invalid connection URL: mysql::connection_options::ssl_cert and ssl_key must be given together");
  CHECK(message_of("mysql://u:Pw-9@h/db?ssl-mode=disabled&ssl-ca=/ca.pem") ==
        "invalid connection URL: mysql::connection_options::ssl_mode disabled contradicts ssl_ca, "
        "ssl_cert and ssl_key");
  CHECK(message_of("mysql://u:Pw-9@db.example/db?socket=/run/mysqld.sock") ==
        "invalid connection URL: a socket connection takes the host localhost (or none) and no port");
  CHECK(message_of("mysql://u:Pw-9@localhost:3306/db?socket=/run/mysqld.sock") ==
        "invalid connection URL: a socket connection takes the host localhost (or none) and no port");
  my::connection_options bad;
  bad.ssl_key = "/k.pem";
  CHECK_THROWS_AS(my::detail::validate(bad), std::invalid_argument);
}

TEST_CASE("mysql socket URLs connect through unix:// and describe themselves with the socket", "[mysql]") {
  my::connection_options o;
  auto t = my::detail::parse_mysql_url("mysql://app:pw@localhost/shop?socket=/run/my%20sql/s.sock", o);
  CHECK(t.socket == "/run/my sql/s.sock");
  CHECK(my::detail::driver_host_name(t) == "unix:///run/my sql/s.sock");
  const std::string described = my::detail::describe(t);
  CHECK(described == "mysql://app@localhost/shop?socket=%2Frun%2Fmy%20sql%2Fs.sock");
  my::connection_options again;
  auto back = my::detail::parse_mysql_url(described, again);
  CHECK(back.socket == t.socket);
  CHECK(back.schema == "shop");
  // No host at all means localhost too; the password stays a secret.
  auto bare = my::detail::parse_mysql_url("mysql://app:Sock-Pw-1@/shop?socket=/s", o);
  CHECK(bare.host == "localhost");
  CHECK(infra::detail::redact("x Sock-Pw-1 y", bare.secrets) == "x *** y");
}

#endif  // KYSERA_INFRA_HAS_MYSQL
