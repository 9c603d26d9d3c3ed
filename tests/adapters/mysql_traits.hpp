#pragma once
// The MySQL/MariaDB backend of the adapter contract suite (tests/adapters/contract_it.cpp), run
// against the MariaDB server the `servers` fixture starts.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include <kysera/infra/adapters/mysql.hpp>

#include "support/servers.hpp"

struct mysql_backend {
  using connection = kysera::infra::mysql::connection;
  static constexpr const char* name = "mysql";
  static constexpr bool can_kill_session = true;

  static std::string url() { return kysera::test::servers::mysql_url(); }
  static std::string password() { return kysera::test::servers::mysql_password(); }

  static std::unique_ptr<connection> open() { return std::make_unique<connection>(url()); }

  /// The test URL with another password; constructing it throws authentication_failed.
  static std::string wrong_password_url() {
    std::string u = url();
    auto at = u.find(password());
    if (at == std::string::npos) throw std::runtime_error("test URL does not hold the test password");
    return u.replace(at, password().size(), "not-the-Password-4e1b");
  }
  static std::unique_ptr<connection> open_wrong_password() {
    return std::make_unique<connection>(wrong_password_url());
  }

  /// A loopback port nobody listens on: bound to an ephemeral port, then released.
  static std::string refused_url() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) throw std::runtime_error("socket() failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd);
      throw std::runtime_error("bind() failed");
    }
    ::close(fd);
    return "mysql://kysera:" + password() + "@127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) +
           "/kysera_test?connect_timeout=5";
  }

  /// MariaDB's CREATE OR REPLACE keeps reruns independent of what an earlier run left behind.
  static std::string create_table_sql(std::string name) {
    return "CREATE OR REPLACE TABLE " + name + " (id INTEGER PRIMARY KEY, v TEXT) ENGINE=InnoDB";
  }

  /// MariaDB 10.11 ends SELECT SLEEP() interrupted by KILL QUERY with error 1317 (checked by
  /// the mysql_it tests); some MySQL versions return 1 instead, where a CPU-bound query is needed.
  static std::string long_statement_sql() { return "SELECT SLEEP(60)"; }

  static std::string select_one_sql() { return "SELECT 1"; }

  static std::int64_t scalar(connection& c, std::string sql) {
    auto r = c.execute(sql);
    if (r.empty() || r.columns.empty() || !r.at(0, 0)) throw std::runtime_error("no scalar from: " + sql);
    return std::stoll(*r.at(0, 0));
  }

  /// `KILL <id>` of the victim's session from a second connection, then waits (polling the
  /// process list, 10 s deadline) until the server has really ended that session.
  static void kill_session(connection& victim) {
    std::uint64_t id = victim.connection_id();
    if (id == 0) throw std::runtime_error("kill_session: victim is not connected");
    connection killer(url());
    killer.execute("KILL " + std::to_string(id));
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (scalar(killer, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = " +
                              std::to_string(id)) != 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("kill_session: session " + std::to_string(id) + " still listed after 10 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
};
