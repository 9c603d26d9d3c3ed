#pragma once
/// \file
/// `with_debug`: a database wrapper that records every query's duration, outcome and (bounded)
/// SQL text in a ring buffer, for `get_metrics`; statements inside `transaction(fn)` included.

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

#include "../database.hpp"
#include "../error.hpp"
#include "period_durations.hpp"
#include "../pool/metrics.hpp"

namespace kysera::infra::health {

/// Options of `with_debug`. Invalid values throw `std::invalid_argument` naming the field.
///
/// The SQL text of a query may hold sensitive data (literals with personal data, tokens):
/// it is kept in memory only, truncated to `max_sql_length` bytes, and `record_sql = false`
/// keeps none at all.
struct debug_options {
  std::size_t max_metrics = 1000;     ///< >= 1; ring buffer size (the newest entries stay)
  bool record_sql = true;             ///< false: entries carry no SQL text
  std::size_t max_sql_length = 256;   ///< longer statements are cut (at a UTF-8 boundary)
};

/// One recorded query, or one whole transaction (`transaction` set). `Clock` is the wrapper's clock.
template <class Clock = std::chrono::steady_clock>
struct basic_query_metric {
  std::string sql;             ///< empty when `record_sql` is false; "TRANSACTION" for a transaction
  double duration = 0.0;       ///< ms, not rounded
  bool failed = false;         ///< `execute` (or the transaction) threw
  bool sql_truncated = false;  ///< `sql` was cut at `max_sql_length`
  typename Clock::time_point timestamp{};  ///< when the query ended
  bool transaction = false;    ///< the entry is a whole `transaction(fn)` call, BEGIN to COMMIT
  std::optional<infra::errc> error{};  ///< the error's code when it was one of ours
};

/// A recorded query as used by the wrapper's default clock.
using query_metric = basic_query_metric<>;



/// A database that records query metrics: it models `database`, names its `clock`, and returns
/// a snapshot of its entries (oldest first) from `query_metrics()`. `with_debug` wrappers model
/// it; a user type can too.
template <class D>
concept database_with_metrics = database<D> && requires(const D& d) {
  typename D::clock;
  { d.query_metrics() } -> std::same_as<std::vector<basic_query_metric<typename D::clock>>>;
};

/// The value form of `database_with_metrics`.
///
///     static_assert(has_database_metrics(with_debug(db)));
template <class D>
constexpr bool has_database_metrics(const D&) noexcept {
  return database_with_metrics<D>;
}

namespace detail {

/// The length of `sql` cut to at most `limit` bytes without splitting a UTF-8 sequence.
inline std::size_t utf8_prefix_length(std::string_view sql, std::size_t limit) noexcept {
  if (sql.size() <= limit) return sql.size();
  std::size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(sql[n]) & 0xC0u) == 0x80u) --n;
  return n;
}

/// A fixed-size ring of query entries, stored column-wise so that aggregation reads little
/// memory. Thread-safe: one mutex, held only to copy an entry in or out.
template <class Clock>
class query_ring {
 public:
  using time_point = typename Clock::time_point;

  explicit query_ring(const debug_options& o)
      : capacity_(o.max_metrics),
        record_sql_(o.record_sql),
        max_sql_length_(o.max_sql_length),
        durations_(o.max_metrics),
        stamps_(o.max_metrics),
        flags_(o.max_metrics),
        codes_(o.max_metrics),
        sql_(o.record_sql ? o.max_metrics : 0) {}

