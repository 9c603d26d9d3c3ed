#pragma once
/// \file
/// `connection_pool<Connection>`: a bounded, thread-safe pool over any `infra::database` type,
/// with `pool_options`, `pool_statistics`, and its `pool_traits` specialisation.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#if defined(__linux__)
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

#include "../database.hpp"
#include "../detail/time.hpp"
#include "../error.hpp"
#include "../logger.hpp"
#include "metrics.hpp"

#if defined(__GNUC__) || defined(__clang__)
#define KYSERA_INFRA_POOL_NOINLINE [[gnu::noinline]]
#define KYSERA_INFRA_POOL_LIKELY(x) __builtin_expect(!!(x), 1)
#define KYSERA_INFRA_POOL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define KYSERA_INFRA_POOL_NOINLINE
#define KYSERA_INFRA_POOL_LIKELY(x) (x)
#define KYSERA_INFRA_POOL_UNLIKELY(x) (x)
#endif

namespace kysera::infra::pool {

/// How a `connection_pool` behaves. Durations are `std::chrono::milliseconds` (`250ms` works);
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
};

/// Cumulative counters since the pool was made; `get_statistics()` returns a copy. Use them to
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
  double total_wait = 0;                ///< ms spent by the `waited` acquires, summed
  double max_wait = 0;                  ///< ms, the longest of them

  /// All connections closed so far, whatever the reason.
  std::uint64_t closed() const noexcept {
    return closed_broken + closed_idle + closed_lifetime + closed_by_close;
  }
};

namespace detail {

/// The clock the hot path reads: `Clock::now()`, except for `steady_clock` on Linux, where
/// CLOCK_MONOTONIC_COARSE (same epoch, a few ms resolution, ~4x cheaper) is plenty for idle and
/// lifetime checks measured in hundreds of milliseconds.
template <class Clock>
struct coarse_clock {
  static typename Clock::time_point now() noexcept { return Clock::now(); }
};

#if defined(__linux__) && defined(CLOCK_MONOTONIC_COARSE)
template <>
struct coarse_clock<std::chrono::steady_clock> {
  static std::chrono::steady_clock::time_point now() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return std::chrono::steady_clock::time_point(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::seconds(ts.tv_sec) + std::chrono::nanoseconds(ts.tv_nsec)));
  }
};
#endif

#if defined(__SANITIZE_THREAD__)
#define KYSERA_INFRA_POOL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KYSERA_INFRA_POOL_TSAN 1
#endif
#endif
#if defined(__linux__) && defined(SYS_membarrier) && !defined(KYSERA_INFRA_POOL_TSAN)
#define KYSERA_INFRA_POOL_MEMBARRIER 1
// The membarrier(2) commands we use; values fixed by the kernel ABI (<linux/membarrier.h>).
inline constexpr int membarrier_query = 0;
inline constexpr int membarrier_private_expedited = 1 << 3;
inline constexpr int membarrier_register_private_expedited = 1 << 4;
#endif

/// Asymmetric fences. Returning a connection (hot) and queueing a waiter or closing the pool
/// (rare) form a Dekker pair: each side writes its own word, then reads the other's. On Linux the
/// rare side pays for both with membarrier(PRIVATE_EXPEDITED), so the hot side needs only a
/// compiler barrier; elsewhere (and under ThreadSanitizer, which cannot see membarrier) both sides
/// use sequentially consistent operations.
inline std::atomic<bool>& light_fences_enabled() noexcept {
  static std::atomic<bool> enabled{false};
  return enabled;
}

/// Registers the process for expedited membarrier once; true when the heavy side may use it.
inline bool enable_asymmetric_fences() noexcept {
#if defined(KYSERA_INFRA_POOL_MEMBARRIER)
  static const bool ok = [] {
    long commands = ::syscall(SYS_membarrier, membarrier_query, 0, 0);
    if (commands < 0 || !(commands & membarrier_private_expedited)) return false;
    if (::syscall(SYS_membarrier, membarrier_register_private_expedited, 0, 0) != 0) return false;
    light_fences_enabled().store(true, std::memory_order_release);
    return true;
  }();
  return ok;
#else
  return false;
#endif
}

/// The rare side, after its own seq_cst write: makes every other thread's earlier writes visible.
inline void heavy_fence() noexcept {
#if defined(KYSERA_INFRA_POOL_MEMBARRIER)
  if (enable_asymmetric_fences()) ::syscall(SYS_membarrier, membarrier_private_expedited, 0, 0);
#endif
}

/// True for a `database_error` in our category whose code means the session is unusable.
inline bool is_broken_connection(const std::system_error& e) noexcept {
  return e.code().category() == infra::error_category() &&
         infra::is_connection_error(static_cast<infra::errc>(e.code().value()));
}

/// A slot's state word: a version (bumped on every change, so a double collect of all slots
/// detects any change in between) and a tag.
enum class slot_tag : std::uint64_t {
  empty = 0,     ///< no connection: free capacity
  creating = 1,  ///< reserved for a connection the factory is making
  idle = 2,      ///< open, free to lease
  reserved = 3,  ///< open and not leased, held by the housekeeper for a check (counts as idle)
  in_use = 4,    ///< leased (or being validated / handed over)
  closing = 5,   ///< being closed; still occupies capacity until close() returns
};

constexpr std::uint64_t slot_tag_mask = 7;

constexpr slot_tag tag_of(std::uint64_t state) noexcept { return static_cast<slot_tag>(state & slot_tag_mask); }

constexpr std::uint64_t next_state(std::uint64_t state, slot_tag tag) noexcept {
  return (state & ~slot_tag_mask) + (slot_tag_mask + 1) + static_cast<std::uint64_t>(tag);
}

/// A tiny thread-safe generator for lifetime jitter (splitmix64 over an atomic counter).
class jitter_source {
 public:
  explicit jitter_source(std::uint64_t seed) noexcept : state_(seed) {}
  /// Uniform in [0, 1).
  double next() noexcept {
    std::uint64_t z = state_.fetch_add(0x9E3779B97F4A7C15ull, std::memory_order_relaxed) + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return static_cast<double>(z >> 11) * 0x1.0p-53;
  }

