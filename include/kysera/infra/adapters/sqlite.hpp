#pragma once
/// \file
/// `kysera::infra::sqlite::connection`: a thread-safe SQLite connection (SQLite3 C API) that models
/// `database` with ping, cancel, server_version and transaction, and counts as a pool of one for
/// `pool::create_metrics_pool`.
///
///     kysera::infra::sqlite::connection db("sqlite:///var/lib/app/app.db");
///     db.execute("create table if not exists t (id integer primary key, v text)");
///     auto r = db.execute("select v from t");

#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../database.hpp"
#include "../detail/call_mutex.hpp"
#include "../detail/time.hpp"
#include "../error.hpp"
#include "../pool/metrics.hpp"
#include "../rows.hpp"
#include "sqlite/detail.hpp"

namespace kysera::infra::sqlite {

/// How `transaction()` begins: BEGIN DEFERRED, BEGIN IMMEDIATE or BEGIN EXCLUSIVE.
///
/// `immediate` (the default) takes the write lock at BEGIN, where `busy_timeout` can wait for it
/// and nothing has been done yet. A `deferred` transaction that reads first and writes later may
/// instead fail with SQLITE_BUSY (in WAL mode SQLITE_BUSY_SNAPSHOT, which no waiting can cure)
/// in the middle of the work, and then the whole transaction has to be rerun.
enum class transaction_mode { deferred, immediate, exclusive };

constexpr std::string_view to_string(transaction_mode m) noexcept {
  switch (m) {
    case transaction_mode::deferred: return "deferred";
    case transaction_mode::immediate: return "immediate";
    case transaction_mode::exclusive: return "exclusive";
  }
  return "unknown";
}

/// Options of `sqlite::connection`. Invalid values throw `std::invalid_argument` naming the field.
///
///     kysera::infra::sqlite::connection_options o;
///     o.busy_timeout = 250ms;
///     o.journal_mode = "WAL";
struct connection_options {
  /// Bounds how long opening may wait for a lock (the setup PRAGMAs read the file header):
  /// during the constructor the busy wait is min(busy_timeout, connect_timeout). SQLite has no
  /// network connect, so this is the only wait it bounds. Must not be negative.
  std::chrono::milliseconds connect_timeout{10000};
  /// How long a statement waits for a lock held by another connection before failing with
  /// errc::busy; 0 fails at once. The wait is cancellable through `cancel()`. Must not be negative.
  std::chrono::milliseconds busy_timeout{5000};
  /// Open read-only (SQLITE_OPEN_READONLY); writes then fail with errc::query_failed. Also set
  /// by "?mode=ro" in a sqlite: URL. Implies `create = false`.
  bool read_only = false;
  /// Create the file when it does not exist (SQLITE_OPEN_CREATE). A sqlite: URL's "?mode=rw"
  /// or "?mode=rwc" overrides it.
  bool create = true;
  /// "DELETE", "TRUNCATE", "PERSIST", "MEMORY", "WAL" or "OFF" (any case), applied with PRAGMA
  /// journal_mode at open; unset keeps the file's mode. SQLite may keep another mode where the
  /// requested one is impossible (an in-memory database always uses MEMORY).
  std::optional<std::string> journal_mode{};
  /// PRAGMA foreign_keys at open (SQLite's own default is off; ours is on).
  bool foreign_keys = true;
  /// How `transaction(fn)` begins; see `transaction_mode`.
  sqlite::transaction_mode transaction_mode = sqlite::transaction_mode::immediate;
};

/// Thread-safe: every member may be called from any thread; statements are serialised by one
/// internal recursive mutex, so threads may share one connection.
///
/// Accepted connection strings (a bad one throws database_error(errc::invalid_url)):
///  - a plain path, relative or absolute, taken literally ("data/app.db", "/var/app.db");
///  - ":memory:" — a private in-memory database;
///  - "file:..." — an SQLite URI, passed to SQLite with SQLITE_OPEN_URI (SQLite's own syntax);
///  - "sqlite:///abs/path", "sqlite://relative/path" (%-escapes decoded);
///  - "sqlite::memory:" or "sqlite://:memory:";
///  - each sqlite: form may end in "?mode=ro" (read-only), "?mode=rw" (read-write, the file must
///    exist) or "?mode=rwc" (read-write, create when missing). Read-only wins when either the URL
///    or `connection_options::read_only` asks for it.
///
/// SQLite has no session that a server could drop, so this adapter never reconnects: the handle
/// stays valid until `close()`.
///
///     kysera::infra::sqlite::connection db("sqlite:///tmp/app.db");
///     db.transaction([](auto& c) { c.execute("insert into t(v) values ('x')"); });
class connection {
 public:
  static constexpr std::string_view backend_name = "sqlite";

