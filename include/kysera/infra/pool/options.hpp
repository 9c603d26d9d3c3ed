#pragma once
/// \file
/// What configures a `connection_pool` and what it counts: `pool_options` (with its validation)
/// and `pool_statistics` (with the formatting the pool's error messages use).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "../detail/format.hpp"
#include "../logger.hpp"

namespace kysera::infra::pool {

/// A value type: how a `connection_pool` behaves. Durations are `std::chrono::milliseconds` (`250ms` works);
/// one too large for the pool's clock (up to `milliseconds::max()`) saturates and means
/// "practically forever", never a wrapped-around "at once".
/// Invalid values make the pool's constructor throw `std::invalid_argument` naming the field.
///
///     kysera::infra::pool::pool_options o;
///     o.max_size = 20;
///     o.acquire_timeout = std::chrono::seconds(5);
struct pool_options {
  /// Most connections open at once, in [1, 1'000'000]. The pool allocates its slots up front
  /// (about 100 bytes each), so a larger value is rejected rather than attempted.
  std::size_t max_size = 10;
  /// Idle connections the housekeeper keeps open (<= max_size); idle_timeout never closes these.
  std::size_t min_idle = 0;
  /// How long `acquire()` waits for a free connection before throwing `errc::pool_exhausted`.
  std::chrono::milliseconds acquire_timeout{30000};
  /// The housekeeper closes a connection it has seen idle for this long, while more than min_idle
  /// are idle (so, as in HikariCP, between idle_timeout and idle_timeout + housekeeping_interval
  /// after its last use); 0 = never.
  std::chrono::milliseconds idle_timeout{600000};
  /// A connection older than this (minus jitter, below) is closed instead of handed out, and the
  /// housekeeper closes idle ones; 0 = never.
  std::chrono::milliseconds max_lifetime{1800000};
  /// A connection is pinged (`infra::ping`) before it is handed out, and discarded if that throws,
  /// unless it was handed out less than this long ago (then it certainly sat idle for less). Like
  /// HikariCP's 500 ms aliveBypassWindow: a connection used moments ago is trusted without a
  /// round trip. 0 pings on every reuse.
  std::chrono::milliseconds validation_threshold{500};
  /// Each connection's lifetime is shortened by a random fraction up to this much, so connections
  /// opened together do not all expire together. In [0, 0.5].
  double max_lifetime_jitter = 0.025;
  /// How often the background housekeeper closes expired idle connections and tops up min_idle.
  /// 0 starts no thread: call `maintain()` yourself (tests do, on a manual clock).
  std::chrono::milliseconds housekeeping_interval{30000};
  /// Where the pool reports discarded connections and factory failures (null: `default_logger()`).
  infra::logger* logger = nullptr;
  /// Fill the `create_time`, `wait_time` and `use_time` histograms (`connection_pool::timings()`,
  /// exported by `metrics::registry`). Off by default: it costs two clock reads and two
  /// histogram records per acquire + release, about 50 ns (docs/performance.md).
  bool record_timings = false;

  // During an outage (docs/pool.md#during-an-outage) -------------------------------------------

