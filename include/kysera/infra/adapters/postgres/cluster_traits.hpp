#pragma once
/// \file
/// `cluster_traits<postgres::connection>`: how a `cluster` probes a PostgreSQL host (role from
/// `pg_is_in_recovery()` and `transaction_read_only`, lag from the replay timestamp, 0 when the
/// replica has replayed all it received) and which errors mean "no longer writable".

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../../cluster/traits.hpp"
#include "connection.hpp"

namespace kysera::infra::postgres {

/// One connection string per host of a multi-host PostgreSQL connection string, for a `cluster`:
/// `postgresql://app:pw@db1:5432,db2:5433/app` or `host=db1,db2 port=5432,5433 dbname=app`
/// (libpq's two spellings) give two keyword/value strings, each with one host (and its port or
/// the one port for all, and its `hostaddr`) and every other setting of the original, except
/// `target_session_attrs` and `load_balance_hosts`: those choose among hosts, which the cluster
/// does itself (a `read-write` one would make every replica's pool fail). A single-host string
/// comes back as it is. Throws `database_error(errc::invalid_url)`, as the connection would, for
/// what libpq rejects and when the host, hostaddr and port lists differ in length (one port may
/// serve every host); the message never quotes the string.
///
///     kysera::infra::cluster::cluster<kysera::infra::postgres::connection> db(
///         kysera::infra::postgres::split_hosts("postgresql://app:pw@db1,db2/app"));
inline std::vector<std::string> split_hosts(std::string_view connection_string) {
  const detail::conninfo c = detail::parse_connection_string(connection_string);
  const auto hosts = detail::split_list(c.value("host"));
  const auto addrs = detail::split_list(c.value("hostaddr"));
  const auto ports = detail::split_list(c.value("port"));
  const std::size_t n = std::max(hosts.size(), addrs.size());
  if (n <= 1 && ports.size() <= 1) return {std::string(connection_string)};
  const auto fits = [n](std::size_t size, bool one_for_all) { return size == 0 || size == n || (one_for_all && size == 1); };
  if (!fits(hosts.size(), false) || !fits(addrs.size(), false) || !fits(ports.size(), true)) {
    detail::invalid_connection_string(std::to_string(hosts.size()) + " hosts, " + std::to_string(addrs.size()) +
                                      " host addresses and " + std::to_string(ports.size()) +
                                      " ports (the lists must be as long as each other; one port may serve every host)");
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < n; ++i) {
    std::string one;
    for (const auto& [key, value] : c.params) {
      std::string_view v = value;
      if (key == "target_session_attrs" || key == "load_balance_hosts") continue;
      if (key == "host") v = hosts[i];
      if (key == "hostaddr") v = addrs[i];
      if (key == "port") v = ports.size() == 1 ? ports[0] : ports[i];
      if (!one.empty()) one.push_back(' ');
      one += key + "=" + detail::quote_conninfo_value(v);
    }
    out.push_back(std::move(one));
  }
  return out;
}

}  // namespace kysera::infra::postgres

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

  /// What the cluster's state and logs call the host: the connection string as a URI without its
  /// password (`postgres://app@db1:5432/app`).
  static std::string describe(const std::string& url) {
    return infra::postgres::detail::describe(infra::postgres::detail::parse_connection_string(url));
  }

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
