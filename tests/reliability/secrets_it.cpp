// The secrets test: a password given in a URL, a conninfo string or the environment never
// appears in any text the library produces — exception messages of failed connects and
// statements, description(), log lines of every module that logs, health results, get_metrics
// output, pool and circuit breaker errors, shutdown errors, and whatever reaches stderr. Each
// test collects every such text while driving the library through failures (wrong password,
// refused port, unknown database, server stopped, server paused) and then greps them all for the
// password, its percent-encoded forms and the wrong password it tried.
//
// with_debug records SQL text: documented as possibly sensitive, bounded by max_sql_length, and
// switched off by record_sql = false. The last test pins those three facts.

#include "support/catch.hpp"
#include "support/servers.hpp"

#include <kysera/infra.hpp>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "support_reliability.hpp"

namespace infra = kysera::infra;
namespace health = kysera::infra::health;
namespace servers = kysera::test::servers;
using namespace std::chrono_literals;
using kysera::test::reliability::capture;
using kysera::test::reliability::collecting_logger;
using kysera::test::reliability::outcome;
using kysera::test::reliability::percent_encode;
using kysera::test::reliability::require_no_secret;
using kysera::test::reliability::run_bounded;
using kysera::test::reliability::stderr_capture;
using kysera::test::reliability::text_collector;

namespace {

// A password with every character a URL has to escape, and the wrong one the tests also try.
const std::string secret = "Zx9/Sec@ret:Pw%#?&-7q";
const std::string wrong_secret = "Wr0ng/Gu@ss:Pw%#?-3k";
constexpr const char* secret_user = "kysera_rel_secret";

/// Every secret the tests know: ours, the wrong one, and the servers' own passwords.
std::vector<std::string> all_secrets() {
  return {secret, wrong_secret, servers::postgres_password(), servers::mysql_password()};
}

/// "host:port" of a test server URL ("scheme://user:pass@host:port/db").
[[maybe_unused]] std::string host_port(const std::string& url) {
  auto at = url.find('@');
  auto slash = url.find('/', at);
  REQUIRE(at != std::string::npos);
  REQUIRE(slash != std::string::npos);
  return url.substr(at + 1, slash - at - 1);
}

#if defined(KYSERA_INFRA_HAS_POSTGRES)
struct postgres_side {
  using connection = infra::postgres::connection;
  using options = infra::postgres::connection_options;
  static constexpr const char* server = "postgres";
  static constexpr bool reads_pgpassword = true;  // libpq's PGPASSWORD
  static constexpr const char* database = "postgres";

  static std::string url(const std::string& user, const std::string& password, const std::string& db = database,
                         std::optional<std::string> where = std::nullopt) {
    return "postgres://" + user + ":" + percent_encode(password) + "@" +
           where.value_or(host_port(servers::postgres_url())) + "/" + db;
  }
  /// The same as libpq keyword/value conninfo.
  static std::optional<std::string> conninfo(const std::string& user, const std::string& password) {
    const std::string hp = host_port(servers::postgres_url());
    const auto colon = hp.rfind(':');
    return "host=" + hp.substr(0, colon) + " port=" + hp.substr(colon + 1) + " user=" + user +
           " dbname=postgres password='" + password + "'";
  }
  /// Creates (or updates) the role the tests log in as.
  static void ensure_secret_user() {
    connection admin(servers::postgres_url());
    admin.execute(std::string("DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '") + secret_user +
                  "') THEN CREATE ROLE " + secret_user + " LOGIN; END IF; END $$");
    admin.execute(std::string("ALTER ROLE ") + secret_user + " WITH LOGIN PASSWORD '" + secret + "'");
  }
};
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
struct mysql_side {
  using connection = infra::mysql::connection;
  using options = infra::mysql::connection_options;
  static constexpr const char* server = "mysql";
  static constexpr bool reads_pgpassword = false;
  static constexpr const char* database = "kysera_test";