  /// `code`: an `errc` value, 0 for none.
  void record(std::string_view sql, time_point end, double duration_ms, bool failed, bool transaction = false,
              std::uint8_t code = 0) noexcept {
    std::size_t keep = 0;
    std::uint8_t flags = static_cast<std::uint8_t>((failed ? flag_failed : 0) | (transaction ? flag_transaction : 0));
    if (record_sql_) {
      keep = utf8_prefix_length(sql, max_sql_length_);
      if (keep < sql.size()) flags |= flag_truncated;
    }
    std::lock_guard lock(mutex_);
    const std::size_t i = head_;
    durations_[i] = duration_ms;
    stamps_[i] = end;
    flags_[i] = flags;
    codes_[i] = code;
    if (record_sql_) {
      try {
        sql_[i].assign(sql.data(), keep);  // reuses the slot's buffer once the ring has wrapped
      } catch (...) {
        sql_[i].clear();
      }
    }
    head_ = i + 1 == capacity_ ? 0 : i + 1;
    if (size_ < capacity_) ++size_;
    ++recorded_;
  }

  std::vector<basic_query_metric<Clock>> snapshot() const {
    std::vector<basic_query_metric<Clock>> out;
    std::lock_guard lock(mutex_);
    out.resize(size_);
    std::size_t i = oldest();
    for (std::size_t k = 0; k < size_; ++k) {
      auto& m = out[k];
      m.duration = durations_[i];
      m.timestamp = stamps_[i];
      m.failed = (flags_[i] & flag_failed) != 0;
      m.sql_truncated = (flags_[i] & flag_truncated) != 0;
      m.transaction = (flags_[i] & flag_transaction) != 0;
      m.error = code_of(codes_[i]);
      if (record_sql_) m.sql = sql_[i];
      i = i + 1 == capacity_ ? 0 : i + 1;
    }
    return out;
  }

  /// The durations of the entries that ended at or after `since`.
  period_durations durations_since(time_point since) const {
    period_durations out;
    std::lock_guard lock(mutex_);
    out.statements.ms.resize(size_);  // trimmed below; filled without a capacity check per entry
    double* next = out.statements.ms.data();
    // The ring in age order is at most two contiguous runs: [oldest, capacity) and [0, head).
    const std::size_t first = oldest();
    const std::size_t runs[2][2] = {{first, std::min(capacity_, first + size_)},
                                    {0, first + size_ > capacity_ ? first + size_ - capacity_ : 0}};
    for (const auto& run : runs) {
      for (std::size_t i = run[0]; i < run[1]; ++i) {
        if (stamps_[i] < since) continue;
        const std::uint8_t f = flags_[i];
        if ((f & (flag_failed | flag_transaction)) == 0) [[likely]] {
          *next++ = durations_[i];
        } else if ((f & flag_transaction) != 0) {
          out.add(durations_[i], (f & flag_failed) != 0, true, code_of(codes_[i]));
        } else {
          *next++ = durations_[i];
          ++out.statements.failed;
          if (auto code = code_of(codes_[i]); code && detail::is_database_wait(*code)) {
            ++out.statements.database_waits;
          }
        }
      }
    }
    out.statements.ms.resize(static_cast<std::size_t>(next - out.statements.ms.data()));
    return out;
  }

  /// Entries that ended at or after `since`, without their text.
  std::vector<query_sample> samples_since(time_point since) const {
    std::vector<query_sample> out;
    std::lock_guard lock(mutex_);
    out.reserve(size_);
    std::size_t i = oldest();
    for (std::size_t k = 0; k < size_; ++k) {
      if (stamps_[i] >= since) {
        out.push_back(query_sample{durations_[i], (flags_[i] & flag_failed) != 0,
                                   (flags_[i] & flag_transaction) != 0, code_of(codes_[i])});
      }
      i = i + 1 == capacity_ ? 0 : i + 1;
    }
    return out;
  }

  void clear() noexcept {
    std::lock_guard lock(mutex_);
    head_ = 0;
    size_ = 0;
  }

  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return size_;
  }
  std::uint64_t recorded() const {
    std::lock_guard lock(mutex_);
    return recorded_;
  }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  static constexpr std::uint8_t flag_failed = 1;
  static constexpr std::uint8_t flag_truncated = 2;
  static constexpr std::uint8_t flag_transaction = 4;

  static std::optional<infra::errc> code_of(std::uint8_t code) noexcept {
    if (code == 0) return std::nullopt;
    return static_cast<infra::errc>(code);
  }

  std::size_t oldest() const noexcept { return size_ < capacity_ ? 0 : head_; }

  const std::size_t capacity_;
  const bool record_sql_;
  const std::size_t max_sql_length_;
  mutable std::mutex mutex_;
  std::size_t head_ = 0;  // next slot to write
  std::size_t size_ = 0;
  std::uint64_t recorded_ = 0;
  std::vector<double> durations_;
  std::vector<time_point> stamps_;
  std::vector<std::uint8_t> flags_;
  std::vector<std::uint8_t> codes_;
  std::vector<std::string> sql_;
};

