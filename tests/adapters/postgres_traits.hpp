#pragma once
// The PostgreSQL side of the adapter contract suite (tests/adapters/contract_it.cpp), also used
// by tests/adapters/postgres_it.cpp. Talks to the server tests/support/servers.sh runs.

#include <kysera/infra/adapters/postgres.hpp>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "support/servers.hpp"

struct postgres_backend {
  using connection = kysera::infra::postgres::connection;
  static constexpr const char* name = "postgres";
  static constexpr bool can_kill_session = true;

  /// A new connection to the test server.
  static std::unique_ptr<connection> open() { return std::make_unique<connection>(url()); }

  /// postgres://postgres:<password>@127.0.0.1:<port>/postgres
  static std::string url() { return kysera::test::servers::postgres_url(); }

  static std::string password() { return kysera::test::servers::postgres_password(); }

  /// The test server's URL with `user:password` replaced (the URL's password is percent-safe).
  static std::string url_with_credentials(const std::string& user, const std::string& pass) {
    std::string u = url();
    auto scheme_end = u.find("://");
    auto at = u.find('@', scheme_end);
    if (scheme_end == std::string::npos || at == std::string::npos) {
      throw std::runtime_error("unexpected postgres test URL shape");
    }
    return u.substr(0, scheme_end + 3) + user + ":" + pass + u.substr(at);
  }

  /// Throws database_error(errc::authentication_failed).
  static std::unique_ptr<connection> open_wrong_password() {
    return std::make_unique<connection>(url_with_credentials("postgres", "wrong-Password-0"));
  }

  /// Nothing listens on port 1 of the loopback interface.
  static std::string refused_url() {
    std::string u = url();
    auto at = u.find('@');
    auto colon = u.find(':', at);
    auto slash = u.find('/', at);
    if (at == std::string::npos || colon == std::string::npos || slash == std::string::npos) {
      throw std::runtime_error("unexpected postgres test URL shape");
    }
    return u.substr(0, colon + 1) + "1" + u.substr(slash);
  }

  static std::string create_table_sql(std::string name) {
    return "CREATE TABLE " + name + " (id integer primary key, v text)";
  }

  /// Runs for 60 s unless cancelled.
  static std::string long_statement_sql() { return "SELECT pg_sleep(60)"; }

  static std::string select_one_sql() { return "SELECT 1"; }

  static std::int64_t scalar(connection& c, std::string sql) {
    auto r = c.execute(sql);
    return r.at(0).at(0).as<std::int64_t>();
  }

  /// Terminates `victim`'s server process from a second connection and waits (up to 5 s) until
  /// it has exited. Does not touch `victim`, so it works while `victim` runs a statement.
  static void kill_session(connection& victim) {
    int pid = victim.backend_pid();
    if (pid == 0) throw std::runtime_error("kill_session: the victim has no session");
    connection admin(url());
    auto r = admin.execute("SELECT pg_terminate_backend(" + std::to_string(pid) + ", 5000)");
    if (!r.at(0).at(0).as<bool>()) {
      throw std::runtime_error("kill_session: pg_terminate_backend(" + std::to_string(pid) +
                               ") failed");
    }
  }
};