 private:
  std::atomic<std::uint64_t> state_;
};

/// The largest `pool_options::max_size` accepted: the slots are allocated up front, and a bound
/// keeps that allocation (and the size arithmetic behind it) sane.
inline constexpr std::size_t max_pool_size = 1'000'000;

inline void validate(const pool_options& o) {
  if (o.max_size < 1) throw std::invalid_argument("pool_options.max_size must be at least 1");
  if (o.max_size > max_pool_size) {
    throw std::invalid_argument("pool_options.max_size must not exceed " + std::to_string(max_pool_size) + " (got " +
                                std::to_string(o.max_size) + ")");
  }
  if (o.min_idle > o.max_size) throw std::invalid_argument("pool_options.min_idle must not exceed max_size");
  if (o.acquire_timeout.count() < 0) throw std::invalid_argument("pool_options.acquire_timeout must not be negative");
  if (o.idle_timeout.count() < 0) throw std::invalid_argument("pool_options.idle_timeout must not be negative");
  if (o.max_lifetime.count() < 0) throw std::invalid_argument("pool_options.max_lifetime must not be negative");
  if (o.validation_threshold.count() < 0)
    throw std::invalid_argument("pool_options.validation_threshold must not be negative");
  if (!(o.max_lifetime_jitter >= 0.0 && o.max_lifetime_jitter <= 0.5))
    throw std::invalid_argument("pool_options.max_lifetime_jitter must be in [0, 0.5]");
  if (o.housekeeping_interval.count() < 0)
    throw std::invalid_argument("pool_options.housekeeping_interval must not be negative");
}

inline std::string format_ms(double ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", ms);
  return buf;
}

}  // namespace detail

/// A bounded pool of `Connection`s made by a factory. Thread-safe: every member may be called
/// from any thread; a `lease` is owned by one thread at a time.
///
/// Connections are opened lazily (up to `max_size`; the housekeeper keeps `min_idle` open), handed
/// out most-recently-used first, pinged before reuse when they sat idle longer than
/// `validation_threshold`, closed when broken, idle too long or too old, and every caller that
/// has to wait is served strictly first come, first served. The pool itself models `database`:
/// `execute` borrows a connection for one statement, so health checks, query metrics and
/// graceful shutdown work on it unchanged.
///
/// The destructor closes the pool and waits for leases still out (say, a health probe that timed
/// out) to come back. Do not destroy the pool from a thread that holds one of its leases (that
/// waits forever), nor while other threads still call into it.
///
///     using kysera::infra::postgres::connection;
///     kysera::infra::pool::connection_pool<connection> pool(
///         [] { return std::make_unique<connection>("postgres://app@db/app"); }, {.max_size = 20});
///     pool.execute("update jobs set state = 'done' where id = 7");
///     {
///       auto c = pool.acquire();          // waits up to acquire_timeout
///       c->execute("select 1");
///     }                                   // back in the pool, also when an exception escapes
template <infra::database Connection, class Clock = std::chrono::steady_clock>
class connection_pool {
  struct slot;

 public:
  using connection_type = Connection;
  using clock_type = Clock;
  /// Makes a connection; called on the thread that acquires, or on the housekeeping thread when
  /// it tops up `min_idle`. May throw (server down): the acquire that called it rethrows.
  using factory_type = std::function<std::unique_ptr<Connection>()>;

  /// A leased connection: move-only; returns the connection to the pool when destroyed, on every
  /// path, exceptions included. Owned by one thread at a time. Call `mark_broken()` when the
  /// session is unusable: the connection is then closed instead of reused (the pool's own
  /// `execute`, `transaction` and `with_connection` do that for connection errors).
  ///
  ///     auto c = pool.acquire();
  ///     c->execute("select 1");
  class lease {
   public:
    /// An empty lease (holds nothing).
    lease() noexcept = default;
    lease(lease&& other) noexcept
        : pool_(std::exchange(other.pool_, nullptr)),
          slot_(std::exchange(other.slot_, nullptr)),
          broken_(std::exchange(other.broken_, false)) {}
    lease& operator=(lease&& other) noexcept {
      if (this != &other) {
        release();
        pool_ = std::exchange(other.pool_, nullptr);
        slot_ = std::exchange(other.slot_, nullptr);
        broken_ = std::exchange(other.broken_, false);
      }
      return *this;
    }
    lease(const lease&) = delete;
    lease& operator=(const lease&) = delete;
    ~lease() {
      if (slot_) pool_->release(*slot_, broken_);
    }

    Connection& operator*() const noexcept { return *slot_->connection; }
    Connection* operator->() const noexcept { return slot_->connection.get(); }
    Connection& get() const noexcept { return *slot_->connection; }
    /// False for an empty or moved-from lease.
    explicit operator bool() const noexcept { return slot_ != nullptr; }

    /// The connection is unusable: close it when the lease ends instead of reusing it.
    void mark_broken() noexcept { broken_ = true; }
    /// Returns the connection now; the lease is empty afterwards. Does nothing on an empty lease.
    void release() noexcept {
      if (slot_) {
        pool_->release(*slot_, broken_);
        slot_ = nullptr;
        pool_ = nullptr;
        broken_ = false;
      }
    }

   private:
    friend class connection_pool;
    lease(connection_pool* pool, slot* s) noexcept : pool_(pool), slot_(s) {}

    connection_pool* pool_ = nullptr;
    slot* slot_ = nullptr;
    bool broken_ = false;
  };

  /// Validates `options` (`std::invalid_argument` naming the field) and starts the housekeeper
  /// unless `housekeeping_interval` is 0. Opens no connection itself; the housekeeper's first pass
  /// opens `min_idle`.
  explicit connection_pool(factory_type factory, pool_options options = {})
      : factory_(std::move(factory)),
        options_((detail::validate(options), options)),
        size_(options_.max_size),
        slots_(new slot[size_]),
        scratch_(new std::uint64_t[2 * size_]),
        seen_(new seen_idle[size_]),
        validation_threshold_(as_clock_duration(options_.validation_threshold)),
        idle_timeout_(as_clock_duration(options_.idle_timeout)),
        max_lifetime_(as_clock_duration(options_.max_lifetime)),
        jitter_(static_cast<std::uint64_t>(Clock::now().time_since_epoch().count()) ^
                reinterpret_cast<std::uintptr_t>(this)) {
    if (!factory_) throw std::invalid_argument("connection_pool: factory must not be empty");
    detail::enable_asymmetric_fences();
    if (options_.housekeeping_interval.count() > 0) {
      housekeeper_ = std::thread([this] { housekeeping_loop(); });
    }
  }

  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;

