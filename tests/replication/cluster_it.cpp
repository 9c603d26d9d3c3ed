// cluster<Connection> against the replication fixture: a PostgreSQL primary with a streaming
// replica and a MariaDB primary with a replica (tests/support/servers.sh replication-up).
//
// The discovery and routing tests are non-destructive. The two failover tests (one per backend)
// stop the primary and promote the replica, and then rebuild the pair as the fixture made it
// (old primary started again, the promoted replica discarded and made afresh from it), also
// when an assertion fails, so the tests after them (ctest runs them in any order) find the
// fixture's roles again. Each failover test checks at its start the roles it finds.
#include "support/catch.hpp"
#include "support/error_of.hpp"
#include "support/eventually.hpp"
#include "support/servers.hpp"

#include <kysera/infra.hpp>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <mutex>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
using kysera::test::error_of;
namespace cl = kysera::infra::cluster;
namespace servers = kysera::test::servers;
using kysera::test::eventually;
using namespace std::chrono_literals;

namespace {

cl::cluster_options test_options() {
  cl::cluster_options o;
  o.discovery_interval = 1s;
  o.probe_timeout = 3s;
  o.pool.max_size = 4;
  o.pool.acquire_timeout = 10s;
  return o;
}

// `done()` until it is true, counting a throw as false: a replica that has not yet replayed the
// CREATE TABLE answers "relation does not exist" at first.
template <class Done>
bool eventually_ok(Done&& done, std::chrono::milliseconds limit = 20s) {
  return eventually([&] {
    try {
      return done();
    } catch (const infra::database_error&) {
      return false;
    }
  }, limit, 20ms);
}

// Writes resume through the cluster: eventually an insert goes through.
template <class Cluster>
bool writes_resume(Cluster& c, const std::string& sql, std::chrono::milliseconds limit) {
  return eventually_ok([&] {
    c.execute(sql);
    return true;
  }, limit);
}

// The primary of `server` ("postgres" or "mysql") started again and its replica made afresh from
// it, as replication-up left them; at the end of a failover test, on every path.
// `caught_up` is then polled until the new replica has caught up (MariaDB replays even the accounts from
// the binary log, so until then the application account cannot log in).
struct rebuild_replica_guard {
  std::string server;
  std::function<bool()> caught_up;
  ~rebuild_replica_guard() {
    try {
      const std::string dir = servers::state_dir();
      servers::control("stop", server + "-replica");
      if (server == "postgres") {
        std::ifstream in(dir + "/postgres-replica.datadir");
        std::string data;
        std::getline(in, data);
        if (!data.empty()) std::filesystem::remove_all(data);
        std::filesystem::remove(dir + "/postgres-replica.datadir");
      } else {
        std::filesystem::remove_all(dir + "/mysqldata-replica");
      }
      servers::control("start", server);
      servers::control("start", server + "-replica");
      if (caught_up) CHECK(eventually_ok(caught_up, 120s));  // the rebuilt replica caught up
    } catch (const std::exception& e) {
      FAIL_CHECK("could not rebuild the " << server << " replica: " << e.what());
    }
  }
};

}  // namespace

#if defined(KYSERA_INFRA_HAS_POSTGRES)
namespace {
using pg_cluster = cl::cluster<infra::postgres::connection>;

std::string pg_text(infra::postgres::connection& db, const std::string& sql) {
  auto r = db.execute(sql);
  return r[0][0].is_null() ? std::string("NULL") : r[0][0].c_str();
}
}  // namespace

