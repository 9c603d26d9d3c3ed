#pragma once
// The two backends of the soak test (tests/reliability/soak_soak.cpp): how to open the pool's
// sessions and an admin session, the table the workers write to, and how the fault driver kills
// exactly the pool's sessions server-side.
//
// - PostgreSQL: the pool's sessions carry application_name "kysera-soak"; the admin session has
//   another name and terminates them with pg_terminate_backend.
// - MariaDB: the pool's sessions use their own schema "kysera_soak"; the admin session (schema
//   kysera_test) KILLs every session information_schema.PROCESSLIST lists in that schema.

#if defined(KYSERA_INFRA_HAS_MYSQL)
#include <kysera/infra/adapters/mysql.hpp>
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include <kysera/infra/adapters/postgres.hpp>
#endif

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "support/servers.hpp"

namespace kysera::test::soak {

#if defined(KYSERA_INFRA_HAS_POSTGRES)
/// PostgreSQL side of the soak test.
struct postgres_backend {
  using connection = infra::postgres::connection;
  static constexpr const char* name = "postgres";
  static constexpr const char* server = "postgres";  // for servers::control

  /// The URL the pool's factory uses, read once: servers.sh rewrites its env file on restart.
  static std::string worker_url() { return servers::postgres_url(); }

  /// A session for the pool: short connect timeout, recognisable application_name.
  static std::unique_ptr<connection> open_worker(const std::string& url) {
    infra::postgres::connection_options o;
    o.connect_timeout = std::chrono::seconds(2);
    o.application_name = "kysera-soak";
    return std::make_unique<connection>(url, o);
  }

  static std::string admin_url() { return servers::postgres_url(); }

  /// A session for setup, fault injection and verification; never killed by the driver.
  static std::unique_ptr<connection> open_admin(const std::string& url) {
    infra::postgres::connection_options o;
    o.connect_timeout = std::chrono::seconds(5);
    o.application_name = "kysera-soak-admin";
    return std::make_unique<connection>(url, o);
  }

  static void create_table(connection& admin) {
    admin.execute("DROP TABLE IF EXISTS kysera_soak_writes");
    admin.execute(
        "CREATE TABLE kysera_soak_writes (id bigint PRIMARY KEY, worker integer NOT NULL, "
        "v text NOT NULL)");
  }

  static void drop_table(connection& admin) {
    admin.execute("DROP TABLE IF EXISTS kysera_soak_writes");
  }

  static std::string insert_sql(std::int64_t key, int worker) {
    return "INSERT INTO kysera_soak_writes (id, worker, v) VALUES (" + std::to_string(key) + ", " +
           std::to_string(worker) + ", 'w" + std::to_string(key) + "')";
  }

  static std::string select_sql(std::int64_t key) {
    return "SELECT id FROM kysera_soak_writes WHERE id = " + std::to_string(key);
  }

  static std::string count_sql() {
    return "SELECT COUNT(*), COUNT(DISTINCT id) FROM kysera_soak_writes";
  }

  static std::string all_keys_sql() { return "SELECT id FROM kysera_soak_writes ORDER BY id"; }

  /// Every column of every row, as integers (NULL is not expected).
  static std::vector<std::vector<std::int64_t>> ints(connection& c, const std::string& sql) {
    auto r = c.execute(sql);
    std::vector<std::vector<std::int64_t>> out;
    out.reserve(r.size());
    for (const auto& row : r) {
      std::vector<std::int64_t> values;
      for (const auto& field : row) values.push_back(field.as<std::int64_t>());
      out.push_back(std::move(values));
    }
    return out;
  }

  /// Terminates every session of the pool (application_name kysera-soak) at once, then waits
  /// (polling, 10 s deadline) until the server has ended them all; returns how many it signalled.
  static int kill_sessions(connection& admin) {
    const std::string mine =
        "FROM pg_stat_activity WHERE application_name = 'kysera-soak' AND pid <> pg_backend_pid()";
    std::string pids;
    for (const auto& row : ints(admin, "SELECT pid " + mine)) {
      pids += (pids.empty() ? "" : ",") + std::to_string(row.at(0));
    }
    if (pids.empty()) return 0;
    // One statement signals them all; pg_terminate_backend(pid, timeout) would wait for each in
    // turn (in 100 ms steps), spreading the kill over most of a second.
    int killed = 0;
    for (const auto& row : admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                         "WHERE pid IN (" +
                                         pids + ")")) {
      if (row[0].as<bool>()) ++killed;
    }
    wait_until_gone(admin, "SELECT COUNT(*) FROM pg_stat_activity WHERE pid IN (" + pids + ")");
    return killed;
  }