  /// Closes the pool, then waits for every lease still out and every caller still inside
  /// `acquire` to finish (logging a warning when that takes over a second).
  ~connection_pool() {
    close();
    std::unique_lock lock(mutex_);
    auto quiet = [this] { return inside_ == 0 && all_empty(); };
    if (!drained_cv_.wait_for(lock, std::chrono::seconds(1), quiet)) {
      lock.unlock();
      log(log_level::warn, "connection pool: destroyed while leases are still out; waiting for them to return");
      lock.lock();
      drained_cv_.wait(lock, quiet);
    }
  }

  /// Waits up to `acquire_timeout` for a connection. Throws `database_error` with
  /// `errc::pool_exhausted` (message carries the metrics) on timeout, `errc::pool_closed` after
  /// `close()`, or the factory's own error when opening a connection failed.
  ///
  ///     auto c = pool.acquire();
  lease acquire() { return acquire(options_.acquire_timeout); }

  /// As `acquire()`, waiting up to `timeout` (0: do not wait).
  ///
  ///     auto c = pool.acquire(std::chrono::milliseconds(200));
  lease acquire(std::chrono::milliseconds timeout) {
    if (timeout.count() < 0) throw std::invalid_argument("connection_pool::acquire: timeout must not be negative");
    if (slot* s = try_fast(); KYSERA_INFRA_POOL_LIKELY(s != nullptr)) return lease(this, s);
    return lease(this, acquire_slow(timeout, true));
  }

  /// A connection if one is idle or can be opened now (opening may block for the connect);
  /// `std::nullopt` when the pool is at `max_size` or others are already waiting. Throws
  /// `errc::pool_closed` after `close()` and the factory's error.
  ///
  ///     if (auto c = pool.try_acquire()) (*c)->execute("select 1");
  std::optional<lease> try_acquire() {
    if (slot* s = try_fast()) return lease(this, s);
    if (slot* s = acquire_slow(std::chrono::milliseconds(0), false)) return lease(this, s);
    return std::nullopt;
  }

  /// Borrows a connection, calls `fn(Connection&)` and returns the connection; returns what `fn`
  /// returns (by value). A `database_error` meaning the session is gone marks it broken.
  ///
  ///     auto n = pool.with_connection([](auto& c) { return count_rows(c); });
  template <class F>
  auto with_connection(F&& fn) -> std::decay_t<std::invoke_result_t<F&, Connection&>> {
    lease l = acquire();
    try {
      return std::invoke(fn, *l);
    } catch (const std::system_error& e) {
      if (detail::is_broken_connection(e)) l.mark_broken();
      throw;
    }
  }

  /// Borrows a connection, runs `sql` on it and returns `Connection::execute`'s result (by value).
  ///
  ///     pool.execute("delete from sessions where expires < now()");
  auto execute(std::string_view sql) {
    return with_connection([sql](Connection& c) -> decltype(auto) { return c.execute(sql); });
  }

  /// Borrows a connection and checks it with `infra::ping`: one real round trip (none more when
  /// acquiring it already pinged or opened it, so a health check measures one round trip).
  void ping() {
    lease l = acquire();
    if (l.slot_->proven) return;
    try {
      infra::ping(*l);
    } catch (const std::system_error& e) {
      if (detail::is_broken_connection(e)) l.mark_broken();
      throw;
    }
  }

  /// `try_ping_until` on an idle connection, for health checks (only where `Connection` has
  /// it): one bounded round trip on the calling thread, which also validates the connection.
  /// Returns false, having done nothing, when no connection is idle right now (acquiring would
  /// wait, or open a connection, which no deadline bounds) or the connection declines; the
  /// caller then pings another way (`ping()`). Errors are the connection's; one that means the
  /// session is gone marks it broken.
  ///
  ///     bool answered = pool.try_ping_until(std::chrono::steady_clock::now() + 500ms);
  bool try_ping_until(std::chrono::steady_clock::time_point deadline)
    requires infra::database_with_bounded_ping<Connection>
  {
    slot* s = try_fast<false>();
    if (s == nullptr) return false;
    lease l(this, s);
    try {
      return l->try_ping_until(deadline);
    } catch (const std::system_error& e) {
      if (detail::is_broken_connection(e)) l.mark_broken();
      throw;
    }
  }

  /// The server's version, through a borrowed connection. Only where `Connection` has it.
  std::string server_version()
    requires infra::database_with_server_version<Connection>
  {
    return with_connection([](Connection& c) { return std::string(c.server_version()); });
  }

  /// Runs `fn(Connection&)` in a transaction on one leased connection for the whole call. Only
  /// where `Connection` has `transaction`. Returns what `fn` returns.
  ///
  ///     pool.transaction([](auto& c) { c.execute("insert ..."); c.execute("update ..."); });
  template <class F>
    requires infra::database_with_transaction<Connection>
  decltype(auto) transaction(F&& fn) {
    return with_connection([&fn](Connection& c) -> decltype(auto) { return c.transaction(std::forward<F>(fn)); });
  }

  /// Stops new acquires (they throw `errc::pool_closed`, waiters too), closes idle connections
  /// now and leased ones as their leases end. Idempotent; waits for a connect in progress on the
  /// housekeeping thread.
  void close() noexcept {
    bool first = false;
    {
      std::lock_guard lock(mutex_);
      if (!(flags_.load(std::memory_order_relaxed) & closed_bit)) {
        first = true;
        flags_.fetch_or(closed_bit, std::memory_order_seq_cst);
        detail::heavy_fence();  // pairs with publish_idle
        while (head_) {
          waiter& w = *head_;
          unlink_locked(w);
          w.closed = true;
          w.done = true;
          w.cv.notify_one();
        }
        stopping_ = true;
        housekeeper_cv_.notify_all();
      }
    }
    if (!first) return;
    close_idle_connections();
    if (housekeeper_.joinable() && housekeeper_.get_id() != std::this_thread::get_id()) housekeeper_.join();
  }