  static std::string url(const std::string& user, const std::string& password, const std::string& db = database,
                         std::optional<std::string> where = std::nullopt) {
    return "mysql://" + user + ":" + percent_encode(password) + "@" +
           where.value_or(host_port(servers::mysql_url())) + "/" + db;
  }
  static std::optional<std::string> conninfo(const std::string&, const std::string&) { return std::nullopt; }
  static void ensure_secret_user() {
    connection admin(servers::mysql_url());
    const std::string account = std::string("'") + secret_user + "'@'%'";
    admin.execute("CREATE USER IF NOT EXISTS " + account + " IDENTIFIED BY '" + secret + "'");
    admin.execute("ALTER USER " + account + " IDENTIFIED BY '" + secret + "'");
    admin.execute("GRANT ALL PRIVILEGES ON kysera_test.* TO " + account);
  }
};
#endif

[[maybe_unused]] std::string to_text(const health::health_check_result& r) {  // server tests only
  std::string out = "status=" + std::string(health::to_string(r.status));
  for (const auto& c : r.checks) {
    out += " | check " + c.name + " " + std::string(health::to_string(c.status)) + " " + c.message;
  }
  for (const auto& e : r.errors) out += " | error " + e;
  if (r.metrics.check_latency) out += " | latency " + std::to_string(*r.metrics.check_latency);
  if (r.metrics.database_version) out += " | version " + *r.metrics.database_version;
  if (r.metrics.pool_metrics) {
    const auto& p = *r.metrics.pool_metrics;
    out += " | pool " + std::to_string(p.total) + "/" + std::to_string(p.idle) + "/" + std::to_string(p.active) +
           "/" + std::to_string(p.waiting) + "/" + std::to_string(p.max);
  }
  return out;
}

std::string to_text(const health::metrics_result& m) {
  std::string out = "period=" + m.period + " timestamp=" + m.timestamp;
  if (m.connections) {
    out += " connections " + std::to_string(m.connections->total) + "/" + std::to_string(m.connections->active) +
           "/" + std::to_string(m.connections->idle) + "/" + std::to_string(m.connections->max);
  }
  if (m.queries) {
    const auto& q = *m.queries;
    out += " queries " + std::to_string(q.total) + " avg " + std::to_string(q.avg_duration) + " min " +
           std::to_string(q.min_duration) + " max " + std::to_string(q.max_duration) + " p95 " +
           std::to_string(q.p95_duration) + " p99 " + std::to_string(q.p99_duration) + " slow " +
           std::to_string(q.slow_count) + " errors " + std::to_string(q.error_count);
  }
  for (const auto& rec : m.recommendations) out += " | " + rec;
  return out;
}

/// The SQL texts a with_debug wrapper holds, one entry each.
template <class Dbg>
void collect_recorded_sql(text_collector& sink, const std::string& label, const Dbg& dbg) {
  for (const auto& m : dbg.query_metrics()) sink.add(label, m.sql);
}

/// Sanity check of the scanner itself, so the tests below cannot pass by scanning badly.
[[maybe_unused]] void require_scanner_works() {
  text_collector probe;
  probe.add("probe", "postgres://u:" + percent_encode(secret) + "@h/db");
  const auto forms = kysera::test::reliability::secret_forms({secret});
  REQUIRE(kysera::test::reliability::find_secret(probe.entries().at(0).second, forms).has_value());
  REQUIRE(kysera::test::reliability::find_secret("x" + secret + "y", forms).has_value());
}

}  // namespace

// The server sides this build has (each test below runs over every one).
#if defined(KYSERA_INFRA_HAS_POSTGRES) && defined(KYSERA_INFRA_HAS_MYSQL)
#define KYSERA_SECRETS_SERVER_SIDES postgres_side, mysql_side
#elif defined(KYSERA_INFRA_HAS_POSTGRES)
#define KYSERA_SECRETS_SERVER_SIDES postgres_side
#elif defined(KYSERA_INFRA_HAS_MYSQL)
#define KYSERA_SECRETS_SERVER_SIDES mysql_side
#endif

// ---------------------------------------------------------------------------------------------

