#pragma once
/// \file
/// `with_debug`: a database wrapper that records every query's duration, outcome and (bounded)
/// SQL text in a ring buffer, for `get_metrics`; statements inside `transaction(fn)` included.
/// Part of the metrics layer (`kysera::infra::metrics`); `health::` names the same types.

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../database.hpp"
#include "../pool/metrics.hpp"
#include "query_ring.hpp"
#include "query_sample.hpp"

namespace kysera::infra::metrics {

/// A database that records query metrics: it models `database`, names its `clock`, and returns
/// a snapshot of its entries (oldest first) from `query_metrics()`. `with_debug` wrappers model
/// it; a user type can too.
template <class Db>
concept database_with_metrics = database<Db> && requires(const Db& d) {
  typename Db::clock;
  { d.query_metrics() } -> std::same_as<std::vector<basic_query_metric<typename Db::clock>>>;
};

/// The value form of `database_with_metrics`.
///
///     static_assert(has_database_metrics(with_debug(db)));
template <class Db>
constexpr bool has_database_metrics(const Db&) noexcept {
  return database_with_metrics<Db>;
}

/// Not thread-safe: used on the thread that runs `fn`, valid only during that call. What `fn`
/// receives inside `debug_database::transaction(fn)`: the backend's own session with every
/// `execute` recorded (like the wrapper's own). `underlying()` (or `->`) reaches the backend's session for anything
/// else it offers.
///
///     dbg.transaction([](auto& tx) { tx.execute("insert ..."); });  // recorded
template <class Session, class Clock = std::chrono::steady_clock>
class debug_session {
 public:
  using underlying_type = Session;

  debug_session(Session& session, detail::query_ring<Clock>& ring) noexcept : session_(session), ring_(ring) {}
  debug_session(const debug_session&) = delete;
  debug_session& operator=(const debug_session&) = delete;

  /// Runs `sql` on the session and records it; rethrows what it throws.
  decltype(auto) execute(std::string_view sql) {
    return detail::recorded_call<Clock>(ring_, sql, false, [&]() -> decltype(auto) { return session_.execute(sql); });
  }

  template <class S = Session>
    requires requires(S& s) { s.ping(); }
  decltype(auto) ping() {
    return session_.ping();
  }

  template <class S = Session>
    requires requires(S& s) { s.server_version(); }
  decltype(auto) server_version() {
    return session_.server_version();
  }

  Session& underlying() const noexcept { return session_; }
  Session* operator->() const noexcept { return std::addressof(session_); }

 private:
  Session& session_;
  detail::query_ring<Clock>& ring_;
};

/// Thread-safe as far as the wrapped database is: recording is internally synchronised (one
/// short mutex section per query). Holds a reference to `db`, which must outlive it; movable,
/// not copyable (a moved-from wrapper may only be destroyed or assigned to).
///
/// Models `database` and every optional capability `Db` has: `execute` returns what
/// `Db::execute` returns and is recorded (duration, failure, SQL text within the options'
/// bounds); `close`, `ping`, `try_ping_until`, `cancel`, `server_version` and `close_for` are
/// forwarded unrecorded. `transaction(fn)` is recorded twice over: `fn` receives a
/// `debug_session` over `Db`'s session, so each of its statements is recorded like any other,
/// and the transaction as a whole (BEGIN to COMMIT or ROLLBACK) is one more entry marked
/// `transaction` (SQL text "TRANSACTION"), which `get_metrics` reports apart. An `fn` that names
/// the backend's session type (and so cannot take a `debug_session`) gets that session itself;
/// then only the whole transaction is recorded. When `Db` is a pool with metrics, so is the
/// wrapper.
///
///     auto dbg = kysera::infra::with_debug(db, {.max_metrics = 5000});
///     dbg.execute("select 1");
///     auto stats = kysera::infra::get_metrics(dbg);
template <database Db, class Clock = std::chrono::steady_clock>
class debug_database {
 public:
  using clock = Clock;
  using metric = basic_query_metric<Clock>;
  using underlying_type = Db;

  explicit debug_database(Db& db, const debug_options& options = {})
      : db_(std::addressof(db)), ring_(make_ring(options)) {}

  /// Runs `sql` on the wrapped database and records it; rethrows what it throws.
  decltype(auto) execute(std::string_view sql) {
    return detail::recorded_call<Clock>(*ring_, sql, false, [&]() -> decltype(auto) { return db_->execute(sql); });
  }