  /// `close()`, then waits up to `timeout` for every lease to end and every connection to be
  /// closed. Returns whether that happened in time. For graceful shutdown.
  ///
  ///     if (!pool.close_for(std::chrono::seconds(10))) log("leases still out");
  bool close_for(std::chrono::milliseconds timeout) noexcept {
    close();
    const auto deadline = infra::detail::saturating_add(Clock::now(), timeout);
    std::unique_lock lock(mutex_);
    for (;;) {
      if (all_empty()) return true;
      if (Clock::now() >= deadline) return false;
      wait_step(lock, drained_cv_, deadline);
    }
  }

  /// An exact snapshot: total = idle + active open connections, waiting = callers blocked in
  /// acquire, max = `max_size`. Never throws.
  pool_metrics get_metrics() const noexcept {
    std::lock_guard lock(mutex_);
    return metrics_locked();
  }

  /// The cumulative counters. Each counter is exact once the pool is quiet; while it is busy they
  /// are read one after another.
  pool_statistics get_statistics() const noexcept {
    pool_statistics s;
    for (std::size_t i = 0; i < size_; ++i) s.acquired += slots_[i].acquired.load(std::memory_order_relaxed);
    s.waited = waited_.load(std::memory_order_relaxed);
    s.timed_out = timed_out_.load(std::memory_order_relaxed);
    s.created = created_.load(std::memory_order_relaxed);
    s.create_failed = create_failed_.load(std::memory_order_relaxed);
    s.validated = validated_.load(std::memory_order_relaxed);
    s.validation_failed = validation_failed_.load(std::memory_order_relaxed);
    s.closed_broken = closed_broken_.load(std::memory_order_relaxed);
    s.closed_idle = closed_idle_.load(std::memory_order_relaxed);
    s.closed_lifetime = closed_lifetime_.load(std::memory_order_relaxed);
    s.closed_by_close = closed_by_close_.load(std::memory_order_relaxed);
    s.total_wait = static_cast<double>(wait_total_ns_.load(std::memory_order_relaxed)) / 1e6;
    s.max_wait = static_cast<double>(wait_max_ns_.load(std::memory_order_relaxed)) / 1e6;
    return s;
  }

  bool is_closed() const noexcept { return (flags_.load(std::memory_order_acquire) & closed_bit) != 0; }

  const pool_options& options() const noexcept { return options_; }

  /// One housekeeping pass: closes idle connections past `max_lifetime`, and those the
  /// housekeeper has seen idle for `idle_timeout` while more than `min_idle` are idle, then opens
  /// connections up to `min_idle` (factory errors are logged and counted, not thrown). Idle time
  /// counts from the first pass that saw the connection idle, so (as in HikariCP) a connection is
  /// closed between idle_timeout and idle_timeout + housekeeping_interval after its last use. The
  /// housekeeping thread calls this every `housekeeping_interval`; call it yourself when that is 0.
  ///
  ///     pool.maintain();  // e.g. after moving a test clock forward
  void maintain() noexcept {
    std::lock_guard maintaining(maintain_mutex_);
    if (is_closed()) return;
    const auto now = Clock::now();
    std::size_t idle = 0;
    for (std::size_t i = 0; i < size_; ++i) {
      if (detail::tag_of(slots_[i].state.load(std::memory_order_relaxed)) == detail::slot_tag::idle) ++idle;
    }
    for (std::size_t i = 0; i < size_ && !is_closed(); ++i) {
      slot& s = slots_[i];
      auto st = s.state.load(std::memory_order_relaxed);
      if (detail::tag_of(st) != detail::slot_tag::idle) continue;
      // Versions only grow, so an unchanged word means nobody leased it since the last pass.
      const bool seen_before = seen_[i].state == st;
      const auto reserved = detail::next_state(st, detail::slot_tag::reserved);
      if (!s.state.compare_exchange_strong(st, reserved, std::memory_order_acquire, std::memory_order_relaxed)) continue;
      if (now >= s.expires_at) {
        discard(s, close_reason::lifetime);
        if (idle > 0) --idle;
      } else if (options_.idle_timeout.count() > 0 && seen_before && now - seen_[i].since >= idle_timeout_ &&
                 idle > options_.min_idle) {
        discard(s, close_reason::idle);
        --idle;
      } else {
        if (!seen_before) seen_[i].since = now;
        seen_[i].state = detail::next_state(reserved, detail::slot_tag::idle);
        publish_idle(s);
      }
    }
    // Top up min_idle, one connection at a time, never past max_size.
    while (!is_closed()) {
      slot* s = nullptr;
      {
        std::lock_guard lock(mutex_);
        std::size_t idle_now = 0;
        for (std::size_t i = 0; i < size_; ++i) {
          auto t = detail::tag_of(slots_[i].state.load(std::memory_order_relaxed));
          if (t == detail::slot_tag::idle || t == detail::slot_tag::reserved) ++idle_now;
        }
        if (idle_now >= options_.min_idle || is_closed()) break;
        s = claim_empty();
      }
      if (!s) break;
      std::unique_ptr<Connection> c;
      try {
        c = make_connection();
      } catch (const std::exception& e) {
        abandon_creating(*s);
        log(log_level::warn, std::string("connection pool: could not open a connection for min_idle: ") + e.what());
        break;
      } catch (...) {
        abandon_creating(*s);
        log(log_level::warn, "connection pool: could not open a connection for min_idle");
        break;
      }
      install(*s, std::move(c));
      if (is_closed()) {
        discard(*s, close_reason::pool_closed);
        break;
      }
      publish_idle(*s);
    }
  }

 private:
  enum class close_reason { broken, idle, lifetime, pool_closed };

