#pragma once
/// \file
/// `check_cluster_health`: a health result for a `cluster`, from its latest discovery snapshot
/// (no extra round trip).

#include <chrono>
#include <concepts>
#include <string>

#include "../detail/format.hpp"
#include "../health/result.hpp"
#include "state.hpp"

namespace kysera::infra::cluster {

/// A `health_check_result` for a cluster's state: one check per host, named "host <name>",
/// and the overall status. Unhealthy without a primary; degraded when a host is down, suspect
/// or not probed yet, or a replica is not usable (lag above `max_replication_lag`, or unknown);
/// else healthy. `metrics.check_latency` is the primary's probe round trip in ms. `errors` has
/// each unhealthy or degraded host's reason. `max_replication_lag` 0 ignores lag, as in
/// `cluster_options`.
///
///     auto r = kysera::infra::cluster::check_cluster_health(*db.state(), db.options().max_replication_lag);
///     if (r.status == kysera::infra::health::health_status::unhealthy) page_someone();
inline health::health_check_result check_cluster_health(const cluster_state& s,
                                                        std::chrono::milliseconds max_replication_lag) {
  using health::health_status;
  health::health_check_result r;
  r.status = s.primary ? health_status::healthy : health_status::unhealthy;
  if (!s.primary) r.errors.push_back("no primary");
  for (std::size_t i = 0; i < s.hosts.size(); ++i) {
    const host_state& h = s.hosts[i];
    health::health_check c;
    c.name = "host " + h.name;
    std::string why;
    if (h.role == host_role::primary && s.primary == i) {
      c.status = health_status::healthy;
      c.message = "primary";
    } else if (h.role == host_role::replica && !h.suspect &&
               (max_replication_lag.count() == 0 ||
                (h.replication_lag && *h.replication_lag <= max_replication_lag))) {
      c.status = health_status::healthy;
      c.message = "replica";
      if (h.replication_lag) c.message += ", lag " + std::to_string(h.replication_lag->count()) + " ms";
    } else {
      c.status = health_status::degraded;
      if (h.suspect) {
        why = "suspect";
      } else if (h.role == host_role::replica) {
        why = h.replication_lag ? "replica lagging " + std::to_string(h.replication_lag->count()) + " ms"
                                : "replica with unknown lag";
      } else if (h.role == host_role::primary) {
        why = "claims the primary role, not used";
      } else {
        why = std::string(to_string(h.role));
      }
      if (h.role == host_role::down && !h.last_error.empty()) why += ": " + h.last_error;
      c.message = why;
      r.errors.push_back(h.name + ": " + why);
      if (r.status == health_status::healthy) r.status = health_status::degraded;
    }
    r.checks.push_back(std::move(c));
  }
  if (const host_state* p = s.primary_host(); p && p->round_trip)
    r.metrics.check_latency = infra::detail::round2(static_cast<double>(p->round_trip->count()) / 1000.0);
  r.timestamp = std::chrono::system_clock::now();
  return r;
}

/// `check_cluster_health` of a cluster's latest snapshot, with its own `max_replication_lag`.
///
///     auto r = kysera::infra::cluster::check_cluster_health(db);
template <class Cluster>
  requires requires(const Cluster& c) {
    { *c.state() } -> std::convertible_to<const cluster_state&>;
    c.options().max_replication_lag;
  }
health::health_check_result check_cluster_health(const Cluster& c) {
  return check_cluster_health(*c.state(), c.options().max_replication_lag);
}

}  // namespace kysera::infra::cluster