  decltype(auto) close() { return db_->close(); }

  decltype(auto) ping()
    requires database_with_ping<Db>
  {
    return db_->ping();
  }

  bool try_ping_until(std::chrono::steady_clock::time_point deadline)
    requires database_with_bounded_ping<Db>
  {
    return db_->try_ping_until(deadline);
  }

  decltype(auto) cancel() noexcept(noexcept(std::declval<Db&>().cancel()))
    requires database_with_cancel<Db>
  {
    return db_->cancel();
  }

  decltype(auto) server_version()
    requires database_with_server_version<Db>
  {
    return db_->server_version();
  }

  /// Runs `fn` in `Db`'s transaction, recording its statements and the transaction as a whole
  /// (see the class comment); returns what `fn` returns and rethrows what the transaction throws.
  template <class F, class Dependent = Db>  // Db again, so the requirement is checked only when called
    requires database_with_transaction<Dependent>
  decltype(auto) transaction(F&& fn) {
    return detail::recorded_call<Clock>(*ring_, detail::transaction_label, true, [&]() -> decltype(auto) {
      return static_cast<Dependent*>(db_)->transaction([&fn, this](auto& session) -> decltype(auto) {
        using session_type = std::remove_reference_t<decltype(session)>;
        if constexpr (std::is_invocable_v<F&, debug_session<session_type, Clock>&>) {
          debug_session<session_type, Clock> recorded(session, *ring_);
          return std::invoke(fn, recorded);
        } else {
          return std::invoke(fn, session);
        }
      });
    });
  }

  bool close_for(std::chrono::milliseconds timeout)
    requires database_with_timed_close<Db>
  {
    return db_->close_for(timeout);
  }

  /// A copy of the recorded entries, oldest first.
  std::vector<metric> query_metrics() const { return ring_->snapshot(); }

  /// Durations and outcomes of the entries that ended at or after `since` (no SQL text copied).
  std::vector<query_sample> query_samples(typename Clock::time_point since) const {
    return ring_->samples_since(since);
  }

  /// The same entries as durations for `get_metrics`: its fastest input.
  period_durations query_durations(typename Clock::time_point since) const {
    return ring_->durations_since(since);
  }

  /// Forgets every entry.
  void clear_metrics() noexcept { ring_->clear(); }

  /// Entries held now (at most `max_metrics()`).
  std::size_t metrics_size() const { return ring_->size(); }
  std::size_t max_metrics() const noexcept { return ring_->capacity(); }
  /// Queries recorded since construction, evicted ones included.
  std::uint64_t recorded_queries() const { return ring_->recorded(); }

  Db& underlying() const noexcept { return *db_; }

 private:
  static std::unique_ptr<detail::query_ring<Clock>> make_ring(const debug_options& o) {
    if (o.max_metrics == 0) {
      throw std::invalid_argument("kysera::infra::health: max_metrics must be at least 1");
    }
    if (o.max_metrics > debug_options::max_metrics_limit) {
      throw std::invalid_argument("kysera::infra::health: max_metrics must be at most " +
                                  std::to_string(debug_options::max_metrics_limit) + " (got " +
                                  std::to_string(o.max_metrics) + ")");
    }
    return std::make_unique<detail::query_ring<Clock>>(o);
  }

  Db* db_;
  std::unique_ptr<detail::query_ring<Clock>> ring_;
};

/// Wraps `db` in a `debug_database` that records every query (see there). `Clock` is for tests.
///
///     auto dbg = with_debug(db);                 // 1000 entries, SQL cut at 256 bytes
///     auto quiet = with_debug(db, {.max_metrics = 100, .record_sql = false});
template <class Clock = std::chrono::steady_clock, database Db>
debug_database<Db, Clock> with_debug(Db& db, const debug_options& options = {}) {
  return debug_database<Db, Clock>(db, options);
}

}  // namespace kysera::infra::metrics

namespace kysera::infra::pool {

/// A `with_debug` wrapper around a pool reports (and closes) that pool.
template <class Db, class Clock>
  requires pool_with_metrics<Db>
struct pool_traits<metrics::debug_database<Db, Clock>> {
  static pool_metrics get_metrics(metrics::debug_database<Db, Clock>& d) {
    return pool_traits<Db>::get_metrics(d.underlying());
  }
  static void close(metrics::debug_database<Db, Clock>& d) { pool_traits<Db>::close(d.underlying()); }
};

}  // namespace kysera::infra::pool