  // An option in the clock's units; milliseconds::max() and the like saturate ("forever").
  static constexpr typename Clock::duration as_clock_duration(std::chrono::milliseconds d) noexcept {
    return infra::detail::saturating_duration_cast<typename Clock::duration>(d);
  }

  static constexpr std::uint32_t closed_bit = 1;
  static constexpr std::uint32_t waiters_bit = 2;
  static constexpr std::uint32_t gate_bit = 4;

  struct alignas(64) slot {
    std::atomic<std::uint64_t> state{0};
    // Owned by whoever holds the slot (creating / in_use / reserved / closing); published to the
    // next owner by the release store of `state` and the acquire CAS that claims it.
    std::unique_ptr<Connection> connection;
    typename Clock::time_point last_checkout{};  // when last handed out (or opened)
    typename Clock::time_point expires_at{};
    bool proven = false;  // opened or pinged by the acquire that handed it out
    // Written only by the owner (plain load + store, no RMW); read by get_statistics.
    std::atomic<std::uint64_t> acquired{0};
  };

  // What the housekeeper saw of a slot on its last pass (under maintain_mutex_).
  struct seen_idle {
    std::uint64_t state = ~std::uint64_t{0};
    typename Clock::time_point since{};
  };

  struct waiter {
    waiter* prev = nullptr;
    waiter* next = nullptr;
    slot* granted = nullptr;
    bool create = false;  // `granted` is reserved (creating): open a connection into it
    bool closed = false;
    bool done = false;
    std::condition_variable cv;
  };

  // Records the time an acquire spent in the slow path, on every exit.
  class wait_recorder {
   public:
    explicit wait_recorder(connection_pool& pool) noexcept : pool_(pool), start_(Clock::now()) {}
    ~wait_recorder() {
      if (counted_) finish();
    }
    wait_recorder(const wait_recorder&) = delete;
    wait_recorder& operator=(const wait_recorder&) = delete;
    void count() noexcept { counted_ = true; }
    // Records now (once), e.g. so that a timeout's message includes its own wait.
    void finish() noexcept {
      counted_ = false;
      auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start_).count();
      auto ns = static_cast<std::uint64_t>(elapsed > 0 ? elapsed : 0);
      pool_.waited_.fetch_add(1, std::memory_order_relaxed);
      pool_.wait_total_ns_.fetch_add(ns, std::memory_order_relaxed);
      auto prev = pool_.wait_max_ns_.load(std::memory_order_relaxed);
      while (prev < ns && !pool_.wait_max_ns_.compare_exchange_weak(prev, ns, std::memory_order_relaxed)) {
      }
    }
    typename Clock::time_point start() const noexcept { return start_; }