/// Times one `execute` (or `transaction`) call and records it when the call ends, however it
/// ends. Records after the result has been built, so the duration covers the whole call. A call
/// that throws is marked by `fail()` (recorded_call does it), so no std::uncaught_exceptions()
/// is needed on the success path.
template <class Clock>
class query_timer {
 public:
  query_timer(query_ring<Clock>& ring, std::string_view sql, bool transaction = false) noexcept
      : ring_(ring), sql_(sql), transaction_(transaction), start_(Clock::now()) {}
  ~query_timer() {
    const auto end = Clock::now();
    ring_.record(sql_, end, std::chrono::duration<double, std::milli>(end - start_).count(),
                 failed_, transaction_, code_);
  }
  query_timer(const query_timer&) = delete;
  query_timer& operator=(const query_timer&) = delete;

  /// Notes the exception that ends the call (its code, when it is one of ours).
  void fail(const std::exception_ptr& e) noexcept {
    failed_ = true;
    try {
      std::rethrow_exception(e);
    } catch (const std::system_error& se) {
      if (infra::is_infra_error(se.code()) && se.code().value() > 0 && se.code().value() < 256) {
        code_ = static_cast<std::uint8_t>(se.code().value());
      }
    } catch (...) {
    }
  }

 private:
  query_ring<Clock>& ring_;
  std::string_view sql_;
  bool transaction_;
  bool failed_ = false;
  std::uint8_t code_ = 0;
  typename Clock::time_point start_;
};

/// Runs `call()` timed by a `query_timer` on `ring`, noting the error it throws.
template <class Clock, class Call>
decltype(auto) recorded_call(query_ring<Clock>& ring, std::string_view sql, bool transaction, Call&& call) {
  query_timer<Clock> timer(ring, sql, transaction);
  try {
    return std::forward<Call>(call)();
  } catch (...) {
    timer.fail(std::current_exception());
    throw;
  }
}

inline constexpr std::string_view transaction_label = "TRANSACTION";

}  // namespace detail

/// What `fn` receives inside `debug_database::transaction(fn)`: the backend's own session with
/// every `execute` recorded (like the wrapper's own). Used on the thread that runs `fn`, valid
/// only during that call. `underlying()` (or `->`) reaches the backend's session for anything
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
///     auto dbg = kysera::infra::health::with_debug(db, {.max_metrics = 5000});
///     dbg.execute("select 1");
///     auto stats = kysera::infra::health::get_metrics(dbg);
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
  template <class F, class D = Db>  // D keeps the call dependent until it is made
    requires database_with_transaction<D>
  decltype(auto) transaction(F&& fn) {
    return detail::recorded_call<Clock>(*ring_, detail::transaction_label, true, [&]() -> decltype(auto) {
      return static_cast<D*>(db_)->transaction([&fn, this](auto& session) -> decltype(auto) {
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

}  // namespace kysera::infra::health

namespace kysera::infra::pool {

/// A `with_debug` wrapper around a pool reports (and closes) that pool.
template <class Db, class Clock>
  requires pool_with_metrics<Db>
struct pool_traits<health::debug_database<Db, Clock>> {
  static pool_metrics get_metrics(health::debug_database<Db, Clock>& d) {
    return pool_traits<Db>::get_metrics(d.underlying());
  }
  static void close(health::debug_database<Db, Clock>& d) { pool_traits<Db>::close(d.underlying()); }
};

}  // namespace kysera::infra::pool
