#pragma once
/// \file
/// The pure parts of a cluster's routing (internal): the replica candidates of a snapshot in
/// preference order, their packing into one word, the hosts' names and the "no primary" message.

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "../../error.hpp"
#include "../options.hpp"
#include "../state.hpp"
#include "../traits.hpp"
#include "names.hpp"

namespace kysera::infra::cluster::detail {

/// The usable replicas of `s` in preference order: nearest first for `nearest` (ties keep host
/// order), host order for round robin (the caller rotates).
inline std::vector<std::size_t> replica_candidates(const cluster_state& s, replica_selection selection) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < s.hosts.size(); ++i)
    if (s.hosts[i].eligible_replica && !s.hosts[i].suspect) order.push_back(i);
  if (order.size() >= 2 && selection == replica_selection::nearest) {
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
      return s.hosts[a].round_trip.value_or(std::chrono::microseconds::max()) <
             s.hosts[b].round_trip.value_or(std::chrono::microseconds::max());
    });
  }
  return order;
}

/// `replica_candidates` packed into one word for routing without the snapshot: byte 0 the count,
/// bytes 1-7 the host indices; `route_overflow` when it does not fit (more than 7 candidates, or
/// an index above 254), and routing then reads the snapshot.
inline constexpr std::uint64_t route_overflow = 0xFF;
inline std::uint64_t pack_route(const std::vector<std::size_t>& order) noexcept {
  if (order.size() > 7) return route_overflow;
  std::uint64_t packed = order.size();
  for (std::size_t k = 0; k < order.size(); ++k) {
    if (order[k] > 254) return route_overflow;
    packed |= static_cast<std::uint64_t>(order[k]) << (8 * (k + 1));
  }
  return packed;
}

/// Every host with its role, for error messages.
inline std::string summary(const cluster_state& s) {
  std::string out;
  for (const auto& h : s.hosts) {
    if (!out.empty()) out += "; ";
    out += h.name + " " + std::string(to_string(h.role));
    if (h.suspect) out += " (suspect)";
    if (h.role == host_role::replica && !h.eligible_replica) out += " (lagging)";
  }
  return out;
}

inline database_error no_primary(const cluster_state& s) {
  return database_error(errc::connection_refused, "cluster: no primary (" + summary(s) + ")", "cluster");
}

/// The host's name in the state and in logs: the backend's own description of the connection
/// string where its traits have one (it never carries a password), else the string masked.
template <class Connection>
std::string host_name(const std::string& url) {
  if constexpr (requires { { cluster_traits<Connection>::describe(url) } -> std::convertible_to<std::string>; }) {
    try {
      return cluster_traits<Connection>::describe(url);
    } catch (const std::exception&) {
      // A string the backend cannot read fails at the first connect, with its own message.
    }
  }
  return display_name(url);
}

}  // namespace kysera::infra::cluster::detail