TEST_CASE("cluster over postgres: discovery, routing, and a replica's write error", "[replication][cluster][postgres]") {
  // The replica first: the roles come from discovery, not from the order.
  pg_cluster c({servers::postgres_replica_url(), servers::postgres_url()}, test_options());
  // A replica the fixture has just made may not have a known lag in the very first round.
  CHECK(eventually([&] { return c.state()->hosts[0].eligible_replica; }, 30s, 20ms));
  auto s = c.state();
  REQUIRE(s->primary == 1u);
  CHECK(s->hosts[1].role == cl::host_role::primary);
  CHECK(s->hosts[0].role == cl::host_role::replica);
  CHECK(s->hosts[0].replication_lag.has_value());
  CHECK(s->hosts[0].round_trip.has_value());
  CHECK(s->hosts[1].round_trip.has_value());
  CHECK(s->hosts[0].eligible_replica);
  CHECK(s->hosts[1].name.find(servers::postgres_password()) == std::string::npos);
  CHECK(cl::check_cluster_health(*s, c.options().max_replication_lag).status ==
        infra::health::health_status::healthy);

  c.execute("CREATE TABLE IF NOT EXISTS cluster_probe (id bigint PRIMARY KEY, v text)");
  const std::string id = c.with_primary([](auto& db) {
    return pg_text(db, "SELECT coalesce(max(id), 0) + 1 FROM cluster_probe");
  });
  c.execute("INSERT INTO cluster_probe VALUES (" + id + ", 'through the cluster')");
  const int in_tx = c.transaction([&](infra::postgres::connection& db) {
    db.execute("INSERT INTO cluster_probe VALUES (" + id + " + 1000000, 'in a transaction')");
    return 1;
  });
  CHECK(in_tx == 1);
  {
    infra::postgres::connection primary(servers::postgres_url());
    CHECK(pg_text(primary, "SELECT count(*) FROM cluster_probe WHERE id = " + id) == "1");
    CHECK(pg_text(primary, "SELECT count(*) FROM cluster_probe WHERE id = " + id + " + 1000000") == "1");
  }
  {
    auto r = c.replica();
    CHECK(r.host() == 0u);
    CHECK(pg_text(*r, "SELECT pg_is_in_recovery()") == "t");
    CHECK(eventually_ok([&] { return pg_text(*r, "SELECT count(*) FROM cluster_probe WHERE id = " + id) == "1"; }));
    auto e = error_of([&] { r->execute("INSERT INTO cluster_probe VALUES (-1, 'x')"); });
    CHECK(e.sqlstate() == "25006");
    CHECK(cl::cluster_traits<infra::postgres::connection>::not_writable(e));
    const auto before = c.state()->rounds;
    CHECK(c.report(r, e));  // recognised: the replica is suspect until the next probe
    // The report wakes discovery at once, so the round that clears it may already be done.
    const auto after = c.state();
    CHECK((after->hosts[0].suspect || after->rounds > before));
  }
  CHECK(eventually([&] { return !c.state()->hosts[0].suspect; }, 20s, 20ms));  // rediscovered
  CHECK(c.replica_or_primary().host() == 0u);
  // The discovery thread keeps probing.
  const auto rounds = c.state()->rounds;
  CHECK(eventually([&] { return c.state()->rounds >= rounds + 2; }, 30s, 20ms));
}

TEST_CASE("cluster over postgres: a replica that stops replaying is skipped for its lag", "[replication][cluster][postgres]") {
  auto o = test_options();
  o.max_replication_lag = 1s;
  pg_cluster c({servers::postgres_url(), servers::postgres_replica_url()}, o);
  REQUIRE(c.state()->primary == 0u);
  REQUIRE(eventually([&] { return c.state()->hosts[1].eligible_replica; }, 20s, 20ms));
  infra::postgres::connection replica(servers::postgres_replica_url());
  struct resume_replay {
    infra::postgres::connection& replica;
    ~resume_replay() {
      try { replica.execute("SELECT pg_wal_replay_resume()"); } catch (...) {}
    }
  } resume{replica};
  // A fresh replica has replayed no transaction yet (pg_last_xact_replay_timestamp() is NULL,
  // so a paused one's lag would stay unknown): let it replay one first.
  c.execute("CREATE TABLE IF NOT EXISTS cluster_lag (id bigserial PRIMARY KEY)");
  c.execute("INSERT INTO cluster_lag DEFAULT VALUES");
  REQUIRE(eventually_ok([&] {
    return pg_text(replica, "SELECT pg_last_xact_replay_timestamp() IS NOT NULL AND count(*) > 0 FROM cluster_lag") == "t";
  }));
  replica.execute("SELECT pg_wal_replay_pause()");
  // The primary writes, the replica receives but does not replay: its lag grows past 1 s.
  CHECK(eventually([&] {
    c.execute("INSERT INTO cluster_lag DEFAULT VALUES");
    const auto h = c.state()->hosts[1];
    return h.replication_lag && *h.replication_lag > 1s && !h.eligible_replica;
  }, 30s, 100ms));
  CHECK(c.replica_or_primary().host() == 0u);
  CHECK(error_of([&] { (void)c.replica(); }).code() == infra::errc::connection_refused);
  CHECK(cl::check_cluster_health(c).status == infra::health::health_status::degraded);
  replica.execute("SELECT pg_wal_replay_resume()");
  CHECK(eventually([&] { return c.state()->hosts[1].eligible_replica; }, 30s, 20ms));
  CHECK(c.state()->hosts[1].replication_lag <= 1s);
}

