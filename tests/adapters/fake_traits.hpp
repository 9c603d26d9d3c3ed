#pragma once
// The fake backend of the adapter contract suite (tests/adapters/contract_suite.hpp): an
// in-memory driver over the adapter skeleton (tests/support/fake_database.hpp), so the suite runs
// as a unit test with no server. A new adapter's traits start as a copy of this file.

#include "support/fake_database.hpp"

#include <cstdint>
#include <memory>
#include <string>

struct fake_backend {
  using connection = kysera::test::fake_connection;
  static constexpr const char* name = "fake";
  /// The fake has no server whose session a test could kill (or pause).
  static constexpr bool can_kill_session = false;

  static std::string url() { return "fake://app:" + password() + "@localhost/contract"; }
  static std::unique_ptr<connection> open() { return std::make_unique<connection>(url()); }
  static std::string password() { return std::string(connection::password); }
  static std::unique_ptr<connection> open_wrong_password() {
    return std::make_unique<connection>("fake://app:wrong-password@localhost/contract");
  }
  static std::string refused_url() { return "fake://app:" + password() + "@refused/contract"; }
  static std::string create_table_sql(std::string name) {
    return "CREATE TABLE " + name + " (id integer primary key, v text)";
  }
  /// Runs until cancelled.
  static std::string long_statement_sql() { return "WAIT FOR CANCEL"; }
  static std::string select_one_sql() { return "SELECT 1"; }
  static std::int64_t scalar(connection& c, std::string sql) { return std::stoll(c.execute(sql).at(0, 0).value()); }
  /// Not applicable (can_kill_session is false).
  static void kill_session(connection&) {}
};
