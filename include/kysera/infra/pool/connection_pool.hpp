#pragma once
/// \file
/// `connection_pool<Connection>`: a bounded, thread-safe pool over any `infra::database` type,
/// and its `pool_traits` specialisation. Its options and statistics are in options.hpp; the
/// machinery that does not depend on `Connection` is in detail/ (see docs/pool-internals.md).

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "../database.hpp"
#include "../deadline.hpp"
#include "../detail/session_registry.hpp"
#include "../detail/source_location.hpp"
#include "../error.hpp"
#include "../logger.hpp"
#include "detail/config.hpp"
#include "detail/pool_core.hpp"
#include "metrics.hpp"
#include "options.hpp"
#include "timings.hpp"

namespace kysera::infra::pool {

/// A bounded pool of `Connection`s made by a factory. Thread-safe: every member may be called
/// from any thread; a `lease` is owned by one thread at a time.
///
/// Connections are opened lazily (up to `max_size`; the housekeeper keeps `min_idle` open), handed
/// out most-recently-used first, pinged before reuse when they sat idle longer than
/// `validation_threshold`, closed when broken, idle too long or too old, and every caller that
/// has to wait is served strictly first come, first served. The pool itself models `database`:
/// `execute` borrows a connection for one statement, so health checks, query metrics and
/// graceful shutdown work on it unchanged. While the server is down it dials sparingly (at most
/// `max_connecting` at once; after failed connects, a growing backoff with one probe, in which
/// acquires that need a new connection fail fast), bounds its wait queue (`max_waiters`), and it
/// can report leases held too long (`leak_detection_threshold`): docs/pool.md#during-an-outage.
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
class connection_pool : private detail::pool_core<Clock> {
  using core = detail::pool_core<Clock>;
  using slot = typename core::slot_type;

 public:
  using connection_type = Connection;
  using clock_type = Clock;
  /// Where an `acquire` was called, for leak detection: `std::source_location` where the
  /// standard library has it.
  using source_location = infra::detail::source_location;
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

    Connection& operator*() const noexcept { return *get_ptr(); }
    Connection* operator->() const noexcept { return get_ptr(); }
    Connection& get() const noexcept { return *get_ptr(); }
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
    Connection* get_ptr() const noexcept { return static_cast<Connection*>(slot_->connection); }

    connection_pool* pool_ = nullptr;
    slot* slot_ = nullptr;
    bool broken_ = false;
  };

  /// Validates `options` (`std::invalid_argument` naming the field) and starts the housekeeper
  /// unless `housekeeping_interval` is 0. Opens no connection itself; the housekeeper's first pass
  /// opens `min_idle`.
  explicit connection_pool(factory_type factory, pool_options options = {})
      : core(options), factory_(std::move(factory)) {
    if (!factory_) throw std::invalid_argument("connection_pool: factory must not be empty");
    this->start();
  }

  connection_pool(const connection_pool&) = delete;
  connection_pool& operator=(const connection_pool&) = delete;

  /// Closes the pool, then waits for every lease still out and every caller still inside
  /// `acquire` to finish (logging a warning when that takes over a second).
  ~connection_pool() { this->shut_down(); }

  /// Waits up to `acquire_timeout` for a connection. Throws `database_error` with
  /// `errc::pool_exhausted` (message carries the metrics) on timeout or when `max_waiters` callers
  /// already wait, `errc::pool_closed` after `close()`, or the factory's own error when opening a
  /// connection failed (in a connect backoff window, at once, with the last connect error's
  /// code). `where` is what leak detection reports.
  ///
  ///     auto c = pool.acquire();
  lease acquire(source_location where = source_location::current()) {
    return acquire(this->options_.acquire_timeout, where);
  }

  /// As `acquire()`, waiting up to `timeout` (0: do not wait). Under an ambient deadline
  /// (`deadline_scope`) the wait ends at that deadline if it comes first, and then throws
  /// `errc::timeout` instead of `errc::pool_exhausted` (opening a new connection is bounded by
  /// the factory's connect timeout, not by the deadline).
  ///
  ///     auto c = pool.acquire(std::chrono::milliseconds(200));
  lease acquire(std::chrono::milliseconds timeout,
                source_location where = source_location::current()) {
    if (timeout.count() < 0)
      throw std::invalid_argument("connection_pool::acquire: timeout must not be negative");
    slot* s;
    if (KYSERA_INFRA_POOL_UNLIKELY(this->timings_ != nullptr)) {
      s = under_deadline(timeout, [&](std::chrono::milliseconds t) {
        return this->template timed_acquire<true, true>(hint_, t, true);
      });
    } else {
      s = this->try_fast(hint_);
      if (KYSERA_INFRA_POOL_UNLIKELY(s == nullptr)) {
        s = under_deadline(timeout, [&](std::chrono::milliseconds t) { return this->acquire_slow(t, true); });
      }
    }
    if (KYSERA_INFRA_POOL_UNLIKELY(this->leak_detection_on())) this->note_lease(*s, where);
    return lease(this, s);
  }