TEST_CASE("cluster over postgres: a frozen replica is found down by a bounded probe and skipped",
          "[replication][cluster][postgres]") {
  auto o = test_options();
  o.probe_timeout = 1s;
  pg_cluster c({servers::postgres_url(), servers::postgres_replica_url()}, o);
  REQUIRE(c.state()->hosts[1].role == cl::host_role::replica);
  {
    servers::pause_guard frozen("postgres-replica");
    const auto paused = std::chrono::steady_clock::now();
    // One interval, then the bounded ping (1 s): generous slack for a loaded machine.
    CHECK(eventually([&] { return c.state()->hosts[1].role == cl::host_role::down; }, 20s, 20ms));
    INFO("found down after " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - paused).count() << " ms");
    CHECK(std::chrono::steady_clock::now() - paused < 10s);
    CHECK(c.replica_or_primary().host() == 0u);  // skipped, not waited for
    c.execute("SELECT 1");                       // the primary is unaffected
    const auto rounds = c.state()->rounds;
    CHECK(eventually([&] { return c.state()->rounds >= rounds + 2; }, 30s, 20ms));  // rounds go on
  }
  CHECK(eventually([&] { return c.state()->hosts[1].role == cl::host_role::replica; }, 30s, 20ms));
}

TEST_CASE("cluster over postgres from one multi-host connection string", "[replication][cluster][postgres]") {
  // "postgres://user:pw@127.0.0.1:P/db" -> "127.0.0.1:P"
  const auto authority = [](const std::string& url) {
    const auto at = url.find('@');
    return url.substr(at + 1, url.find('/', at) - at - 1);
  };
  const std::string primary = servers::postgres_url(), replica = servers::postgres_replica_url();
  const std::string both = "postgresql://postgres:" + servers::postgres_password() + "@" + authority(replica) + "," +
                           authority(primary) + "/postgres?target_session_attrs=read-write";
  const auto hosts = infra::postgres::split_hosts(both);
  REQUIRE(hosts.size() == 2);
  pg_cluster c(hosts, test_options());
  const auto s = c.state();
  CHECK(s->primary == 1u);
  CHECK(s->hosts[0].role == cl::host_role::replica);  // target_session_attrs did not refuse it
  CHECK(s->hosts[0].name.find(servers::postgres_password()) == std::string::npos);
  CHECK(s->hosts[1].name == "postgres://postgres@" + authority(primary) + "/postgres");
  c.execute("SELECT 1");
}