  /// Most connects in flight at once (userver's connecting_limit); acquires that would open one
  /// more queue until a connect ends. 0 = no limit beyond max_size.
  std::size_t max_connecting = 0;
  /// After this many consecutive failed connects the pool stops dialling for a backoff window;
  /// acquires that would need a new connection meanwhile fail at once with the last connect
  /// error. At least 1; `connect_backoff_initial` 0 turns the backoff off.
  std::size_t connect_backoff_after = 2;
  /// The first backoff window; each failed probe after one doubles it, up to
  /// `connect_backoff_max`. 0 = no backoff (every acquire may dial, as before).
  std::chrono::milliseconds connect_backoff_initial{100};
  /// The longest backoff window (>= connect_backoff_initial): once the server accepts again the
  /// pool serves within this (plus one connect).
  std::chrono::milliseconds connect_backoff_max{1000};
  /// Each window is drawn from [w * (1 - jitter), min(w * (1 + jitter), connect_backoff_max)],
  /// so pools that failed together do not probe together. In [0, 1].
  double connect_backoff_jitter = 0.2;
  /// Callers queued in `acquire` at most; one more throws `errc::pool_exhausted` at once.
  /// 0 = unbounded.
  std::size_t max_waiters = 0;
  /// A lease held longer than this is logged once (warn) with the place of its `acquire` call and
  /// the holding thread, and counted in `leaked` (HikariCP's leakDetectionThreshold). Checked by
  /// the housekeeper, which then runs at least this often. 0 = off.
  std::chrono::milliseconds leak_detection_threshold{0};
};

/// A value type: cumulative counters since the pool was made; `get_statistics()` returns a copy. Use them to
/// diagnose exhaustion: many `timed_out` with a high `max_wait` means the pool is too small or
/// leases are held too long; many `closed_broken` means the server drops sessions.
struct pool_statistics {
  std::uint64_t acquired = 0;           ///< leases handed out
  std::uint64_t waited = 0;             ///< acquires that could not take an idle connection at once
                                        ///< (they queued or opened a connection)
  std::uint64_t timed_out = 0;          ///< acquires that threw `errc::pool_exhausted`
  std::uint64_t created = 0;            ///< connections the factory opened
  std::uint64_t create_failed = 0;      ///< factory calls that threw (or returned null)
  std::uint64_t validated = 0;          ///< pings run on connections before handing them out
  std::uint64_t validation_failed = 0;  ///< of those, pings that threw (also in closed_broken)
  std::uint64_t closed_broken = 0;      ///< closed because broken: marked, or failed validation
  std::uint64_t closed_idle = 0;        ///< closed after idle_timeout
  std::uint64_t closed_lifetime = 0;    ///< closed after max_lifetime
  std::uint64_t closed_by_close = 0;    ///< closed by `close()`
  std::uint64_t connect_limited = 0;    ///< acquires that queued because `max_connecting` connects
                                        ///< were in flight
  std::uint64_t backoffs = 0;           ///< connect backoff windows begun (first one and each failed
                                        ///< probe)
  std::uint64_t throttled = 0;          ///< acquires failed fast in a backoff window (the last
                                        ///< connect error's errc)
  std::uint64_t rejected = 0;           ///< acquires that threw `pool_exhausted` at once because
                                        ///< `max_waiters` callers were queued
  std::uint64_t leaked = 0;             ///< leases held past `leak_detection_threshold`
  double total_wait = 0;                ///< ms spent by the `waited` acquires, summed
  double max_wait = 0;                  ///< ms, the longest of them

  /// All connections closed so far, whatever the reason.
  std::uint64_t closed() const noexcept {
    return closed_broken + closed_idle + closed_lifetime + closed_by_close;
  }
};

namespace detail {

/// The largest `pool_options::max_size` accepted: the slots are allocated up front, and a bound
/// keeps that allocation (and the size arithmetic behind it) sane.
inline constexpr std::size_t max_pool_size = 1'000'000;

/// Throws `std::invalid_argument` naming the first field of `o` that is out of range.
inline void validate(const pool_options& o) {
  if (o.max_size < 1) throw std::invalid_argument("pool_options.max_size must be at least 1");
  if (o.max_size > max_pool_size) {
    throw std::invalid_argument("pool_options.max_size must not exceed " +
                                std::to_string(max_pool_size) + " (got " +
                                std::to_string(o.max_size) + ")");
  }
  if (o.min_idle > o.max_size)
    throw std::invalid_argument("pool_options.min_idle must not exceed max_size");
  if (o.acquire_timeout.count() < 0)
    throw std::invalid_argument("pool_options.acquire_timeout must not be negative");
  if (o.idle_timeout.count() < 0)
    throw std::invalid_argument("pool_options.idle_timeout must not be negative");
  if (o.max_lifetime.count() < 0)
    throw std::invalid_argument("pool_options.max_lifetime must not be negative");
  if (o.validation_threshold.count() < 0)
    throw std::invalid_argument("pool_options.validation_threshold must not be negative");
  if (!(o.max_lifetime_jitter >= 0.0 && o.max_lifetime_jitter <= 0.5))
    throw std::invalid_argument("pool_options.max_lifetime_jitter must be in [0, 0.5]");
  if (o.housekeeping_interval.count() < 0)
    throw std::invalid_argument("pool_options.housekeeping_interval must not be negative");
  if (o.connect_backoff_after < 1)
    throw std::invalid_argument("pool_options.connect_backoff_after must be at least 1");
  if (o.connect_backoff_initial.count() < 0)
    throw std::invalid_argument("pool_options.connect_backoff_initial must not be negative");
  if (o.connect_backoff_max < o.connect_backoff_initial)
    throw std::invalid_argument(
        "pool_options.connect_backoff_max must not be less than connect_backoff_initial");
  if (!(o.connect_backoff_jitter >= 0.0 && o.connect_backoff_jitter <= 1.0))
    throw std::invalid_argument("pool_options.connect_backoff_jitter must be in [0, 1]");
  if (o.leak_detection_threshold.count() < 0)
    throw std::invalid_argument("pool_options.leak_detection_threshold must not be negative");
}

/// `ms` with two decimals, as the pool's messages print durations.
inline std::string format_ms(double ms) { return infra::detail::format_fixed2(ms); }

}  // namespace detail
}  // namespace kysera::infra::pool
