#pragma once
/// \file
/// What a `cluster` observes, as value types: `host_role`, `host_state`, `cluster_state`
/// (one snapshot of every host) and `role_change` (what the role-change callback receives).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kysera::infra::cluster {

/// What discovery found a host to be.
enum class host_role {
  unknown,  ///< not probed yet, or marked suspect by an error and waiting for the next probe
  primary,  ///< accepts writes
  replica,  ///< answers but refuses writes (in recovery, or read-only)
  down,     ///< the last probe failed (no connection, timeout, error)
};

/// "unknown", "primary", "replica" or "down".
constexpr std::string_view to_string(host_role role) noexcept {
  switch (role) {
    case host_role::unknown: return "unknown";
    case host_role::primary: return "primary";
    case host_role::replica: return "replica";
    case host_role::down: return "down";
  }
  return "unknown";
}

/// A value type: one host as the cluster last saw it.
struct host_state {
  /// The host's name, safe to log: the backend's description of its connection string (our
  /// adapters: `postgres://app@db1:5432/app`, no password), else the string with its password
  /// replaced by "***".
  std::string name{};
  host_role role = host_role::unknown;
  /// Replicas only: how far behind the primary it is (0 when it has replayed all it received);
  /// empty when the server cannot tell (PostgreSQL that never replayed anything, MariaDB whose
  /// SQL thread is stopped).
  std::optional<std::chrono::milliseconds> replication_lag{};
  /// The round trip of the last successful probe's ping; empty when the host is down.
  std::optional<std::chrono::microseconds> round_trip{};
  /// True when an error on a routed statement said the host is no longer writable (or its
  /// session broke) after the last probe; the next probe clears it.
  bool suspect = false;
  /// Whether `replica()` may route to it now (a replica that answered and is within
  /// `max_replication_lag`).
  bool eligible_replica = false;
  /// The most recent error seen for this host (a probe or a routed statement); empty if none.
  std::string last_error{};
  /// Probes run against this host so far.
  std::uint64_t probes = 0;
  /// When the last probe finished (wall clock); the epoch before the first.
  std::chrono::system_clock::time_point last_probe{};
};

/// A value type: every host, in the order given to the cluster, and who is primary.
struct cluster_state {
  std::vector<host_state> hosts{};
  /// Index into `hosts` of the primary statements go to; empty when there is none (no host
  /// claims it, the claimant is suspect, or more than one claims it).
  std::optional<std::size_t> primary{};
  /// Discovery rounds completed so far.
  std::uint64_t rounds = 0;

  /// The primary's state, or null.
  const host_state* primary_host() const noexcept { return primary ? &hosts[*primary] : nullptr; }
};

/// A value type: a host's role changed between two discovery rounds.
struct role_change {
  std::size_t host = 0;  ///< index into `cluster_state::hosts`
  std::string name{};    ///< as `host_state::name`
  host_role from = host_role::unknown;
  host_role to = host_role::unknown;
};

}  // namespace kysera::infra::cluster