TEST_CASE("cluster over postgres follows a failover", "[replication][cluster][postgres][failover]") {
  const std::string primary_url = servers::postgres_url(), replica_url = servers::postgres_replica_url();
  auto o = test_options();
  std::vector<cl::role_change> changes;
  std::mutex changes_mutex;
  o.on_role_change = [&](const cl::role_change& ch) {
    std::lock_guard lock(changes_mutex);
    changes.push_back(ch);
  };
  pg_cluster c({primary_url, replica_url}, o);
  REQUIRE(c.state()->primary == 0u);  // the roles the fixture made
  REQUIRE(c.state()->hosts[1].role == cl::host_role::replica);
  c.execute("CREATE TABLE IF NOT EXISTS cluster_failover (id bigserial PRIMARY KEY, v text)");
  c.execute("INSERT INTO cluster_failover (v) VALUES ('before')");

  rebuild_replica_guard restore{"postgres", [] {
    infra::postgres::connection primary(servers::postgres_url()), replica(servers::postgres_replica_url());
    primary.execute("CREATE TABLE IF NOT EXISTS cluster_rebuilt (id bigint)");
    primary.execute("INSERT INTO cluster_rebuilt VALUES (1)");
    return pg_text(replica, "SELECT pg_is_in_recovery()") == "t" &&
           pg_text(replica, "SELECT count(*) > 0 FROM cluster_rebuilt") == "t";
  }};
  // Four writers insert through the cluster all along; each remembers what was acknowledged.
  // Values are unique to this run: the fixture's primary keeps its data from run to run.
  const std::string run = std::to_string(std::chrono::system_clock::now().time_since_epoch().count());
  std::atomic<bool> stop_writers{false};
  std::atomic<int> acknowledged_after_promotion{0};
  std::atomic<int> writers_acknowledged{0};  // writers with a first acknowledged write
  std::atomic<bool> promoted_flag{false};
  std::vector<std::vector<std::string>> acknowledged(4);
  std::vector<int> unknown(4, 0), refused(4, 0);
  std::vector<std::thread> writers;
  struct join_writers {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~join_writers() {
      stop = true;
      for (auto& t : threads) if (t.joinable()) t.join();
    }
  } joined{stop_writers, writers};
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      for (int n = 0; !stop_writers; ++n) {
        const std::string v = run + "-w" + std::to_string(w) + "-" + std::to_string(n);
        try {
          c.execute("INSERT INTO cluster_failover (v) VALUES ('" + v + "')");
          auto& mine = acknowledged[static_cast<std::size_t>(w)];  // only this thread, until joined
          mine.push_back(v);
          if (mine.size() == 1) ++writers_acknowledged;
          if (promoted_flag) ++acknowledged_after_promotion;
        } catch (const infra::database_error& e) {
          // Refused at once (no primary) or lost with the write's outcome unknown: not acknowledged.
          if (e.code() == infra::errc::connection_refused) ++refused[static_cast<std::size_t>(w)];
          else ++unknown[static_cast<std::size_t>(w)];
          std::this_thread::sleep_for(5ms);  // pacing only: no writer spins on a missing primary
        }
      }
    });
  }
  CHECK(eventually([&] { return writers_acknowledged == 4; }, 20s, 5ms));

  servers::control("stop", "postgres");
  // A write meets the stopped primary: it fails, and the host leaves the primary role.
  auto e = error_of([&] { c.execute("INSERT INTO cluster_failover (v) VALUES ('during')"); });
  CHECK((infra::is_connection_error(e.condition()) || e.code() == infra::errc::connection_refused));
  CHECK(eventually([&] { return c.state()->hosts[0].role == cl::host_role::down; }, 20s, 20ms));
  CHECK_FALSE(c.state()->primary);
  CHECK(error_of([&] { (void)c.primary(); }).code() == infra::errc::connection_refused);
  CHECK(cl::check_cluster_health(*c.state(), o.max_replication_lag).status ==
        infra::health::health_status::unhealthy);

  servers::control("promote", "postgres-replica");
  const auto promoted = std::chrono::steady_clock::now();
  // Within 2 x discovery_interval, plus slack for a loaded machine.
  REQUIRE(eventually([&] { return c.state()->primary == 1u; }, 2 * o.discovery_interval + 5s, 10ms));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - promoted);
  INFO("the new primary was named after " << took.count() << " ms");
  CHECK(took <= 2 * o.discovery_interval + 5s);
  CHECK(writes_resume(c, "INSERT INTO cluster_failover (v) VALUES ('after')", 20s));
  promoted_flag = true;
  CHECK(eventually([&] { return acknowledged_after_promotion >= 20; }, 20s, 5ms));  // the writers resumed
  stop_writers = true;
  for (auto& t : writers) t.join();
  {
    infra::postgres::connection now_primary(replica_url);
    CHECK(pg_text(now_primary, "SELECT count(*) FROM cluster_failover WHERE v = 'after'") == "1");
    // Every acknowledged write is on the new primary (a fast shutdown streams all WAL first).
    std::size_t total = 0, missing = 0;
    for (const auto& mine : acknowledged) {
      for (const auto& v : mine) {
        ++total;
        if (pg_text(now_primary, "SELECT count(*) FROM cluster_failover WHERE v = '" + v + "'") != "1") ++missing;
      }
    }
    int unknown_total = 0, refused_total = 0;
    for (int w = 0; w < 4; ++w) {
      unknown_total += unknown[static_cast<std::size_t>(w)];
      refused_total += refused[static_cast<std::size_t>(w)];
    }
    INFO(total << " acknowledged, " << unknown_total << " with the outcome unknown, " << refused_total
               << " refused without a primary");
    CHECK(missing == 0);
    CHECK(total > 0);
  }
  std::lock_guard lock(changes_mutex);
  bool saw_promotion = false;
  for (const auto& ch : changes) saw_promotion |= ch.host == 1 && ch.to == cl::host_role::primary;
  CHECK(saw_promotion);
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
namespace {
using my_cluster = cl::cluster<infra::mysql::connection>;

std::string my_text(infra::mysql::connection& db, const std::string& sql) {
  auto r = db.execute(sql);
  return r.at(0, 0).value_or("NULL");
}
}  // namespace

