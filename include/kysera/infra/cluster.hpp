#pragma once
/// \file
/// The cluster module: `cluster<Connection>` over a primary and its replicas, with discovery,
/// routing and error-driven failover (docs/cluster.md). Include an adapter's header as well
/// (postgres.hpp, mysql.hpp): it brings the `cluster_traits` the cluster needs.
///
///     #include <kysera/infra/cluster.hpp>
///     #include <kysera/infra/adapters/postgres.hpp>

#include "cluster/cluster.hpp"
#include "cluster/health.hpp"
#include "cluster/metrics.hpp"
#include "cluster/options.hpp"
#include "cluster/state.hpp"
#include "cluster/traits.hpp"
