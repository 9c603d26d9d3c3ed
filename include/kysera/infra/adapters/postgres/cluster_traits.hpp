#pragma once
/// \file
/// `cluster_traits<postgres::connection>`: how a `cluster` probes a PostgreSQL host (role from
/// `pg_is_in_recovery()` and `transaction_read_only`, lag from the replay timestamp, 0 when the
/// replica has replayed all it received) and which errors mean "no longer writable".

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "../../cluster/traits.hpp"
#include "connection.hpp"

namespace kysera::infra::cluster {

/// Stateless (thread-safe). The PostgreSQL role probe: one statement.
template <>
struct cluster_traits<infra::postgres::connection> {
  /// One query: in recovery?, transaction_read_only, and the lag in ms: 0 when everything
  /// received has been replayed (an idle primary sends nothing, so the replay timestamp alone
  /// would grow forever), else now() - pg_last_xact_replay_timestamp(); NULL when unknown.
  static constexpr std::string_view probe_sql =
      "SELECT pg_is_in_recovery(), current_setting('transaction_read_only'), "
      "CASE WHEN NOT pg_is_in_recovery() THEN 0 "
      "WHEN pg_last_wal_receive_lsn() IS NOT NULL AND pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
      "ELSE floor(extract(epoch FROM now() - pg_last_xact_replay_timestamp()) * 1000) END";

  static std::unique_ptr<infra::postgres::connection> open(const std::string& url) {
    return std::make_unique<infra::postgres::connection>(url);
  }

  /// connect_timeout and statement_timeout = `timeout` (libpq counts whole seconds, at least 2).
  static std::unique_ptr<infra::postgres::connection> open_probe(const std::string& url,
                                                                 std::chrono::milliseconds timeout) {
    infra::postgres::connection_options o;
    o.connect_timeout = timeout;
    o.statement_timeout = timeout;
    o.statement_deadline = timeout;  // client-side too: a frozen server cannot enforce its own
    o.application_name = "kysera-infra-cluster";
    return std::make_unique<infra::postgres::connection>(url, o);
  }

  static probe_result probe(infra::postgres::connection& c) {
    auto r = c.execute(probe_sql);
    probe_result out;
    const bool in_recovery = std::string_view(r[0][0].c_str()) == "t";
    const bool read_only = std::string_view(r[0][1].c_str()) == "on";
    out.role = in_recovery || read_only ? host_role::replica : host_role::primary;
    if (!r[0][2].is_null()) {
      const double ms = std::stod(r[0][2].c_str());
      out.replication_lag = std::chrono::milliseconds(static_cast<long long>(ms < 0 ? 0 : ms));
    }
    return out;
  }

  /// 25006 read_only_sql_transaction (a replica, or a primary turned read-only), 57P01
  /// admin_shutdown and 57P02 crash_shutdown (the server is going away), 57P03 cannot_connect_now
  /// (starting up, e.g. as a replica).
  static bool not_writable(const database_error& e) noexcept {
    const auto& s = e.sqlstate();
    return s == "25006" || s == "57P01" || s == "57P02" || s == "57P03";
  }
};

}  // namespace kysera::infra::cluster