TEST_CASE("cluster over mariadb: discovery, routing, and a replica's write error", "[replication][cluster][mysql]") {
  my_cluster c({servers::mysql_replica_url(), servers::mysql_app_url()}, test_options());
  // A replica the fixture has just made is still replaying the primary's binary log (its lag
  // unknown or large) for the first rounds.
  CHECK(eventually([&] { return c.state()->hosts[0].eligible_replica; }, 30s, 20ms));
  auto s = c.state();
  INFO("replica: " << s->hosts[0].last_error);
  REQUIRE(s->primary == 1u);
  CHECK(s->hosts[0].role == cl::host_role::replica);
  CHECK(s->hosts[0].replication_lag.has_value());  // Seconds_Behind_Master
  CHECK(s->hosts[0].round_trip.has_value());
  CHECK(s->hosts[1].round_trip.has_value());
  CHECK(s->hosts[0].name.find(servers::mysql_password()) == std::string::npos);

  c.execute("CREATE TABLE IF NOT EXISTS cluster_probe (id BIGINT PRIMARY KEY, v TEXT)");
  const std::string id = c.with_primary([](auto& db) {
    return my_text(db, "SELECT coalesce(max(id), 0) + 1 FROM cluster_probe");
  });
  c.execute("INSERT INTO cluster_probe VALUES (" + id + ", 'through the cluster')");
  {
    infra::mysql::connection primary(servers::mysql_app_url());
    CHECK(my_text(primary, "SELECT count(*) FROM cluster_probe WHERE id = " + id) == "1");
  }
  {
    auto r = c.replica();
    CHECK(r.host() == 0u);
    CHECK(my_text(*r, "SELECT @@global.read_only") == "1");
    CHECK(eventually_ok([&] { return my_text(*r, "SELECT count(*) FROM cluster_probe WHERE id = " + id) == "1"; }));
    auto e = error_of([&] { r->execute("INSERT INTO cluster_probe VALUES (-1, 'x')"); });
    CHECK(e.native_code() == 1290);
    CHECK(cl::cluster_traits<infra::mysql::connection>::not_writable(e));
    CHECK(c.report(r, e));
  }
  CHECK(eventually([&] { return !c.state()->hosts[0].suspect; }, 20s, 20ms));
  CHECK(c.replica_or_primary().host() == 0u);
}

