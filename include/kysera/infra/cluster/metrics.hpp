#pragma once
/// \file
/// `collect_cluster_metrics`: a cluster's per-host replication lag, round trip and role as
/// gauges, handed to a `metrics::visitor` (the Prometheus writer, or your exporter's adapter)
/// next to what a `metrics::registry` collects.

#include <array>
#include <chrono>
#include <span>
#include <string_view>

#include "../metrics/visitor.hpp"
#include "state.hpp"

namespace kysera::infra::cluster {

/// `collect_cluster_metrics(s, name, v)` hands `v` three gauge families for the snapshot `s`, each series with the attributes
/// `name` (yours, naming the cluster) and `host` (the host's redacted name), grouped by family
/// as the visitor contract asks:
///
/// | family | unit | value |
/// |---|---|---|
/// | `kysera.cluster.host.replication_lag` | s | replicas and the primary whose lag is known (the primary: 0) |
/// | `kysera.cluster.host.round_trip` | s | hosts that answered their last probe |
/// | `kysera.cluster.host.role` | | 1 for the host's role (attribute `role`: primary, replica, down, unknown), 0 for the others |
///
/// Reads only the snapshot: no round trip, no lock of the cluster's.
///
///     std::string text;
///     kysera::infra::metrics::prometheus_writer w(text);
///     reg.collect(w);
///     kysera::infra::cluster::collect_cluster_metrics(*db.state(), "main", w);
///     w.finish();
/// One cluster for the span form of `collect_cluster_metrics`: its name and a snapshot.
struct cluster_metrics_source {
  std::string_view name;
  const cluster_state* state = nullptr;
};

/// The gauges of several clusters in one pass, family by family (calling the single form once
/// per cluster would split each family, which the visitor contract forbids).
///
///     std::array<kysera::infra::cluster::cluster_metrics_source, 2> both{{{"orders", a.get()}, {"users", b.get()}}};
///     kysera::infra::cluster::collect_cluster_metrics(both, w);
inline void collect_cluster_metrics(std::span<const cluster_metrics_source> clusters, metrics::visitor& v) {
  using metrics::attribute;
  using metrics::descriptor;
  const auto seconds = [](auto d) { return std::chrono::duration<double>(d).count(); };
  static constexpr descriptor lag{"kysera.cluster.host.replication_lag", "s",
                                  "How far the host is behind the primary, as its last probe found."};
  for (const auto& c : clusters) {
    for (const auto& h : c.state->hosts) {
      if (!h.replication_lag || (h.role != host_role::replica && h.role != host_role::primary)) continue;
      const std::array<attribute, 2> a{{{"name", c.name}, {"host", h.name}}};
      v.on_gauge(lag, a, seconds(*h.replication_lag));
    }
  }
  static constexpr descriptor rtt{"kysera.cluster.host.round_trip", "s",
                                  "The round trip of the host's last successful probe."};
  for (const auto& c : clusters) {
    for (const auto& h : c.state->hosts) {
      if (!h.round_trip) continue;
      const std::array<attribute, 2> a{{{"name", c.name}, {"host", h.name}}};
      v.on_gauge(rtt, a, seconds(*h.round_trip));
    }
  }
  static constexpr descriptor role{"kysera.cluster.host.role", "",
                                   "1 for the role discovery found the host in, 0 for the others."};
  static constexpr std::array<host_role, 4> roles{host_role::primary, host_role::replica, host_role::down,
                                                  host_role::unknown};
  for (const auto& c : clusters) {
    for (const auto& h : c.state->hosts) {
      for (host_role r : roles) {
        const std::array<attribute, 3> a{{{"name", c.name}, {"host", h.name}, {"role", to_string(r)}}};
        v.on_gauge(role, a, h.role == r ? 1.0 : 0.0);
      }
    }
  }
}

/// The gauges of one cluster's snapshot `s` (see the table above).
inline void collect_cluster_metrics(const cluster_state& s, std::string_view name, metrics::visitor& v) {
  const cluster_metrics_source one{name, &s};
  collect_cluster_metrics(std::span<const cluster_metrics_source>(&one, 1), v);
}

}  // namespace kysera::infra::cluster