  /// A connection if one is idle or can be opened now (opening may block for the connect);
  /// `std::nullopt` when the pool is at `max_size` or others are already waiting. Throws
  /// `errc::pool_closed` after `close()` and the factory's error.
  ///
  ///     if (auto c = pool.try_acquire()) (*c)->execute("select 1");
  std::optional<lease> try_acquire(source_location where = source_location::current()) {
    slot* s;
    if (KYSERA_INFRA_POOL_UNLIKELY(this->timings_ != nullptr)) {
      s = this->template timed_acquire<true, true>(hint_, std::chrono::milliseconds(0), false);
    } else {
      s = this->try_fast(hint_);
      if (!s) s = this->acquire_slow(std::chrono::milliseconds(0), false);
    }
    if (!s) return std::nullopt;
    if (KYSERA_INFRA_POOL_UNLIKELY(this->leak_detection_on())) this->note_lease(*s, where);
    return lease(this, s);
  }

  /// Opens connections now, on the calling thread, until `min_idle` (at least one) are open,
  /// retrying through the connect backoff for up to `timeout`; then throws the last connect
  /// error (e.g. `errc::connection_refused`; `errc::pool_exhausted` if it never got to dial, and
  /// `errc::pool_closed` after `close()`). Like HikariCP's initializationFailTimeout: a service
  /// calls it at start to refuse to run against a database it cannot reach, and so that its
  /// first health check finds a connection open.
  ///
  ///     pool.warm_up(std::chrono::seconds(5));  // throws when the database is unreachable
  void warm_up(std::chrono::milliseconds timeout) {
    if (timeout.count() < 0)
      throw std::invalid_argument("connection_pool::warm_up: timeout must not be negative");
    core::warm_up(timeout);
  }