  /// Polls `count_sql` until it answers 0 (10 s deadline; throws after that).
  static void wait_until_gone(connection& admin, const std::string& count_sql) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (ints(admin, count_sql).at(0).at(0) != 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("killed sessions still listed after 10 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
};
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
/// MariaDB side of the soak test.
struct mysql_backend {
  using connection = infra::mysql::connection;
  static constexpr const char* name = "mysql";
  static constexpr const char* server = "mysql";

  /// The test server's URL with the schema replaced by kysera_soak. Read once for the pool's
  /// factory: servers.sh rewrites its env file on restart.
  static std::string worker_url() {
    std::string u = servers::mysql_url();
    auto scheme_end = u.find("://");
    auto slash = u.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
    if (scheme_end == std::string::npos || slash == std::string::npos) {
      throw std::runtime_error("unexpected mysql test URL shape");
    }
    return u.substr(0, slash) + "/kysera_soak";
  }

  static std::unique_ptr<connection> open_worker(const std::string& url) {
    infra::mysql::connection_options o;
    o.connect_timeout = std::chrono::seconds(2);
    return std::make_unique<connection>(url, o);
  }

  static std::string admin_url() { return servers::mysql_url(); }

  static std::unique_ptr<connection> open_admin(const std::string& url) {
    infra::mysql::connection_options o;
    o.connect_timeout = std::chrono::seconds(5);
    return std::make_unique<connection>(url, o);
  }

  static void create_table(connection& admin) {
    admin.execute("CREATE DATABASE IF NOT EXISTS kysera_soak");
    admin.execute(
        "CREATE OR REPLACE TABLE kysera_soak.writes (id BIGINT PRIMARY KEY, worker INT NOT NULL, "
        "v VARCHAR(32) NOT NULL) ENGINE=InnoDB");
  }

  static void drop_table(connection& admin) {
    admin.execute("DROP TABLE IF EXISTS kysera_soak.writes");
  }

  static std::string insert_sql(std::int64_t key, int worker) {
    return "INSERT INTO kysera_soak.writes (id, worker, v) VALUES (" + std::to_string(key) + ", " +
           std::to_string(worker) + ", 'w" + std::to_string(key) + "')";
  }

  static std::string select_sql(std::int64_t key) {
    return "SELECT id FROM kysera_soak.writes WHERE id = " + std::to_string(key);
  }

  static std::string count_sql() {
    return "SELECT COUNT(*), COUNT(DISTINCT id) FROM kysera_soak.writes";
  }

  static std::string all_keys_sql() { return "SELECT id FROM kysera_soak.writes ORDER BY id"; }

  static std::vector<std::vector<std::int64_t>> ints(connection& c, const std::string& sql) {
    auto r = c.execute(sql);
    std::vector<std::vector<std::int64_t>> out;
    out.reserve(r.size());
    for (const auto& row : r.values) {
      std::vector<std::int64_t> values;
      for (const auto& field : row) {
        if (!field) throw std::runtime_error("unexpected NULL from: " + sql);
        values.push_back(std::stoll(*field));
      }
      out.push_back(std::move(values));
    }
    return out;
  }

  /// KILLs every session in schema kysera_soak (the pool's, and any cancel helper of theirs),
  /// then waits (polling, 10 s deadline) until the server no longer lists them; returns how many
  /// KILLs the server accepted (a session may end by itself in between).
  static int kill_sessions(connection& admin) {
    auto ids = ints(admin,
                    "SELECT ID FROM information_schema.PROCESSLIST "
                    "WHERE DB = 'kysera_soak' AND ID <> CONNECTION_ID()");
    if (ids.empty()) return 0;
    int killed = 0;
    std::string list;
    for (const auto& row : ids) {
      list += (list.empty() ? "" : ",") + std::to_string(row.at(0));
      try {
        admin.execute("KILL " + std::to_string(row.at(0)));
        ++killed;
      } catch (const infra::database_error& e) {
        if (e.code() != infra::errc::query_failed) throw;  // 1094 unknown thread: it ended already
      }
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    const std::string count_sql =
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID IN (" + list + ")";
    while (ints(admin, count_sql).at(0).at(0) != 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("killed sessions still listed after 10 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return killed;
  }
};
#endif

}  // namespace kysera::test::soak