#if defined(KYSERA_SECRETS_SERVER_SIDES)
TEMPLATE_TEST_CASE("password stays out of connect errors statement errors and descriptions",
                   "[reliability][postgres][mysql]", KYSERA_SECRETS_SERVER_SIDES) {
  using side = TestType;
  using connection = typename side::connection;
  require_scanner_works();
  side::ensure_secret_user();
  text_collector sink;
  stderr_capture err;

  // A good connection: its description, its version, and statements that fail while quoting SQL
  // that contains the password as a literal (the drivers echo the statement text).
  {
    connection c(side::url(secret_user, secret));
    sink.add("description", c.description());
    sink.add("server_version", c.server_version());
    auto literal = c.execute("SELECT '" + secret + "' AS s");
    REQUIRE(literal.size() == 1);  // the password literal round-trips as data
    outcome missing = capture([&] { c.execute("SELECT '" + secret + "' FROM kysera_rel_no_such_table"); });
    CHECK(missing.is(infra::errc::query_failed));
    sink.add("missing table", missing);
    outcome syntax = capture([&] { c.execute("SELEC '" + secret + "' x"); });
    CHECK(syntax.is(infra::errc::query_failed));
    sink.add("syntax error", syntax);
  }
  if (auto info = side::conninfo(secret_user, secret)) {
    connection c(*info);
    sink.add("conninfo description", c.description());
  }

  // Failed connects.
  outcome wrong = capture([&] { connection c(side::url(secret_user, wrong_secret)); });
  CHECK(wrong.is(infra::errc::authentication_failed));
  sink.add("wrong password", wrong);
  if (auto info = side::conninfo(secret_user, wrong_secret)) {
    outcome o = capture([&] { connection c(*info); });
    CHECK(o.is(infra::errc::authentication_failed));
    sink.add("wrong password (conninfo)", o);
  }
  outcome refused = capture([&] { connection c(side::url(secret_user, secret, side::database, "127.0.0.1:1")); });
  CHECK(refused.is(infra::errc::connection_refused));
  sink.add("refused port", refused);
  outcome no_db = capture([&] { connection c(side::url(secret_user, secret, "kysera_rel_no_such_db")); });
  CHECK(no_db.what == outcome::kind::database_error);
  sink.add("unknown database", no_db);
  outcome bad_param =
      capture([&] { connection c(side::url(secret_user, secret) + "?kysera_rel_unknown_parameter=1"); });
  CHECK(bad_param.is(infra::errc::invalid_url));
  sink.add("unknown parameter", bad_param);

  if constexpr (side::reads_pgpassword) {
    // libpq also takes the password from PGPASSWORD; that value is redacted as well.
    kysera::test::reliability::scoped_env env("PGPASSWORD", wrong_secret.c_str());
    const std::string hp = host_port(servers::postgres_url());
    outcome o = capture([&] { connection c(std::string("postgres://") + secret_user + "@" + hp + "/postgres"); });
    CHECK(o.is(infra::errc::authentication_failed));
    sink.add("wrong PGPASSWORD", o);
  }

  sink.add("stderr", err.text());
  CHECK(sink.size() >= 7);
  require_no_secret(sink, all_secrets());
}
#endif

