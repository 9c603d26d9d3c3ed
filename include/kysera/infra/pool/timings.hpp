#pragma once
/// \file
/// `pool_timings`: the three histograms a `connection_pool` fills when
/// `pool_options::record_timings` is set. Depends only on the metrics layer's leaf
/// `histogram`, never on the registry, which reads these when the pool is registered.

#include "../metrics/histogram.hpp"

namespace kysera::infra::pool {

/// Thread-safe and lock-free: the pool records from any thread while readers take `snapshot()`s
/// of the histograms. Each holds seconds in OpenTelemetry's advised buckets (0.001 ... 10 s, the
/// same as `db.client.operation.duration`), and is exported by `metrics::registry` under the name
/// in its comment, with `db.client.connection.pool.name` = the registered name.
///
///     if (const auto* t = pool.timings()) {
///       auto waits = t->wait_time.snapshot();  // waits.count == acquires so far
///     }
struct pool_timings {
  /// `db.client.connection.create_time`: each factory call, whether it opened a connection or
  /// threw (or returned null); on the acquiring thread or the housekeeper's (min_idle).
  metrics::histogram create_time;
  /// `db.client.connection.wait_time`: each acquire that obtained a connection, from the call
  /// to the lease (a connection it had to open included); timed-out and failed acquires are
  /// counted by `pool_statistics::timed_out` and `create_time` instead.
  metrics::histogram wait_time;
  /// `db.client.connection.use_time`: each lease, from being handed out to being returned.
  metrics::histogram use_time;
};

}  // namespace kysera::infra::pool
