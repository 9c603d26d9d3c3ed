#pragma once
// The server backends the pool's integration tests run against, one struct each: the connection
// type, the server's name for servers.sh, a factory (3 s connect timeout), and the SQL the
// scenarios need. Stateless.

#include "support/servers.hpp"

#if defined(KYSERA_INFRA_HAS_MYSQL)
#include <kysera/infra/adapters/mysql.hpp>
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include <kysera/infra/adapters/postgres.hpp>
#endif

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace kysera::test::pool {

namespace infra = kysera::infra;
using namespace std::chrono_literals;

#if defined(KYSERA_INFRA_HAS_POSTGRES)
struct postgres_side {
  using connection = infra::postgres::connection;
  static constexpr const char* server = "postgres";
  static std::unique_ptr<connection> open() {
    infra::postgres::connection_options o;
    o.connect_timeout = 3s;
    return std::make_unique<connection>(kysera::test::servers::postgres_url(), o);
  }
  static std::int64_t scalar(connection& c, const std::string& sql) {
    return c.execute(sql).at(0).at(0).as<std::int64_t>();
  }
  static std::string session_id_sql() { return "SELECT pg_backend_pid()"; }
  static std::string count_sessions_sql(const std::string& ids) {
    return "SELECT count(*) FROM pg_stat_activity WHERE pid IN (" + ids + ")";
  }
  static std::string sleep_sql() { return "SELECT pg_sleep(1)"; }
};
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
struct mysql_side {
  using connection = infra::mysql::connection;
  static constexpr const char* server = "mysql";
  static std::unique_ptr<connection> open() {
    infra::mysql::connection_options o;
    o.connect_timeout = 3s;
    return std::make_unique<connection>(kysera::test::servers::mysql_url(), o);
  }
  static std::int64_t scalar(connection& c, const std::string& sql) {
    auto r = c.execute(sql);
    return std::stoll(r.at(0, 0).value());
  }
  static std::string session_id_sql() { return "SELECT CONNECTION_ID()"; }
  static std::string count_sessions_sql(const std::string& ids) {
    return "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (" + ids + ")";
  }
  static std::string sleep_sql() { return "SELECT SLEEP(1)"; }
};
#endif

}  // namespace kysera::test::pool