#if defined(KYSERA_SECRETS_SERVER_SIDES)
TEMPLATE_TEST_CASE("password stays out of health results logs metrics pool breaker retry and shutdown texts",
                   "[reliability][postgres][mysql]", KYSERA_SECRETS_SERVER_SIDES) {
  using side = TestType;
  using connection = typename side::connection;
  side::ensure_secret_user();
  text_collector sink;
  stderr_capture err;
  auto health_log = collecting_logger(sink, "health");
  auto monitor_log = collecting_logger(sink, "monitor");
  auto pool_log = collecting_logger(sink, "pool");
  auto breaker_log = collecting_logger(sink, "breaker");
  auto shutdown_log = collecting_logger(sink, "shutdown");
  const std::string good_url = side::url(secret_user, secret);
  const std::string refused_url = side::url(secret_user, secret, side::database, "127.0.0.1:1");

  // Health of a good connection, verbose (the real server version).
  connection good(good_url);
  auto ok = health::perform_health_check(good, {.verbose = true, .logger = &health_log, .timeout = 10s});
  REQUIRE(ok.metrics.database_version.has_value());
  sink.add("healthy result", to_text(ok));

  // A pool whose connections cannot be opened: health, monitor, pool logs.
  using pool_t = infra::pool::connection_pool<connection>;
  pool_t broken([&] { return std::make_unique<connection>(refused_url); },
                {.max_size = 2, .min_idle = 1, .acquire_timeout = 2s, .housekeeping_interval = 0ms, .logger = &pool_log});
  broken.maintain();  // tries to open min_idle and logs the failure
  CHECK(sink.count("log:pool:") >= 1);
  auto broken_handle = infra::pool::create_metrics_pool(broken);
  auto bad = health::perform_health_check(
      broken, {.pool = broken_handle, .verbose = true, .logger = &health_log, .timeout = 10s});
  CHECK(bad.status == health::health_status::unhealthy);
  REQUIRE(bad.errors.size() == 1);
  sink.add("unhealthy result", to_text(bad));
  outcome acquire_failed = capture([&] { (void)broken.acquire(); });
  CHECK(acquire_failed.is(infra::errc::connection_refused));
  sink.add("pool acquire", acquire_failed);
  {
    health::health_monitor<pool_t> monitor(broken, {.pool = broken_handle, .interval = 1h, .timeout = 10s,
                                                    .verbose = true, .logger = &monitor_log});
    std::mutex mutex;
    std::condition_variable cv;
    std::optional<health::health_check_result> seen;
    monitor.start([&](const health::health_check_result& r) {
      std::lock_guard lock(mutex);
      seen = r;
      cv.notify_all();
    });
    {
      std::unique_lock lock(mutex);
      REQUIRE(cv.wait_for(lock, 30s, [&] { return seen.has_value(); }));
      sink.add("monitor callback", to_text(*seen));
    }
    run_bounded("monitor stop", 30s, [&] { monitor.stop(); });
    sink.add("monitor last check", to_text(*monitor.get_last_check()));
  }
  CHECK(sink.count("log:monitor:") >= 1);

  // Pool exhaustion and closed-pool messages for a pool of good connections.
  pool_t pool([&] { return std::make_unique<connection>(good_url); },
              {.max_size = 1, .housekeeping_interval = 0ms, .logger = &pool_log});
  {
    auto lease = pool.acquire();
    outcome exhausted = capture([&] { (void)pool.acquire(20ms); });
    CHECK(exhausted.is(infra::errc::pool_exhausted));
    sink.add("pool exhausted", exhausted);
  }

  // get_metrics output of a with_debug wrapper that ran statements holding the password.
  {
    auto dbg = health::with_debug(pool, {.max_metrics = 16, .record_sql = false});
    dbg.execute("SELECT '" + secret + "' AS s");
    outcome failed = capture([&] { dbg.execute("SELECT '" + secret + "' FROM kysera_rel_no_such_table"); });
    sink.add("with_debug failure", failed);
    auto m = health::get_metrics(dbg, {.period = "1h", .pool = infra::pool::create_metrics_pool(pool),
                                       .slow_query_threshold = 0ms});
    REQUIRE(m.queries.has_value());
    CHECK(m.queries->total == 2);
    sink.add("get_metrics", to_text(m));
    collect_recorded_sql(sink, "recorded sql (record_sql=false)", dbg);
    auto bounded = health::with_debug(pool, {.max_sql_length = 64});
    bounded.execute("SELECT 1 AS padding_to_push_the_literal_past_the_bound_______________, '" + secret + "' AS s");
    REQUIRE(bounded.query_metrics().at(0).sql_truncated);
    collect_recorded_sql(sink, "recorded sql (max_sql_length=64)", bounded);
    sink.add("get_metrics (recording)", to_text(health::get_metrics(bounded)));
  }
  run_bounded("pool close", 30s, [&] { pool.close(); });
  sink.add("pool closed", capture([&] { pool.execute("SELECT 1"); }));

  // Circuit breaker and retry around failed connects.
  {
    infra::resilience::circuit_breaker breaker({.threshold = 1, .reset_time = 1h, .logger = &breaker_log});
    outcome first = capture([&] { breaker.execute([&] { connection c(refused_url); }); });
    CHECK(first.is(infra::errc::connection_refused));
    sink.add("breaker passes the error", first);
    outcome rejected = capture([&] { breaker.execute([&] { connection c(refused_url); }); });
    CHECK(rejected.message.find("Circuit breaker is open") != std::string::npos);
    sink.add("breaker rejection", rejected);

    int retries = 0;
    outcome retried = capture([&] {
      infra::resilience::with_retry([&] { connection c(refused_url); },
                                    {.max_attempts = 2, .delay = 0ms, .on_retry = [&](int, const std::exception& e) {
                                       ++retries;
                                       sink.add("on_retry", e.what());
                                     }});
    });
    CHECK(retries == 1);
    sink.add("retry gave up", retried);
  }

  // Graceful shutdown whose on_shutdown fails with a connect error, with and without a controller.
  {
    connection victim(good_url);
    outcome failed = capture([&] {
      infra::shutdown::graceful_shutdown(
          victim, {.timeout = 20s, .on_shutdown = [&] { connection c(refused_url); }, .logger = &shutdown_log});
    });
    CHECK(failed.what == outcome::kind::other_std);
    sink.add("graceful_shutdown error", failed);
    connection victim2(good_url);
    auto controller = infra::shutdown::create_shutdown_controller(
        victim2, {.timeout = 20s, .on_shutdown = [&] { connection c(refused_url); }, .logger = &shutdown_log});
    sink.add("controller error", capture([&] { controller.execute(); }));
    CHECK(sink.count("log:shutdown:") >= 4);
  }

  // The console logger (a null logger field) writes to stderr, which is captured too.
  {
    pool_t console_pool([&] { return std::make_unique<connection>(refused_url); },
                        {.max_size = 1, .min_idle = 1, .housekeeping_interval = 0ms});
    console_pool.maintain();
    health::health_monitor<pool_t> monitor(console_pool, {.interval = 1h, .timeout = 10s});
    std::mutex mutex;
    std::condition_variable cv;
    bool called = false;
    monitor.start([&](const health::health_check_result&) {
      std::lock_guard lock(mutex);
      called = true;
      cv.notify_all();
    });
    {
      std::unique_lock lock(mutex);
      REQUIRE(cv.wait_for(lock, 30s, [&] { return called; }));
    }
    run_bounded("console monitor stop", 30s, [&] { monitor.stop(); });
    CHECK(err.text().find("could not open a connection") != std::string::npos);
    CHECK(err.text().find("Health check status: unhealthy") != std::string::npos);
  }

  sink.add("stderr", err.text());
  CHECK(sink.size() >= 20);
  require_no_secret(sink, all_secrets());
}
#endif