  /// Opens eagerly (and reads the file header, so a file that is not a database fails here).
  /// Throws std::invalid_argument for bad options, database_error(errc::invalid_url) for a bad
  /// string, and database_error with connection_refused (SQLITE_CANTOPEN: missing directory),
  /// database_not_found (a missing file without create), authentication_failed (SQLITE_NOTADB: not a database, or
  /// encrypted with another key), busy, ... on failure.
  ///
  ///     kysera::infra::sqlite::connection db(":memory:");
  explicit connection(std::string_view path_or_url, connection_options options = {})
      : options_(validate(std::move(options))), target_(detail::parse_target(path_or_url)) {
    read_only_ = options_.read_only || target_.mode == std::optional<std::string>("ro");
    create_ = !read_only_ && (target_.mode ? *target_.mode == "rwc" : options_.create);
    description_ = detail::describe(target_, read_only_);
    open();
  }

  /// Closes (waits for a statement in flight on another thread).
  ~connection() { close(); }

  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  /// Runs every statement in `sql`, in order, outside any implicit transaction (a failing
  /// statement leaves the effects of those before it). Returns the rows of the last statement
  /// that produced columns; `affected_rows` sums the rows changed directly by the INSERT, UPDATE
  /// and DELETE statements in `sql`; `last_insert_id` is sqlite3_last_insert_rowid() when any
  /// row changed, else empty. Values are text (integers and floats as SQLite prints them), blobs
  /// are their raw bytes, NULL is nullopt. Empty or comment-only SQL returns an empty result.
  ///
  ///     auto r = db.execute("insert into t(v) values ('a'); select id, v from t");
  ///     r.at(0, "v");  // "a"
  rows execute(std::string_view sql) {
    std::lock_guard lock(mutex_);
    sqlite3* db = require_open();
    if (sql.find('\0') != std::string_view::npos) {
      throw database_error(errc::query_failed, "sqlite: SQL text contains a NUL byte",
                           std::string(backend_name));
    }
    if (sql.size() > static_cast<std::size_t>(INT_MAX)) {
      throw database_error(errc::query_failed, "sqlite: SQL text is too long",
                           std::string(backend_name), {}, SQLITE_TOOBIG);
    }
    execution_scope scope(*this);
    return run(db, sql, detail::phase::statement, "executing on ");
  }

  /// Reads the schema version from the file header: checks that the file is still a readable
  /// database (waits for a lock like any statement). The statement is prepared once and reused.
  /// Throws database_error.
  ///
  ///     db.ping();
  void ping() {
    std::lock_guard lock(mutex_);
    sqlite3* db = require_open();
    execution_scope scope(*this);
    probe_locked(db);
  }

