#pragma once
/// \file
/// `cluster_traits<mysql::connection>`: how a `cluster` probes a MariaDB/MySQL host (role from
/// `@@global.read_only`, lag from `Seconds_Behind_Master` of the replica status) and which
/// errors mean "no longer writable".

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "../../cluster/traits.hpp"
#include "connection.hpp"

namespace kysera::infra::cluster {

/// Stateless (thread-safe). The MariaDB/MySQL role probe: two statements. The account needs
/// SLAVE MONITOR (MariaDB 10.5+) or REPLICATION CLIENT to read the replica status.
template <>
struct cluster_traits<infra::mysql::connection> {
  /// What the cluster's state and logs call the host: the URL without its password and
  /// parameters (`mysql://app@db1:3306/app`).
  static std::string describe(const std::string& url) {
    infra::mysql::connection_options ignored;
    return infra::mysql::detail::describe(infra::mysql::detail::parse_mysql_url(url, ignored));
  }

  static std::unique_ptr<infra::mysql::connection> open(const std::string& url) {
    return std::make_unique<infra::mysql::connection>(url);
  }

  /// connect, read and write timeouts = `timeout` (the client counts whole seconds).
  static std::unique_ptr<infra::mysql::connection> open_probe(const std::string& url,
                                                              std::chrono::milliseconds timeout) {
    infra::mysql::connection_options o;
    o.connect_timeout = timeout;
    o.read_timeout = timeout;
    o.write_timeout = timeout;
    o.statement_deadline = timeout;  // cancel and cut at the deadline, not at the read timeout
    return std::make_unique<infra::mysql::connection>(url, o);
  }

  /// read_only = 0: primary. Else a replica; its lag is Seconds_Behind_Master (empty when NULL,
  /// i.e. the SQL thread is not running, or when the host replicates from nothing).
  static probe_result probe(infra::mysql::connection& c) {
    probe_result out;
    const auto ro = c.execute("SELECT @@global.read_only");
    if (ro.at(0, 0).value_or("1") == "0") {
      out.role = host_role::primary;
      return out;
    }
    out.role = host_role::replica;
    const auto status = c.execute("SHOW SLAVE STATUS");
    if (status.size() >= 1) {
      const auto& lag = status.at(0, "Seconds_Behind_Master");
      if (lag) out.replication_lag = std::chrono::seconds(std::stoll(*lag));
    }
    return out;
  }

  /// 1290 ER_OPTION_PREVENTS_STATEMENT when the option is --read-only (1290 also names other
  /// options), 1836 ER_READ_ONLY_MODE, 1792 ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION.
  static bool not_writable(const database_error& e) noexcept {
    const int n = e.native_code();
    if (n == 1290) return std::string_view(e.what()).find("read-only") != std::string_view::npos;
    return n == 1836 || n == 1792;
  }
};

}  // namespace kysera::infra::cluster