#if defined(KYSERA_SECRETS_SERVER_SIDES)
TEMPLATE_TEST_CASE("password stays out of errors while the server is stopped or paused",
                   "[reliability][postgres][mysql]", KYSERA_SECRETS_SERVER_SIDES) {
  using side = TestType;
  using connection = typename side::connection;
  side::ensure_secret_user();
  text_collector sink;
  stderr_capture err;
  auto health_log = collecting_logger(sink, "health");
  auto pool_log = collecting_logger(sink, "pool");
  const std::string good_url = side::url(secret_user, secret);
  typename side::options short_connect;
  short_connect.connect_timeout = 1s;

  connection c(good_url);
  infra::pool::connection_pool<connection> pool([&] { return std::make_unique<connection>(good_url, short_connect); },
                                                {.max_size = 2, .validation_threshold = 0ms,
                                                 .housekeeping_interval = 0ms, .logger = &pool_log});
  pool.execute("SELECT 1");

  {
    servers::stop_guard stopped(side::server);
    outcome lost = capture([&] { c.execute("SELECT 1"); });
    CHECK((lost.is(infra::errc::connection_lost) || lost.is(infra::errc::connection_refused)));
    sink.add("statement on a stopped server", lost);
    outcome reconnect = capture([&] { c.execute("SELECT 1"); });
    CHECK(reconnect.is(infra::errc::connection_refused));
    sink.add("reconnect to a stopped server", reconnect);
    outcome fresh = capture([&] { connection other(good_url, short_connect); });
    CHECK(fresh.is(infra::errc::connection_refused));
    sink.add("connect to a stopped server", fresh);
    sink.add("pool on a stopped server", capture([&] { pool.execute("SELECT 1"); }));
    auto r = health::perform_health_check(c, {.logger = &health_log, .timeout = 10s});
    CHECK(r.status == health::health_status::unhealthy);
    sink.add("health of a stopped server", to_text(r));
  }
  c.execute("SELECT 1");  // reconnected after the restart

  {
    connection probe_target(good_url);
    servers::pause_guard paused(side::server);
    outcome slow = capture([&] { connection other(good_url, short_connect); });
    CHECK(slow.what == outcome::kind::database_error);
    sink.add("connect to a paused server", slow);
    auto r = health::perform_health_check(probe_target, {.logger = &health_log, .timeout = 300ms});
    CHECK(r.status == health::health_status::unhealthy);
    sink.add("health of a paused server", to_text(r));
    paused.resume();
  }

  sink.add("stderr", err.text());
  CHECK(sink.size() >= 8);
  require_no_secret(sink, all_secrets());
}
#endif

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("with_debug SQL text is bounded and can be switched off", "[reliability][sqlite]") {
  // Documented: recorded SQL may be sensitive (here it holds a password literal). It is kept in
  // memory only, cut to max_sql_length bytes (default 256), and record_sql = false keeps none.
  // get_metrics never reports SQL text.
  infra::sqlite::connection db(":memory:");
  const std::string padding(300, ' ');
  const std::string late_secret_sql = "SELECT 1" + padding + ", '" + secret + "' AS s";
  const std::string short_secret_sql = "SELECT '" + secret + "' AS s";
  text_collector sink;

  SECTION("the default bound cuts a long statement before the password") {
    auto dbg = health::with_debug(db);
    dbg.execute(late_secret_sql);
    dbg.execute(std::string(10'000, ' ') + "SELECT 2");
    auto entries = dbg.query_metrics();
    REQUIRE(entries.size() == 2);
    for (const auto& e : entries) {
      CHECK(e.sql.size() <= 256);
      CHECK(e.sql_truncated);
    }
    collect_recorded_sql(sink, "recorded sql (default bound)", dbg);
    sink.add("get_metrics", to_text(health::get_metrics(dbg)));
  }
  SECTION("record_sql false keeps no text even for failures") {
    auto dbg = health::with_debug(db, {.record_sql = false});
    dbg.execute(short_secret_sql);
    (void)capture([&] { dbg.execute("SELECT '" + secret + "' FROM no_such_table"); });
    auto entries = dbg.query_metrics();
    REQUIRE(entries.size() == 2);
    for (const auto& e : entries) {
      CHECK(e.sql.empty());
      CHECK_FALSE(e.sql_truncated);
    }
    CHECK(entries[1].failed);
    collect_recorded_sql(sink, "recorded sql (record_sql=false)", dbg);
    sink.add("get_metrics", to_text(health::get_metrics(dbg)));
  }
  SECTION("a multi-byte character at the bound is not split") {
    auto dbg = health::with_debug(db, {.max_sql_length = 10});
    dbg.execute("SELECT '\xC3\xA9\xC3\xA9\xC3\xA9'");  // "SELECT 'é" is 10 bytes, the next é would split
    auto sql = dbg.query_metrics().at(0).sql;
    CHECK(sql == "SELECT '\xC3\xA9");
  }
  SECTION("max_sql_length 0 records no text") {
    auto dbg = health::with_debug(db, {.max_sql_length = 0});
    dbg.execute(short_secret_sql);
    auto e = dbg.query_metrics().at(0);
    CHECK(e.sql.empty());
    CHECK(e.sql_truncated);
    collect_recorded_sql(sink, "recorded sql (max_sql_length=0)", dbg);
  }
  SECTION("within the bound the text is recorded as it is") {
    // The contrast that shows why the bound and the switch matter: short statements are kept
    // verbatim, password literal included. get_metrics still does not show them.
    auto dbg = health::with_debug(db);
    dbg.execute(short_secret_sql);
    CHECK(dbg.query_metrics().at(0).sql == short_secret_sql);
    sink.add("get_metrics", to_text(health::get_metrics(dbg)));
  }
  require_no_secret(sink, all_secrets());
}
#endif