  /// `ping()` bounded by `deadline` (the `database_with_bounded_ping` capability; the health
  /// check uses it): a lock wait still going at the deadline gives up and the call throws
  /// errc::timeout; the connection stays usable. Throws errc::timeout as well when another call
  /// keeps the connection busy until the deadline. Always returns true (SQLite never needs a
  /// reconnect first). Only file I/O that the operating system itself does not bound (a hung
  /// network file system) can hold it longer.
  ///
  ///     db.try_ping_until(std::chrono::steady_clock::now() + 100ms);
  bool try_ping_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_, std::defer_lock);
    if (!lock.try_lock_until(deadline)) {
      throw deadline_error("the connection stayed busy with another call until the deadline");
    }
    sqlite3* db = require_open();
    if (std::chrono::steady_clock::now() >= deadline) throw deadline_error("the deadline passed before the ping");
    execution_scope scope(*this);
    call_deadline_ = deadline;
    struct end_of_call {
      std::chrono::steady_clock::time_point& deadline;
      ~end_of_call() { deadline = std::chrono::steady_clock::time_point::max(); }
    } reset{call_deadline_};
    try {
      probe_locked(db);
    } catch (const database_error& e) {
      if (e.condition() == errc::busy && std::chrono::steady_clock::now() >= deadline) {
        throw deadline_error("no answer by the deadline (another connection held a lock)");
      }
      throw;
    }
    return true;
  }

  /// Interrupts the statement (or lock wait) running in `execute`, `ping` or `transaction` on
  /// another thread, which then throws database_error(errc::cancelled). Returns at once; a no-op
  /// when nothing runs or after close(). Never races with close(): both take a small handle lock.
  ///
  ///     std::thread t([&] { db.execute(long_sql); });  // throws errc::cancelled
  ///     db.cancel();
  void cancel() noexcept {
    std::lock_guard handle_lock(handle_mutex_);
    if (db_ == nullptr || !executing_) return;
    cancel_pending_.store(true, std::memory_order_relaxed);
    sqlite3_interrupt(db_);
    cancel_cv_.notify_all();
  }

  /// The SQLite library version, e.g. "3.40.1" (sqlite3_libversion()). Throws errc::closed
  /// after close().
  std::string server_version() {
    std::lock_guard lock(mutex_);
    require_open();
    return sqlite3_libversion();
  }

  /// Runs `fn(*this)` between BEGIN <options.transaction_mode> and COMMIT, holding the
  /// connection for the whole call; ROLLBACK and rethrow when `fn` throws or COMMIT fails.
  /// Returns what `fn` returns. A nested call on the same connection throws std::logic_error.
  /// An I/O error during COMMIT throws errc::outcome_unknown (it may have committed). `fn` runs
  /// on the calling thread; other threads using this connection wait until the call ends, so
  /// `fn` must not wait for them.
  ///
  ///     int n = db.transaction([](auto& c) {
  ///       c.execute("update t set v = 'b'");
  ///       return 1;
  ///     });
  template <class F>
  std::invoke_result_t<F&, connection&> transaction(F&& fn) {
    return transaction(options_.transaction_mode, std::forward<F>(fn));
  }

  /// As `transaction(fn)`, with the BEGIN mode chosen for this call (e.g. `deferred` for a
  /// read-only transaction that must not take the write lock).
  ///
  ///     db.transaction(kysera::infra::sqlite::transaction_mode::deferred, [](auto& c) { ... });
  template <class F>
  std::invoke_result_t<F&, connection&> transaction(sqlite::transaction_mode mode, F&& fn) {
    using result_type = std::invoke_result_t<F&, connection&>;
    std::lock_guard lock(mutex_);
    sqlite3* db = require_open();
    if (in_transaction_) {
      throw std::logic_error("sqlite: nested transaction() on the same connection");
    }
    {
      execution_scope scope(*this);  // BEGIN IMMEDIATE may wait for the write lock
      run(db, begin_sql(mode), detail::phase::statement, "beginning a transaction on ");
    }
    in_transaction_ = true;
    transaction_flag_guard flag{in_transaction_};
    try {
      if constexpr (std::is_void_v<result_type>) {
        std::invoke(fn, *this);
        commit();
      } else {
        result_type result = std::invoke(fn, *this);
        commit();
        if constexpr (std::is_reference_v<result_type>) {
          return static_cast<result_type>(result);
        } else {
          return result;
        }
      }
    } catch (...) {
      rollback_quietly();
      throw;
    }
  }

  /// Closes the handle: idempotent and final. Waits for a statement in flight on another thread
  /// (it does not interrupt it; call cancel() first for that). Afterwards every call except
  /// close(), cancel(), is_open() and description() throws database_error(errc::closed).
  void close() noexcept {
    std::lock_guard lock(mutex_);
    sqlite3* db = nullptr;
    {
      std::lock_guard handle_lock(handle_mutex_);
      db = std::exchange(db_, nullptr);
      open_.store(false, std::memory_order_release);
    }
    sqlite3_finalize(std::exchange(probe_, nullptr));  // a no-op for null
    if (db != nullptr) sqlite3_close_v2(db);
  }

  /// False after close(). Never blocks (also not while a statement runs).
  bool is_open() const noexcept { return open_.load(std::memory_order_acquire); }

  /// The raw handle; the caller must not use it concurrently with other calls on this
  /// connection, nor replace its busy or progress handlers (cancel() relies on them).
  /// Throws errc::closed after close().
  sqlite3* native() {
    std::lock_guard lock(mutex_);
    return require_open();
  }

  /// The canonical sqlite: form of what was opened, e.g. "sqlite:///tmp/app.db?mode=ro" or
  /// "sqlite::memory:" (itself a valid connection string).
  std::string description() const { return description_; }

 private:
  // Marks "a statement of ours runs": cancel() only acts inside such a scope, so a cancel()
  // while idle is a no-op and cannot hit the next statement.
  class execution_scope {
   public:
    explicit execution_scope(connection& c) : c_(c) { set(true); }
    ~execution_scope() { set(false); }
    execution_scope(const execution_scope&) = delete;
    execution_scope& operator=(const execution_scope&) = delete;

   private:
    void set(bool running) noexcept {
      std::lock_guard handle_lock(c_.handle_mutex_);
      c_.executing_ = running;
      c_.cancel_pending_.store(false, std::memory_order_relaxed);
    }
    connection& c_;
  };

  struct transaction_flag_guard {
    bool& flag;
    ~transaction_flag_guard() { flag = false; }
  };

  struct statement_guard {
    sqlite3_stmt* stmt;
    ~statement_guard() { sqlite3_finalize(stmt); }
  };

  static connection_options validate(connection_options o) {
    if (o.connect_timeout.count() < 0) {
      throw std::invalid_argument("sqlite::connection_options: connect_timeout must not be negative");
    }
    if (o.busy_timeout.count() < 0) {
      throw std::invalid_argument("sqlite::connection_options: busy_timeout must not be negative");
    }
    if (o.journal_mode && !detail::valid_journal_mode(*o.journal_mode)) {
      throw std::invalid_argument(
          "sqlite::connection_options: journal_mode must be DELETE, TRUNCATE, PERSIST, MEMORY, "
          "WAL or OFF");
    }
    switch (o.transaction_mode) {
      case sqlite::transaction_mode::deferred:
      case sqlite::transaction_mode::immediate:
      case sqlite::transaction_mode::exclusive: break;
      default: throw std::invalid_argument("sqlite::connection_options: transaction_mode is invalid");
    }
    return o;
  }

  static std::string_view begin_sql(sqlite::transaction_mode mode) {
    switch (mode) {
      case sqlite::transaction_mode::deferred: return "BEGIN DEFERRED";
      case sqlite::transaction_mode::exclusive: return "BEGIN EXCLUSIVE";
      case sqlite::transaction_mode::immediate: break;
    }
    return "BEGIN IMMEDIATE";
  }

  void open() {
    int flags = (read_only_ ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) |
                (create_ ? SQLITE_OPEN_CREATE : 0) | SQLITE_OPEN_FULLMUTEX;
#ifdef SQLITE_OPEN_EXRESCODE
    flags |= SQLITE_OPEN_EXRESCODE;
#endif
    if (target_.uri) flags |= SQLITE_OPEN_URI;
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(target_.filename.c_str(), &db, flags, nullptr);
    if (rc != SQLITE_OK) {
      int code = db != nullptr ? sqlite3_extended_errcode(db) : rc;
      std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      if ((code & 0xff) == SQLITE_CANTOPEN && !target_.uri) {
        auto reason = detail::explain_cantopen(target_.filename, create_);
        if (!reason.text.empty()) message += ": " + reason.text;
        if (reason.database_missing) {
          // Not "refused": there is nothing to open, and retrying will not make it appear.
          database_error e = detail::make_error(code, message, detail::phase::open, "opening " + description_);
          throw database_error(errc::database_not_found, e.what(), e.backend(), e.sqlstate(), e.native_code());
        }
      }
      throw detail::make_error(code, message, detail::phase::open, "opening " + description_);
    }
    sqlite3_extended_result_codes(db, 1);
    busy_limit_ = std::min(options_.busy_timeout, options_.connect_timeout);
    sqlite3_busy_handler(db, &connection::busy_callback, this);
    sqlite3_progress_handler(db, progress_interval, &connection::progress_callback, this);
    try {
      // Reads the header: a file that is not a database fails now, not at the first query.
      run(db, "PRAGMA schema_version", detail::phase::open, "opening ");
      if (options_.journal_mode) {
        run(db, "PRAGMA journal_mode = " + *options_.journal_mode, detail::phase::open, "opening ");
      }
      run(db, options_.foreign_keys ? "PRAGMA foreign_keys = ON" : "PRAGMA foreign_keys = OFF",
          detail::phase::open, "opening ");
    } catch (...) {
      sqlite3_close_v2(db);
      throw;
    }
    busy_limit_ = options_.busy_timeout;
    db_ = db;
    open_.store(true, std::memory_order_release);
  }

  sqlite3* require_open() const {
    if (db_ == nullptr) {
      throw database_error(errc::closed, "sqlite: connection is closed (" + description_ + ")",
                           std::string(backend_name));
    }
    return db_;
  }

  [[noreturn]] void fail(sqlite3* db, int rc, detail::phase where, std::string_view action) const {
    // The handle's error state describes rc unless rc is ours (an interrupt noticed between
    // statements, an out-of-memory read): then use SQLite's generic text for rc.
    int code = rc;
    std::string message = sqlite3_errstr(rc);
    if ((sqlite3_extended_errcode(db) & 0xff) == (rc & 0xff)) {
      code = sqlite3_extended_errcode(db);
      message = sqlite3_errmsg(db);
    }
    std::string context = std::string(action) + description_;
    int primary = code & 0xff;
    if (cancel_pending_.load(std::memory_order_relaxed) &&
        (primary == SQLITE_INTERRUPT || primary == SQLITE_BUSY || primary == SQLITE_LOCKED)) {
      // A lock wait that cancel() cut short reports SQLITE_BUSY: it is still a cancellation.
      throw database_error(errc::cancelled,
                           "sqlite: " + message + " [code " +
                               std::to_string(code) + "] (cancelled; " + context + ")",
                           std::string(backend_name), {}, code);
    }
    throw detail::make_error(code, message, where, context);
  }

  // The probe statement, prepared on first use and reused (SQLite prepares it again by itself
  // after a schema change); callers hold mutex_ inside an execution_scope.
  void probe_locked(sqlite3* db) {
    if (cancel_pending_.load(std::memory_order_relaxed)) fail(db, SQLITE_INTERRUPT, detail::phase::statement, "pinging ");
    if (probe_ == nullptr) {
      int rc = sqlite3_prepare_v2(db, "PRAGMA schema_version", -1, &probe_, nullptr);
      if (rc != SQLITE_OK) {
        sqlite3_finalize(probe_);
        probe_ = nullptr;
        fail(db, rc, detail::phase::statement, "pinging ");
      }
    }
    const int rc = sqlite3_step(probe_);
    sqlite3_reset(probe_);  // ends the read; the handle keeps step's error for fail()
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(db, rc, detail::phase::statement, "pinging ");
  }

  // Runs every statement of `sql`; callers hold mutex_.
  rows run(sqlite3* db, std::string_view sql, detail::phase where, std::string_view action) {
    rows result;
    const char* pos = sql.data();
    const char* const end = pos + sql.size();
    bool changed = false;
    while (pos != end) {
      if (cancel_pending_.load(std::memory_order_relaxed)) fail(db, SQLITE_INTERRUPT, where, action);
      sqlite3_stmt* stmt = nullptr;
      const char* tail = nullptr;
      int rc = sqlite3_prepare_v2(db, pos, static_cast<int>(end - pos), &stmt, &tail);
      statement_guard guard{stmt};
      if (rc != SQLITE_OK) fail(db, rc, where, action);
      if (tail == nullptr || tail <= pos) break;  // cannot happen without a NUL byte
      pos = tail;
      if (stmt == nullptr) continue;  // whitespace or a comment
      const auto changes_before = sqlite3_total_changes64(db);
      const int columns = sqlite3_column_count(stmt);
      std::vector<std::vector<std::optional<std::string>>> values;
      while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) values.push_back(read_row(db, stmt, columns));
      if (rc != SQLITE_DONE) fail(db, rc, where, action);
      if (sqlite3_total_changes64(db) != changes_before) {
        result.affected_rows += static_cast<std::uint64_t>(sqlite3_changes64(db));
        changed = true;
      }
      if (columns > 0) {
        result.columns.clear();
        for (int c = 0; c < columns; ++c) {
          const char* name = sqlite3_column_name(stmt, c);
          result.columns.emplace_back(name != nullptr ? name : "");
        }
        result.values = std::move(values);
      }
    }
    if (changed) result.last_insert_id = sqlite3_last_insert_rowid(db);
    return result;
  }

  std::vector<std::optional<std::string>> read_row(sqlite3* db, sqlite3_stmt* stmt, int columns) {
    std::vector<std::optional<std::string>> row;
    row.reserve(static_cast<std::size_t>(columns));
    for (int c = 0; c < columns; ++c) {
      switch (sqlite3_column_type(stmt, c)) {
        case SQLITE_NULL: row.emplace_back(std::nullopt); break;
        case SQLITE_BLOB: {
          const void* data = sqlite3_column_blob(stmt, c);
          auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
          if (data == nullptr && size > 0) fail(db, SQLITE_NOMEM, detail::phase::statement, "reading ");
          row.emplace_back(size == 0 ? std::string() : std::string(static_cast<const char*>(data), size));
          break;
        }
        default: {
          const unsigned char* text = sqlite3_column_text(stmt, c);
          auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
          if (text == nullptr) fail(db, SQLITE_NOMEM, detail::phase::statement, "reading ");
          row.emplace_back(std::string(reinterpret_cast<const char*>(text), size));
          break;
        }
      }
    }
    return row;
  }

  void commit() {
    sqlite3* db = require_open();  // fn may have closed the connection
    execution_scope scope(*this);  // COMMIT may wait for readers to finish
    run(db, "COMMIT", detail::phase::commit, "committing on ");
  }

  void rollback_quietly() noexcept {
    // SQLite itself rolls back after some errors (and keeps the transaction after a busy
    // COMMIT): only roll back what is still open.
    if (db_ != nullptr && sqlite3_get_autocommit(db_) == 0) {
      sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    }
  }

  database_error deadline_error(const char* what) const {
    return database_error(errc::timeout, std::string("sqlite: ") + what + " (" + description_ + ")",
                          std::string(backend_name));
  }

  // Called by SQLite on the thread running the statement. Returns non-zero to interrupt.
  static int progress_callback(void* self) noexcept {
    return static_cast<connection*>(self)->cancel_pending_.load(std::memory_order_relaxed) ? 1 : 0;
  }

  // Called by SQLite on the thread running the statement while another connection holds the
  // lock; `count` restarts at 0 for every new lock wait. Waits in growing steps up to
  // busy_limit_, waking at once on cancel(). Returns 0 to give up (SQLITE_BUSY).
  static int busy_callback(void* self, int count) noexcept {
    auto* c = static_cast<connection*>(self);
    try {
      static constexpr int steps_ms[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
      const auto now = std::chrono::steady_clock::now();
      if (count == 0) c->busy_started_ = now;
      const auto deadline =
          std::min(infra::detail::saturating_add(c->busy_started_, c->busy_limit_), c->call_deadline_);
      if (now >= deadline) return 0;
      const int index = std::min(count, static_cast<int>(std::size(steps_ms)) - 1);
      const auto step = std::min<std::chrono::steady_clock::duration>(
          std::chrono::milliseconds(steps_ms[index]), deadline - now);
      std::unique_lock handle_lock(c->handle_mutex_);
      bool cancelled = c->cancel_cv_.wait_for(
          handle_lock, step, [c] { return c->cancel_pending_.load(std::memory_order_relaxed); });
      return cancelled ? 0 : 1;
    } catch (...) {
      return 0;
    }
  }

  static constexpr int progress_interval = 1000;  // VM instructions between cancel checks

  const connection_options options_;
  const detail::open_target target_;
  bool read_only_ = false;
  bool create_ = true;
  std::string description_;

  mutable infra::detail::call_mutex mutex_;  // serialises all statements; held across transaction()
  sqlite3* db_ = nullptr;               // written under mutex_ AND handle_mutex_
  bool in_transaction_ = false;         // under mutex_
  std::chrono::milliseconds busy_limit_{0};                 // under mutex_
  std::chrono::steady_clock::time_point busy_started_{};    // under mutex_
  // The deadline of the bounded call in progress (try_ping_until), else max(); under mutex_.
  std::chrono::steady_clock::time_point call_deadline_ = std::chrono::steady_clock::time_point::max();
  sqlite3_stmt* probe_ = nullptr;  // the ping's prepared statement; under mutex_

  std::mutex handle_mutex_;  // guards db_ for cancel()/close(), executing_, cancel_cv_
  std::condition_variable cancel_cv_;
  bool executing_ = false;  // under handle_mutex_
  std::atomic<bool> cancel_pending_{false};
  std::atomic<bool> open_{false};
};

static_assert(database<connection>);
static_assert(database_with_ping<connection>);
static_assert(database_with_cancel<connection>);
static_assert(database_with_server_version<connection>);
static_assert(database_with_transaction<connection>);
static_assert(database_with_bounded_ping<connection>);

}  // namespace kysera::infra::sqlite

namespace kysera::infra::pool {
static_assert(pool_with_metrics<sqlite::connection>);
}  // namespace kysera::infra::pool
