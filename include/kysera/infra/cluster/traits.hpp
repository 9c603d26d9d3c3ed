#pragma once
/// \file
/// `cluster_traits<Connection>`: what a `cluster` needs to know about a backend (how to open a
/// connection, how to ask a host its role and lag, which errors mean "no longer writable"),
/// and the concept `cluster_connection` that says a type has them. The PostgreSQL and MariaDB
/// adapters bring their specialisations (adapters/<backend>/cluster_traits.hpp).

#include <chrono>
#include <concepts>
#include <memory>
#include <optional>
#include <string>

#include "../database.hpp"
#include "../error.hpp"
#include "state.hpp"

namespace kysera::infra::cluster {

/// A value type: what one role probe found.
struct probe_result {
  host_role role = host_role::unknown;                        ///< primary or replica
  std::optional<std::chrono::milliseconds> replication_lag{};  ///< replicas; empty: unknown
};

/// Specialise for a connection type (the adapters do). Members, all static:
///
///     static std::unique_ptr<Connection> open(const std::string& url);
///         // a connection for a host's pool
///     static std::unique_ptr<Connection> open_probe(const std::string& url,
///                                                   std::chrono::milliseconds timeout);
///         // the discovery connection: connecting and each statement bounded by about `timeout`
///     static probe_result probe(Connection& c);
///         // the host's role and lag, in as few round trips as the backend allows; throws on failure
///     static bool not_writable(const database_error& e) noexcept;
///         // the error says the host no longer takes writes (read-only, shutting down)
/// and optionally
///     static std::string describe(const std::string& url);
///         // the host's name in the state and logs, without a password (else the string with
///         // its password masked)
template <class Connection>
struct cluster_traits;

/// True when `cluster_traits<Connection>` is specialised with the members above.
template <class Connection>
concept cluster_connection =
    infra::database<Connection> &&
    requires(Connection& c, const std::string& url, std::chrono::milliseconds t, const database_error& e) {
      { cluster_traits<Connection>::open(url) } -> std::same_as<std::unique_ptr<Connection>>;
      { cluster_traits<Connection>::open_probe(url, t) } -> std::same_as<std::unique_ptr<Connection>>;
      { cluster_traits<Connection>::probe(c) } -> std::same_as<probe_result>;
      { cluster_traits<Connection>::not_writable(e) } -> std::same_as<bool>;
    };

}  // namespace kysera::infra::cluster
