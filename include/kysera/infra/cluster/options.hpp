#pragma once
/// \file
/// `cluster_options` (how a `cluster` discovers and routes) and their validation.

#include <chrono>
#include <functional>
#include <stdexcept>

#include "../logger.hpp"
#include "../pool/options.hpp"
#include "state.hpp"

namespace kysera::infra::cluster {

/// How `replica()` picks among the replicas it may use.
enum class replica_selection {
  nearest,      ///< the one with the smallest probe round trip
  round_robin,  ///< each call the next one
};

/// A value type: how a `cluster` behaves. Invalid values make the cluster's constructor throw
/// `std::invalid_argument` naming the field.
///
///     kysera::infra::cluster::cluster_options o;
///     o.discovery_interval = std::chrono::milliseconds(500);
///     o.max_replication_lag = std::chrono::seconds(5);
///     o.selection = kysera::infra::cluster::replica_selection::round_robin;
struct cluster_options {
  /// How often the discovery thread probes every host. 0 starts no thread: call `discover()`
  /// yourself (tests do). Must not be negative.
  std::chrono::milliseconds discovery_interval{1000};
  /// Bound on one host's probe: the bounded ping (`try_ping_until`), and the connect and
  /// statement timeouts of the probe connection where the backend's `cluster_traits` sets them.
  /// Must be positive.
  std::chrono::milliseconds probe_timeout{2000};
  /// Replicas further behind than this (or whose lag is unknown) are skipped by `replica()`;
  /// 0 ignores lag. Must not be negative.
  std::chrono::milliseconds max_replication_lag{60000};
  /// How `replica()` chooses.
  replica_selection selection = replica_selection::nearest;
  /// The options of each host's `connection_pool`.
  pool::pool_options pool{};
  /// Called once per role change a discovery round finds, on the thread that ran the round
  /// (the discovery thread), without the cluster's locks held; it must not throw and should be
  /// quick. Empty: none.
  std::function<void(const role_change&)> on_role_change{};
  /// Where role changes (info, warn when the primary is lost) go; null: `default_logger()`.
  infra::logger* logger = nullptr;
};

namespace detail {
/// Throws `std::invalid_argument` naming the first field of `o` that is out of range.
inline void validate(const cluster_options& o) {
  if (o.discovery_interval.count() < 0)
    throw std::invalid_argument("cluster_options.discovery_interval must not be negative");
  if (o.probe_timeout.count() <= 0)
    throw std::invalid_argument("cluster_options.probe_timeout must be positive");
  if (o.max_replication_lag.count() < 0)
    throw std::invalid_argument("cluster_options.max_replication_lag must not be negative");
  pool::detail::validate(o.pool);
}
}  // namespace detail

}  // namespace kysera::infra::cluster
