// The replication fixture the cluster work builds on: a PostgreSQL primary with a streaming
// replica and a MariaDB primary with a replica (tests/support/servers.sh replication-up), in a
// state directory of their own. These tests pin what the fixture promises: each replica follows
// its primary, reports itself as a replica, and refuses writes with the error a read-only host
// gives. (ctest may run test cases in any order, so none of them promotes a replica.)
#include "support/catch.hpp"
#include "support/error_of.hpp"
#include "support/eventually.hpp"
#include "support/servers.hpp"

#include <kysera/infra.hpp>

#include <chrono>
#include <string>

namespace infra = kysera::infra;
using kysera::test::error_of;
namespace servers = kysera::test::servers;
using kysera::test::eventually;
using namespace std::chrono_literals;

#if defined(KYSERA_INFRA_HAS_POSTGRES)
namespace {
std::string pg_text(infra::postgres::connection& db, const std::string& sql) {
  auto r = db.execute(sql);
  return r[0][0].is_null() ? std::string("NULL") : r[0][0].c_str();
}
}  // namespace

TEST_CASE("postgres replica streams from its primary and refuses writes", "[replication][postgres]") {
  infra::postgres::connection primary(servers::postgres_url());
  infra::postgres::connection replica(servers::postgres_replica_url());
  CHECK(pg_text(primary, "SELECT pg_is_in_recovery()") == "f");
  CHECK(pg_text(replica, "SELECT pg_is_in_recovery()") == "t");
  CHECK(pg_text(replica, "SHOW transaction_read_only") == "on");
  // The primary sees the replica's WAL receiver (it reaches 'streaming' shortly after start).
  CHECK(eventually([&] {
    return pg_text(primary, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "1";
  }, 20s, 20ms));

  primary.execute("CREATE TABLE IF NOT EXISTS replication_probe (id bigint PRIMARY KEY, v text)");
  const std::string id = pg_text(primary, "SELECT coalesce(max(id), 0) + 1 FROM replication_probe");
  primary.execute("INSERT INTO replication_probe VALUES (" + id + ", 'from the primary')");
  CHECK(eventually([&] {
    try {  // until the replica has replayed the CREATE TABLE: "relation does not exist"
      return pg_text(replica, "SELECT count(*) FROM replication_probe WHERE id = " + id) == "1";
    } catch (const infra::database_error&) {
      return false;
    }
  }, 20s, 20ms));

  auto e = error_of([&] { replica.execute("INSERT INTO replication_probe VALUES (-1, 'x')"); });
  CHECK(e.sqlstate() == "25006");  // read_only_sql_transaction: what a failed-over host answers
  CHECK(replica.try_ping_until(std::chrono::steady_clock::now() + 5s));  // the session survives
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
namespace {
std::string my_text(infra::mysql::connection& db, const std::string& sql) {
  auto r = db.execute(sql);
  return r.at(0, 0).value_or("NULL");
}
}  // namespace

TEST_CASE("mariadb replica replicates its primary and refuses writes", "[replication][mysql]") {
  infra::mysql::connection primary(servers::mysql_app_url());
  infra::mysql::connection replica(servers::mysql_replica_url());
  CHECK(my_text(primary, "SELECT @@global.read_only") == "0");
  CHECK(my_text(replica, "SELECT @@global.read_only") == "1");
  auto status = replica.execute("SHOW SLAVE STATUS");
  REQUIRE(status.size() == 1);
  CHECK(status.at(0, "Slave_IO_Running").value_or("") == "Yes");
  CHECK(status.at(0, "Slave_SQL_Running").value_or("") == "Yes");
  CHECK(status.at(0, "Seconds_Behind_Master").has_value());

  primary.execute("CREATE TABLE IF NOT EXISTS replication_probe (id BIGINT PRIMARY KEY, v TEXT)");
  const std::string id = my_text(primary, "SELECT coalesce(max(id), 0) + 1 FROM replication_probe");
  primary.execute("INSERT INTO replication_probe VALUES (" + id + ", 'from the primary')");
  CHECK(eventually([&] {
    try {
      return my_text(replica, "SELECT count(*) FROM replication_probe WHERE id = " + id) == "1";
    } catch (const infra::database_error&) {
      return false;  // the CREATE TABLE has not been applied yet: not yet
    }
  }, 20s, 20ms));

  auto e = error_of([&] { replica.execute("INSERT INTO replication_probe VALUES (-1, 'x')"); });
  CHECK(e.native_code() == 1290);  // ER_OPTION_PREVENTS_STATEMENT: --read-only
}
#endif