TEST_CASE("cluster over mariadb follows a failover", "[replication][cluster][mysql][failover]") {
  const std::string primary_url = servers::mysql_app_url(), replica_url = servers::mysql_replica_url();
  auto o = test_options();
  my_cluster c({primary_url, replica_url}, o);
  REQUIRE(c.state()->primary == 0u);
  REQUIRE(c.state()->hosts[1].role == cl::host_role::replica);
  c.execute("CREATE TABLE IF NOT EXISTS cluster_failover (id BIGINT AUTO_INCREMENT PRIMARY KEY, v TEXT)");
  c.execute("INSERT INTO cluster_failover (v) VALUES ('before')");
  {
    // Promotion discards the relay log (RESET SLAVE ALL): wait until the replica has applied
    // the table, or the writes after the failover would find none.
    infra::mysql::connection replica(replica_url);
    REQUIRE(eventually_ok([&] {
      return my_text(replica, "SELECT count(*) FROM cluster_failover WHERE v = 'before'") != "0";
    }));
  }

  rebuild_replica_guard restore{"mysql", [] {
    infra::mysql::connection primary(servers::mysql_app_url()), replica(servers::mysql_replica_url());
    primary.execute("CREATE TABLE IF NOT EXISTS cluster_rebuilt (id BIGINT)");
    primary.execute("INSERT INTO cluster_rebuilt VALUES (1)");
    return my_text(replica, "SELECT @@global.read_only") == "1" &&
           my_text(replica, "SELECT count(*) > 0 FROM cluster_rebuilt") == "1";
  }};
  servers::control("stop", "mysql");
  auto e = error_of([&] { c.execute("INSERT INTO cluster_failover (v) VALUES ('during')"); });
  CHECK(infra::is_connection_error(e.condition()));
  CHECK(eventually([&] { return c.state()->hosts[0].role == cl::host_role::down; }, 20s, 20ms));
  CHECK_FALSE(c.state()->primary);

  servers::control("promote", "mysql-replica");
  const auto promoted = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] { return c.state()->primary == 1u; }, 2 * o.discovery_interval + 5s, 10ms));
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - promoted);
  INFO("the new primary was named after " << took.count() << " ms");
  CHECK(took <= 2 * o.discovery_interval + 5s);
  CHECK(writes_resume(c, "INSERT INTO cluster_failover (v) VALUES ('after')", 20s));
  {
    infra::mysql::connection now_primary(replica_url);
    CHECK(my_text(now_primary, "SELECT count(*) FROM cluster_failover WHERE v = 'after'") == "1");
  }
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
namespace {
// The administrator account (ALL PRIVILEGES, so it may stop replication and set read_only) on
// the server of `app_url`, which names the application account.
std::string admin_url(const std::string& app_url) {
  std::string url = app_url;
  const auto at = url.find("kysera_app:");
  REQUIRE(at != std::string::npos);
  url.replace(at, std::string("kysera_app:").size(), "kysera:");
  return url;
}
}  // namespace

TEST_CASE("cluster over mariadb: a replica whose SQL thread stops is skipped, and used again after",
          "[replication][cluster][mysql]") {
  my_cluster c({servers::mysql_app_url(), servers::mysql_replica_url()}, test_options());
  REQUIRE(c.state()->primary == 0u);
  REQUIRE(eventually([&] { return c.state()->hosts[1].eligible_replica; }, 20s, 20ms));
  infra::mysql::connection admin(admin_url(servers::mysql_replica_url()));
  struct restart_sql_thread {
    infra::mysql::connection& admin;
    ~restart_sql_thread() {
      try { admin.execute("START SLAVE SQL_THREAD"); } catch (...) {}
    }
  } restart{admin};
  // Without its SQL thread the replica falls behind and Seconds_Behind_Master is NULL: its lag is
  // unknown, and a replica of unknown lag is not routed to (max_replication_lag is not 0).
  admin.execute("STOP SLAVE SQL_THREAD");
  c.execute("CREATE TABLE IF NOT EXISTS cluster_lag (id BIGINT AUTO_INCREMENT PRIMARY KEY)");
  c.execute("INSERT INTO cluster_lag () VALUES ()");
  CHECK(eventually([&] { return !c.state()->hosts[1].eligible_replica; }, 30s, 20ms));
  CHECK_FALSE(c.state()->hosts[1].replication_lag.has_value());
  CHECK(c.replica_or_primary().host() == 0u);
  CHECK(error_of([&] { (void)c.replica(); }).code() == infra::errc::connection_refused);
  CHECK(cl::check_cluster_health(c).status == infra::health::health_status::degraded);
  admin.execute("START SLAVE SQL_THREAD");
  CHECK(eventually([&] { return c.state()->hosts[1].eligible_replica; }, 30s, 20ms));
  CHECK(c.replica_or_primary().host() == 1u);
}

