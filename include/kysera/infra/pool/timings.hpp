#pragma once
/// \file
/// `pool_timings`: the three histograms a `connection_pool` fills when
/// `pool_options::record_timings` is set. Depends only on the metrics layer's leaf `histogram`,
/// never on the registry, which reads these when the pool is registered.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <memory>

#include "../metrics/histogram.hpp"

namespace kysera::infra::pool {

/// Thread-safe and lock-free: the pool records from any thread while readers take snapshots.
/// Each histogram holds seconds in the buckets of `db.client.operation.duration` (OpenTelemetry's
/// advised 0.001 ... 10 s, `metrics::operation_duration_buckets`) and is exported by `metrics::registry` under the name in its
/// comment, with `db.client.connection.pool.name` = the registered name. The wait and use
/// histograms are kept in up to 8 shards, chosen by the pool's slot, so that threads working on
/// their own connections do not share the counters' cache lines; a snapshot adds them up.
///
///     if (const auto* t = pool.timings()) {
///       auto waits = t->wait_time();  // waits.count == acquires so far
///     }
class pool_timings {
 public:
  /// For a pool of `slots` connections (at least 1).
  explicit pool_timings(std::size_t slots)
      : mask_(std::bit_floor(std::clamp<std::size_t>(slots, 1, max_shards)) - 1),
        shards_(new shard[mask_ + 1]) {}

  /// `db.client.connection.create_time`: each factory call, whether it opened a connection or
  /// threw (or returned null), on the acquiring thread or the housekeeper's (min_idle).
  metrics::histogram_snapshot create_time() const { return create_.snapshot(); }
  /// `db.client.connection.wait_time`: each acquire that obtained a connection, from the call to
  /// the lease (opening a connection included). One served by the lock-free path (an idle
  /// connection, no queue) records 0: it takes tens of nanoseconds, far below the first bucket,
  /// and not timing it saves one of the three clock reads of a timed acquire + release. Timed-out and failed acquires are
  /// counted by `pool_statistics::timed_out` and `create_time` instead.
  metrics::histogram_snapshot wait_time() const { return merged(&shard::wait); }
  /// `db.client.connection.use_time`: each lease, from being handed out to being returned.
  metrics::histogram_snapshot use_time() const { return merged(&shard::use); }

  // Recording, by the pool.
  template <class Duration>
  void record_create(Duration d) noexcept {
    create_.record(d);
  }
  template <class Duration>
  void record_wait(std::size_t slot, Duration d) noexcept {
    shards_[slot & mask_].wait.record(d);
  }
  template <class Duration>
  void record_use(std::size_t slot, Duration d) noexcept {
    shards_[slot & mask_].use.record(d);
  }

 private:
  static constexpr std::size_t max_shards = 8;

  struct alignas(64) shard {
    metrics::histogram wait;
    metrics::histogram use;
  };

  metrics::histogram_snapshot merged(metrics::histogram shard::*which) const {
    metrics::histogram_snapshot s = (shards_[0].*which).snapshot();
    for (std::size_t i = 1; i <= mask_; ++i) {
      const auto more = (shards_[i].*which).snapshot();
      for (std::size_t b = 0; b < s.counts.size(); ++b) s.counts[b] += more.counts[b];
      s.count += more.count;
      s.sum += more.sum;
    }
    return s;
  }

  const std::size_t mask_;
  const std::unique_ptr<shard[]> shards_;
  metrics::histogram create_;  // opening connections is a slow path: one histogram will do
};

}  // namespace kysera::infra::pool