   private:
    connection_pool& pool_;
    typename Clock::time_point start_;
    bool counted_ = false;
  };

  // Hot path ------------------------------------------------------------------------------------

  // The slot this thread used last: reusing it keeps one connection per thread warm and the
  // threads off each other's cache lines. Only a hint, shared by all pools of this type.
  static inline thread_local std::size_t hint_ = 0;

  // Claims an idle connection without locking, unless the pool is closed, callers are queued
  // (they go first) or a snapshot is being taken. Without `Validate` the caller proves the
  // connection itself (a bounded ping) instead of check_out's unbounded one.
  template <bool Validate = true>
  slot* try_fast() noexcept {
    if (KYSERA_INFRA_POOL_UNLIKELY(flags_.load(std::memory_order_acquire) != 0)) return nullptr;
    const std::size_t n = size_;
    std::size_t i = hint_;
    if (i >= n) i = 0;
    for (std::size_t k = 0; k < n; ++k) {
      slot& s = slots_[i];
      auto st = s.state.load(std::memory_order_relaxed);
      if (detail::tag_of(st) == detail::slot_tag::idle &&
          s.state.compare_exchange_strong(st, detail::next_state(st, detail::slot_tag::in_use),
                                          std::memory_order_acquire, std::memory_order_relaxed)) {
        hint_ = i;
        if (KYSERA_INFRA_POOL_LIKELY(check_out<Validate>(s))) return &s;
      }
      if (++i == n) i = 0;
    }
    return nullptr;
  }

  // The caller owns `s` (in_use). Retires it if too old; pings it unless it was handed out less
  // than validation_threshold ago (then its idle time is certainly shorter). The only clock read
  // of an acquire-release cycle is here.
  template <bool Validate = true>
  bool check_out(slot& s) noexcept {
    const auto now = detail::coarse_clock<Clock>::now();
    if (KYSERA_INFRA_POOL_UNLIKELY(now >= s.expires_at)) {
      discard(s, close_reason::lifetime);
      return false;
    }
    bool proven = false;
    if constexpr (Validate) {
      if (KYSERA_INFRA_POOL_UNLIKELY(now - s.last_checkout >= validation_threshold_)) {
        if (!revalidate(s)) return false;
        proven = true;
      }
    }
    s.last_checkout = now;
    s.proven = proven;
    s.acquired.store(s.acquired.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    return true;
  }

  void release(slot& s, bool broken) noexcept {
    const auto flags = flags_.load(std::memory_order_relaxed);
    if (KYSERA_INFRA_POOL_UNLIKELY(broken || (flags & closed_bit))) {
      discard(s, broken ? close_reason::broken : close_reason::pool_closed);
      return;
    }
    publish_idle(s);
  }

  // The caller owns `s` with an open connection; makes it idle. This store and the flags load
  // after it pair with a waiter queueing or close() (flag write, heavy fence, slot reads): either
  // they see this slot idle, or this sees their flag and settles. So no waiter sleeps next to an
  // idle connection and no connection stays open after close().
  void publish_idle(slot& s) noexcept {
    const auto next = detail::next_state(s.state.load(std::memory_order_relaxed), detail::slot_tag::idle);
    std::uint32_t flags;
    if (KYSERA_INFRA_POOL_LIKELY(detail::light_fences_enabled().load(std::memory_order_relaxed))) {
      s.state.store(next, std::memory_order_release);
      std::atomic_signal_fence(std::memory_order_seq_cst);
      flags = flags_.load(std::memory_order_relaxed);
    } else {
      s.state.store(next, std::memory_order_seq_cst);
      flags = flags_.load(std::memory_order_seq_cst);
    }
    if (KYSERA_INFRA_POOL_UNLIKELY(flags & (closed_bit | waiters_bit))) settle(s);
  }

  // Slow paths ----------------------------------------------------------------------------------

  KYSERA_INFRA_POOL_NOINLINE bool revalidate(slot& s) noexcept {
    validated_.fetch_add(1, std::memory_order_relaxed);
    try {
      infra::ping(*s.connection);
    } catch (const std::exception& e) {
      validation_failed_.fetch_add(1, std::memory_order_relaxed);
      log(log_level::info, std::string("connection pool: discarding a connection that failed validation: ") + e.what());
      discard(s, close_reason::broken);
      return false;
    } catch (...) {
      validation_failed_.fetch_add(1, std::memory_order_relaxed);
      log(log_level::info, "connection pool: discarding a connection that failed validation");
      discard(s, close_reason::broken);
      return false;
    }
    return true;
  }

  // Counts a caller of the slow path in `inside_` until its very last touch of the pool.
  class caller_guard {
   public:
    explicit caller_guard(connection_pool& pool) noexcept : pool_(pool) {}
    ~caller_guard() {
      if (!counted_) return;
      std::lock_guard lock(pool_.mutex_);
      if (--pool_.inside_ == 0 && (pool_.flags_.load(std::memory_order_relaxed) & closed_bit))
        pool_.drained_cv_.notify_all();
    }
    caller_guard(const caller_guard&) = delete;
    caller_guard& operator=(const caller_guard&) = delete;
    void count() noexcept {  // under the lock
      ++pool_.inside_;
      counted_ = true;
    }

   private:
    connection_pool& pool_;
    bool counted_ = false;
  };

  KYSERA_INFRA_POOL_NOINLINE slot* acquire_slow(std::chrono::milliseconds timeout, bool throw_if_exhausted) {
    caller_guard inside(*this);  // destroyed last
    wait_recorder recorder(*this);
    const auto deadline = infra::detail::saturating_add(recorder.start(), timeout);
    std::unique_lock lock(mutex_);
    inside.count();
    for (;;) {
      if (flags_.load(std::memory_order_relaxed) & closed_bit) throw_closed();
      slot* s = nullptr;
      bool create = false;
      if (!head_) {  // nobody queued: take what there is
        s = claim_idle();
        if (!s) {
          s = claim_empty();
          create = s != nullptr;
        }
      }
      if (!s) {
        if (timeout.count() == 0 || Clock::now() >= deadline) {
          if (!throw_if_exhausted) return nullptr;
          recorder.finish();
          timed_out_.fetch_add(1, std::memory_order_relaxed);
          auto message = exhausted_message(timeout, metrics_locked());
          lock.unlock();
          throw database_error(errc::pool_exhausted, message, "pool");
        }
        recorder.count();
        waiter w;
        enqueue_locked(w);
        dispatch_locked();
        while (!w.done) {
          if (Clock::now() >= deadline) break;
          wait_step(lock, w.cv, deadline);
        }
        if (!w.done) {
          auto m = metrics_locked();  // still counts this caller as waiting
          unlink_locked(w);
          recorder.finish();
          timed_out_.fetch_add(1, std::memory_order_relaxed);
          auto message = exhausted_message(timeout, m);
          lock.unlock();
          throw database_error(errc::pool_exhausted, message, "pool");
        }
        if (w.closed) throw_closed();
        s = w.granted;
        create = w.create;
      }
      lock.unlock();
      if (create) {
        recorder.count();
        return create_into(*s);
      }
      if (check_out(*s)) return s;
      lock.lock();
    }
  }

  // `s` is reserved (creating) for the caller. Opens a connection into it and leases it.
  slot* create_into(slot& s) {
    std::unique_ptr<Connection> c;
    try {
      c = make_connection();
    } catch (...) {
      abandon_creating(s);
      throw;
    }
    install(s, std::move(c));
    if (is_closed()) {
      discard(s, close_reason::pool_closed);
      throw_closed();
    }
    s.acquired.store(s.acquired.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    const auto st = s.state.load(std::memory_order_relaxed);
    s.state.store(detail::next_state(st, detail::slot_tag::in_use), std::memory_order_release);
    return &s;
  }

  std::unique_ptr<Connection> make_connection() {
    try {
      auto c = factory_();
      if (!c) throw database_error(errc::backend_error, "connection pool: the factory returned no connection", "pool");
      created_.fetch_add(1, std::memory_order_relaxed);
      return c;
    } catch (...) {
      create_failed_.fetch_add(1, std::memory_order_relaxed);
      throw;
    }
  }

  void install(slot& s, std::unique_ptr<Connection> c) noexcept {
    const auto now = Clock::now();
    s.connection = std::move(c);
    s.last_checkout = now;
    s.proven = true;
    if (options_.max_lifetime.count() == 0 || max_lifetime_ == Clock::duration::max()) {
      s.expires_at = Clock::time_point::max();  // never; a lifetime beyond the clock is never too
    } else {
      auto life = max_lifetime_;
      if (options_.max_lifetime_jitter > 0) {
        auto cut = static_cast<double>(life.count()) * options_.max_lifetime_jitter * jitter_.next();
        life -= typename Clock::duration(static_cast<typename Clock::rep>(cut));
      }
      s.expires_at = infra::detail::saturating_add(now, life);
    }
  }

  // Gives the capacity of a reserved slot back after the factory failed.
  void abandon_creating(slot& s) noexcept {
    std::lock_guard lock(mutex_);
    const auto st = s.state.load(std::memory_order_relaxed);
    s.state.store(detail::next_state(st, detail::slot_tag::empty), std::memory_order_release);
    after_slot_freed_locked();
  }

  // The caller owns `s` with an open connection. Closes it (outside the lock) and frees the slot.
  KYSERA_INFRA_POOL_NOINLINE void discard(slot& s, close_reason reason) noexcept {
    const auto st = s.state.load(std::memory_order_relaxed);
    s.state.store(detail::next_state(st, detail::slot_tag::closing), std::memory_order_release);
    close_and_free(s, reason);
  }

  // `s` is closing and owned by the caller.
  void close_and_free(slot& s, close_reason reason) noexcept {
    std::unique_ptr<Connection> c = std::move(s.connection);
    try {
      c->close();
    } catch (const std::exception& e) {
      log(log_level::warn, std::string("connection pool: closing a connection failed: ") + e.what());
    } catch (...) {
      log(log_level::warn, "connection pool: closing a connection failed");
    }
    try {
      c.reset();
    } catch (...) {
      log(log_level::warn, "connection pool: destroying a connection failed");
    }
    switch (reason) {
      case close_reason::broken: closed_broken_.fetch_add(1, std::memory_order_relaxed); break;
      case close_reason::idle: closed_idle_.fetch_add(1, std::memory_order_relaxed); break;
      case close_reason::lifetime: closed_lifetime_.fetch_add(1, std::memory_order_relaxed); break;
      case close_reason::pool_closed: closed_by_close_.fetch_add(1, std::memory_order_relaxed); break;
    }
    std::lock_guard lock(mutex_);
    const auto st = s.state.load(std::memory_order_relaxed);
    s.state.store(detail::next_state(st, detail::slot_tag::empty), std::memory_order_release);
    after_slot_freed_locked();
  }

  void after_slot_freed_locked() noexcept {
    if (flags_.load(std::memory_order_relaxed) & closed_bit) {
      drained_cv_.notify_all();
    } else if (head_) {
      dispatch_locked();
    }
  }

  // `s` was just made idle and the pool has waiters or is closed. Takes it back (unless someone
  // already took it: then it is theirs to deal with) and hands it to the first waiter, or closes
  // it. Touches the pool only while owning `s` or holding the lock, so a destructor waiting for
  // leases cannot finish under its feet.
  KYSERA_INFRA_POOL_NOINLINE void settle(slot& s) noexcept {
    auto st = s.state.load(std::memory_order_seq_cst);
    if (detail::tag_of(st) != detail::slot_tag::idle ||
        !s.state.compare_exchange_strong(st, detail::next_state(st, detail::slot_tag::in_use),
                                         std::memory_order_seq_cst, std::memory_order_seq_cst))
      return;
    std::unique_lock lock(mutex_);
    if (flags_.load(std::memory_order_relaxed) & closed_bit) {
      lock.unlock();
      discard(s, close_reason::pool_closed);
    } else if (head_) {
      grant_locked(&s, false);
    } else {
      // The waiters left meanwhile; nobody can queue or close while we hold the lock.
      const auto now_state = s.state.load(std::memory_order_relaxed);
      s.state.store(detail::next_state(now_state, detail::slot_tag::idle), std::memory_order_seq_cst);
    }
  }

  void close_idle_connections() noexcept {
    for (;;) {
      slot* victim = nullptr;
      {
        std::lock_guard lock(mutex_);
        victim = claim_idle_for_close();
      }
      if (!victim) return;
      close_and_free(*victim, close_reason::pool_closed);
    }
  }

  // Under the lock: serve queued callers in order with idle connections, then with capacity.
  void dispatch_locked() noexcept {
    while (head_) {
      if (slot* s = claim_idle()) {
        grant_locked(s, false);
        continue;
      }
      if (flags_.load(std::memory_order_relaxed) & closed_bit) return;
      if (slot* s = claim_empty()) {
        grant_locked(s, true);
        continue;
      }
      return;
    }
  }

  slot* claim_idle() noexcept { return claim(detail::slot_tag::idle, detail::slot_tag::in_use); }
  slot* claim_empty() noexcept { return claim(detail::slot_tag::empty, detail::slot_tag::creating); }
  slot* claim_idle_for_close() noexcept { return claim(detail::slot_tag::idle, detail::slot_tag::closing); }

  slot* claim(detail::slot_tag from, detail::slot_tag to) noexcept {
    for (std::size_t i = 0; i < size_; ++i) {
      slot& s = slots_[i];
      auto st = s.state.load(std::memory_order_seq_cst);
      while (detail::tag_of(st) == from) {
        if (s.state.compare_exchange_weak(st, detail::next_state(st, to), std::memory_order_seq_cst,
                                          std::memory_order_seq_cst))
          return &s;
      }
    }
    return nullptr;
  }

  void enqueue_locked(waiter& w) noexcept {
    w.prev = tail_;
    w.next = nullptr;
    if (tail_) {
      tail_->next = &w;
    } else {
      head_ = &w;
    }
    tail_ = &w;
    ++waiting_;
    // Only the 0 -> 1 change needs the fence: while the bit stays set, every return sees it.
    if (!(flags_.fetch_or(waiters_bit, std::memory_order_seq_cst) & waiters_bit)) detail::heavy_fence();
  }

  void unlink_locked(waiter& w) noexcept {
    if (w.prev) {
      w.prev->next = w.next;
    } else {
      head_ = w.next;
    }
    if (w.next) {
      w.next->prev = w.prev;
    } else {
      tail_ = w.prev;
    }
    w.prev = w.next = nullptr;
    --waiting_;
    if (!head_) flags_.fetch_and(~waiters_bit, std::memory_order_seq_cst);
  }

  void grant_locked(slot* s, bool create) noexcept {
    waiter& w = *head_;
    unlink_locked(w);
    w.granted = s;
    w.create = create;
    w.done = true;
    w.cv.notify_one();
  }

  // Waits on `cv` until notified or `deadline` (callers loop). A standard clock's deadline is
  // waited for directly, capped (a saturated deadline must not overflow inside the library);
  // any other clock (a manual test clock) is re-read every few milliseconds of real time, so
  // moving it forward ends the wait promptly.
  void wait_step(std::unique_lock<std::mutex>& lock, std::condition_variable& cv,
                 typename Clock::time_point deadline) const {
    if constexpr (std::is_same_v<Clock, std::chrono::steady_clock> ||
                  std::is_same_v<Clock, std::chrono::system_clock>) {
      infra::detail::wait_until_capped(cv, lock, deadline);
    } else {
      const auto remaining = infra::detail::saturating_duration_cast<std::chrono::nanoseconds>(
          infra::detail::saturating_sub(deadline, Clock::now()));
      cv.wait_for(lock, std::clamp<std::chrono::nanoseconds>(remaining, std::chrono::nanoseconds::zero(),
                                                             std::chrono::milliseconds(2)));
    }
  }

  bool all_empty() const noexcept {
    for (std::size_t i = 0; i < size_; ++i) {
      if (detail::tag_of(slots_[i].state.load(std::memory_order_acquire)) != detail::slot_tag::empty) return false;
    }
    return true;
  }

  // Under the lock. Queued callers, grants and slow-path transitions are frozen by the lock; the
  // gate bit sends new fast-path acquires to the (locked) slow path, so after at most one
  // in-flight change per thread two successive reads of every slot agree: that state existed at
  // one instant, and it is what we count.
  pool_metrics metrics_locked() const noexcept {
    flags_.fetch_or(gate_bit, std::memory_order_seq_cst);
    std::uint64_t* a = scratch_.get();
    std::uint64_t* b = a + size_;
    for (std::size_t i = 0; i < size_; ++i) a[i] = slots_[i].state.load(std::memory_order_seq_cst);
    for (;;) {
      bool same = true;
      for (std::size_t i = 0; i < size_; ++i) {
        b[i] = slots_[i].state.load(std::memory_order_seq_cst);
        same = same && b[i] == a[i];
      }
      if (same) break;
      std::swap(a, b);
    }
    flags_.fetch_and(~gate_bit, std::memory_order_seq_cst);
    pool_metrics m;
    for (std::size_t i = 0; i < size_; ++i) {
      switch (detail::tag_of(b[i])) {
        case detail::slot_tag::idle:
        case detail::slot_tag::reserved: ++m.idle; break;
        case detail::slot_tag::in_use: ++m.active; break;
        default: break;
      }
    }
    m.total = m.idle + m.active;
    m.waiting = waiting_;
    m.max = size_;
    return m;
  }

  std::string exhausted_message(std::chrono::milliseconds timeout, const pool_metrics& m) const {
    auto s = get_statistics();
    std::string msg = "connection pool exhausted: no connection became free within ";
    msg += std::to_string(timeout.count());
    msg += " ms (total ";
    msg += std::to_string(m.total);
    msg += ", idle " + std::to_string(m.idle);
    msg += ", active " + std::to_string(m.active);
    msg += ", waiting " + std::to_string(m.waiting);
    msg += ", max " + std::to_string(m.max);
    msg += "; acquired " + std::to_string(s.acquired);
    msg += ", timed out " + std::to_string(s.timed_out);
    msg += ", created " + std::to_string(s.created);
    msg += ", closed " + std::to_string(s.closed_broken) + " broken / " + std::to_string(s.closed_idle) +
           " idle / " + std::to_string(s.closed_lifetime) + " lifetime";
    msg += ", max wait " + detail::format_ms(s.max_wait) + " ms)";
    return msg;
  }

  [[noreturn]] static void throw_closed() {
    throw database_error(errc::pool_closed, "connection pool is closed", "pool");
  }

  void log(log_level level, const std::string& message) const noexcept {
    detail_logger().log(level, message);
  }
  infra::logger& detail_logger() const noexcept { return infra::detail::resolve(options_.logger); }

  void housekeeping_loop() noexcept {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      lock.unlock();
      maintain();
      lock.lock();
      // Capped: a huge interval (milliseconds::max()) must sleep, not overflow into a busy loop.
      infra::detail::wait_for_capped(housekeeper_cv_, lock, options_.housekeeping_interval,
                                     [this] { return stopping_; });
    }
  }

  factory_type factory_;
  const pool_options options_;
  const std::size_t size_;
  const std::unique_ptr<slot[]> slots_;
  const std::unique_ptr<std::uint64_t[]> scratch_;  // for metrics_locked, under the lock
  const std::unique_ptr<seen_idle[]> seen_;          // under maintain_mutex_
  const typename Clock::duration validation_threshold_;
  const typename Clock::duration idle_timeout_;
  const typename Clock::duration max_lifetime_;
  detail::jitter_source jitter_;

  // Read on every acquire and release, written rarely: its own cache line.
  alignas(64) mutable std::atomic<std::uint32_t> flags_{0};

  std::mutex maintain_mutex_;
  alignas(64) mutable std::mutex mutex_;
  waiter* head_ = nullptr;  // FIFO of blocked acquires, under mutex_
  waiter* tail_ = nullptr;
  std::size_t waiting_ = 0;
  std::size_t inside_ = 0;  // callers in acquire_slow (the destructor waits for them)
  bool stopping_ = false;
  std::condition_variable drained_cv_;
  std::condition_variable housekeeper_cv_;
  std::thread housekeeper_;

  alignas(64) std::atomic<std::uint64_t> waited_{0};
  std::atomic<std::uint64_t> timed_out_{0};
  std::atomic<std::uint64_t> created_{0};
  std::atomic<std::uint64_t> create_failed_{0};
  std::atomic<std::uint64_t> validated_{0};
  std::atomic<std::uint64_t> validation_failed_{0};
  std::atomic<std::uint64_t> closed_broken_{0};
  std::atomic<std::uint64_t> closed_idle_{0};
  std::atomic<std::uint64_t> closed_lifetime_{0};
  std::atomic<std::uint64_t> closed_by_close_{0};
  std::atomic<std::uint64_t> wait_total_ns_{0};
  std::atomic<std::uint64_t> wait_max_ns_{0};
};

/// Makes `create_metrics_pool` accept our pool.
template <class C, class Clock>
struct pool_traits<connection_pool<C, Clock>> {
  static pool_metrics get_metrics(connection_pool<C, Clock>& p) noexcept { return p.get_metrics(); }
  static void close(connection_pool<C, Clock>& p) noexcept { p.close(); }
};

}  // namespace kysera::infra::pool

#undef KYSERA_INFRA_POOL_MEMBARRIER
#undef KYSERA_INFRA_POOL_TSAN
#undef KYSERA_INFRA_POOL_NOINLINE
#undef KYSERA_INFRA_POOL_LIKELY
#undef KYSERA_INFRA_POOL_UNLIKELY