TEST_CASE("cluster over mariadb: a paused replica is found down by a bounded probe and skipped",
          "[replication][cluster][mysql]") {
  auto o = test_options();
  o.probe_timeout = 1s;
  my_cluster c({servers::mysql_app_url(), servers::mysql_replica_url()}, o);
  REQUIRE(c.state()->hosts[1].role == cl::host_role::replica);
  {
    servers::pause_guard frozen("mysql-replica");
    const auto paused = std::chrono::steady_clock::now();
    CHECK(eventually([&] { return c.state()->hosts[1].role == cl::host_role::down; }, 20s, 20ms));
    INFO("found down after " << std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::steady_clock::now() - paused).count() << " ms");
    CHECK(std::chrono::steady_clock::now() - paused < 10s);
    CHECK(c.replica_or_primary().host() == 0u);  // reads go to the primary, not to the frozen host
    c.execute("SELECT 1");
  }
  CHECK(eventually([&] { return c.state()->hosts[1].role == cl::host_role::replica; }, 30s, 20ms));
}

// A failover done as an operator would: the old primary made read-only, the replica promoted,
// both still answering. Discovery runs only when asked (an interval of an hour), so the cluster
// can follow only through the read-only error of its next write.
TEST_CASE("cluster over mariadb follows an operator's failover through the read-only error",
          "[replication][cluster][mysql][failover]") {
  const std::string primary_url = servers::mysql_app_url(), replica_url = servers::mysql_replica_url();
  auto o = test_options();
  o.discovery_interval = std::chrono::hours(1);
  my_cluster c({primary_url, replica_url}, o);
  REQUIRE(c.state()->primary == 0u);
  REQUIRE(c.state()->hosts[1].role == cl::host_role::replica);
  c.execute("CREATE TABLE IF NOT EXISTS cluster_switchover (id BIGINT AUTO_INCREMENT PRIMARY KEY, v TEXT)");
  {
    // An operator switches over once the replica has caught up: here, once it has the table.
    infra::mysql::connection replica(replica_url);
    REQUIRE(eventually_ok([&] { return my_text(replica, "SELECT count(*) >= 0 FROM cluster_switchover") == "1"; }));
  }

  rebuild_replica_guard restore{"mysql", [] {
    infra::mysql::connection primary(servers::mysql_app_url()), replica(servers::mysql_replica_url());
    primary.execute("CREATE TABLE IF NOT EXISTS cluster_rebuilt (id BIGINT)");
    primary.execute("INSERT INTO cluster_rebuilt VALUES (1)");
    return my_text(replica, "SELECT @@global.read_only") == "1" &&
           my_text(replica, "SELECT count(*) > 0 FROM cluster_rebuilt") == "1";
  }};
  infra::mysql::connection old_primary(admin_url(primary_url));
  struct writable_again {  // runs before the rebuild (declared after it)
    infra::mysql::connection& admin;
    ~writable_again() {
      try { admin.execute("SET GLOBAL read_only = 0"); } catch (...) {}
    }
  } writable{old_primary};
  old_primary.execute("SET GLOBAL read_only = 1");
  servers::control("promote", "mysql-replica");
  const auto rounds = c.state()->rounds;

  const auto switched = std::chrono::steady_clock::now();
  auto e = error_of([&] { c.execute("INSERT INTO cluster_switchover (v) VALUES ('refused')"); });
  CHECK(e.native_code() == 1290);
  CHECK(eventually([&] { return c.state()->primary == 1u; }, 10s, 10ms));  // long before an hour
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - switched);
  INFO("followed after " << took.count() << " ms");
  CHECK(c.state()->rounds > rounds);  // an extra round, which only the error asked for
  CHECK(c.state()->hosts[0].role == cl::host_role::replica);  // read_only: seen as a replica now
  c.execute("INSERT INTO cluster_switchover (v) VALUES ('after')");
  infra::mysql::connection now_primary(replica_url);
  CHECK(my_text(now_primary, "SELECT count(*) FROM cluster_switchover WHERE v = 'after'") == "1");
}
#endif