  /// Borrows a connection, calls `fn(Connection&)` and returns the connection; returns what `fn`
  /// returns (by value). A `database_error` meaning the session is gone marks it broken.
  ///
  ///     auto n = pool.with_connection([](auto& c) { return count_rows(c); });
  template <class F>
  auto with_connection(F&& fn, source_location where = source_location::current())
      -> std::decay_t<std::invoke_result_t<F&, Connection&>> {
    lease l = acquire(where);
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
  auto execute(std::string_view sql, source_location where = source_location::current()) {
    return with_connection([sql](Connection& c) -> decltype(auto) { return c.execute(sql); },
                           where);
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
  bool try_ping_until(std::chrono::steady_clock::time_point deadline) requires
      infra::database_with_bounded_ping<Connection> {
    slot* s = KYSERA_INFRA_POOL_UNLIKELY(this->timings_ != nullptr)
                  ? this->template timed_acquire<false, false>(hint_, std::chrono::milliseconds(0), false)
                  : this->template try_fast<false>(hint_);
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
  std::string server_version() requires infra::database_with_server_version<Connection> {
    return with_connection([](Connection& c) { return std::string(c.server_version()); });
  }

  /// Runs `fn(Connection&)` in a transaction on one leased connection for the whole call. Only
  /// where `Connection` has `transaction`. Returns what `fn` returns.
  ///
  ///     pool.transaction([](auto& c) { c.execute("insert ..."); c.execute("update ..."); });
  template <class F>
  requires infra::database_with_transaction<Connection>
  decltype(auto) transaction(F&& fn,
                             source_location where = source_location::current()) {
    return with_connection(
        [&fn](Connection& c) -> decltype(auto) { return c.transaction(std::forward<F>(fn)); },
        where);
  }

  /// Stops new acquires (they throw `errc::pool_closed`, waiters too), closes idle connections
  /// now and leased ones as their leases end. Idempotent; waits for a connect in progress on the
  /// housekeeping thread.
  using core::close;

  /// `close()`, then waits up to `timeout` for every lease to end and every connection to be
  /// closed. Returns whether that happened in time. For graceful shutdown. When leases are still
  /// out at the deadline, the adapter sessions among them that run a statement are cut (the
  /// backend's cancel and the socket shut down, as at a statement deadline), an error is logged
  /// naming each, and it waits up to `cut_wait` (200 ms) more for their leases to end (the
  /// sockets are shut down halfway); it returns false all the same.
  ///
  ///     if (!pool.close_for(std::chrono::seconds(10))) log("leases still out");
  bool close_for(std::chrono::milliseconds timeout) noexcept {
    if (core::close_for(timeout)) return true;
    try {
      using stage = infra::detail::session_registry::cut_stage;
      auto& registry = infra::detail::session_registry::instance();
      const auto cut = registry.cut_owned_by(this, stage::interrupt);
      if (!cut.empty()) {
        std::string names;
        for (const auto& what : cut) names += (names.empty() ? "" : ", ") + what;
        this->log(log_level::error, "Closing pool: cut " + std::to_string(cut.size()) +
                                        " session(s) still running a statement at the deadline: " + names);
        if (!core::close_for(cut_wait / 2)) {
          (void)registry.cut_owned_by(this, stage::shut_down);
          (void)core::close_for(cut_wait / 2);
        }
      }
    } catch (...) {
    }
    return false;
  }

  /// How long `close_for` waits after cutting sessions at its deadline.
  static constexpr std::chrono::milliseconds cut_wait{200};

  /// An exact snapshot: total = idle + active open connections, waiting = callers blocked in
  /// acquire, max = `max_size`. Never throws.
  using core::get_metrics;

  /// The cumulative counters. Each counter is exact once the pool is quiet; while it is busy they
  /// are read one after another.
  using core::get_statistics;

  using core::is_closed;
  using core::options;

  /// The `create_time`, `wait_time` and `use_time` histograms (seconds) when
  /// `pool_options::record_timings` is set, else null. Readable from any thread while the pool
  /// runs; `metrics::registry::add_pool` exports them.
  ///
  ///     if (const auto* t = pool.timings()) std::cout << t->use_time().sum << " s leased\n";
  using core::timings;

  /// One housekeeping pass: closes idle connections past `max_lifetime`, and those the
  /// housekeeper has seen idle for `idle_timeout` while more than `min_idle` are idle, then opens
  /// connections up to `min_idle` as the connect limit and backoff allow (factory errors are
  /// logged and counted, not thrown), and reports leases held past `leak_detection_threshold`.
  /// Idle time counts from the first pass that saw the connection idle, so (as in HikariCP) a
  /// connection is closed between idle_timeout and idle_timeout + housekeeping_interval after its
  /// last use. The housekeeping thread calls this every `housekeeping_interval` (or every
  /// `leak_detection_threshold`, if shorter); call it yourself when that is 0.
  ///
  ///     pool.maintain();  // e.g. after moving a test clock forward
  using core::maintain;

 private:
  // The hooks through which the connection-independent core makes, checks and closes ours.
  void* open_connection() override {
    infra::detail::session_owner_scope owner(this);  // so close_for can cut what it makes
    return factory_().release();
  }
  void close_connection(void* c) override { static_cast<Connection*>(c)->close(); }
  void destroy_connection(void* c) noexcept override { delete static_cast<Connection*>(c); }
  void ping_connection(void* c) override { infra::ping(*static_cast<Connection*>(c)); }

  // `get(wait)` for the slow or timed acquire: `wait` is `timeout`, or less when the ambient
  // deadline (deadline.hpp) comes first; a wait the deadline cut throws errc::timeout.
  template <class Get>
  slot* under_deadline(std::chrono::milliseconds timeout, Get&& get) {
    if (const auto deadline = infra::current_deadline()) {
      const auto left = infra::detail::saturating_ceil<std::chrono::milliseconds>(
          infra::detail::saturating_sub(*deadline, deadline_clock::now()));
      const auto wait = left < std::chrono::milliseconds::zero() ? std::chrono::milliseconds::zero() : left;
      if (wait < timeout) {
        try {
          return get(wait);
        } catch (const detail::pool_rejected_error&) {
          throw;  // max_waiters: the queue was full, not the deadline reached
        } catch (const database_error& e) {
          if (e.condition() != errc::pool_exhausted) throw;
          throw database_error(errc::timeout,
                               std::string("pool: the deadline passed while waiting for a connection; ") + e.what(),
                               "pool");
        }
      }
    }
    return get(timeout);
  }

  // The slot this thread used last (see try_fast). Only a hint, shared by all pools of this type.
  static inline thread_local std::size_t hint_ = 0;

  factory_type factory_;
};

/// Makes `create_metrics_pool` accept our pool.
template <class C, class Clock>
struct pool_traits<connection_pool<C, Clock>> {
  static pool_metrics get_metrics(connection_pool<C, Clock>& p) noexcept { return p.get_metrics(); }
  static void close(connection_pool<C, Clock>& p) noexcept { p.close(); }
};

}  // namespace kysera::infra::pool
