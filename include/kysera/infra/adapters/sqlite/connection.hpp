#pragma once
/// \file
/// `kysera::infra::sqlite::connection`: the SQLite driver over the adapter skeleton
/// (`adapters/detail/basic_connection.hpp`), and its `pool::pool_traits` specialisation (a single
/// connection counts as a pool of one).

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "../../database.hpp"
#include "../../error.hpp"
#include "../../pool/metrics.hpp"
#include "../../rows.hpp"
#include "../detail/basic_connection.hpp"
#include "connection_string.hpp"
#include "driver.hpp"
#include "errors.hpp"
#include "options.hpp"

namespace kysera::infra::sqlite {

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
class connection : public adapters::detail::basic_connection<connection> {
  using base = adapters::detail::basic_connection<connection>;
  friend base;

 public:
  static constexpr std::string_view backend_name = "sqlite";
  static constexpr std::string_view session_prefix = "";

  /// Opens eagerly (and reads the file header, so a file that is not a database fails here).
  /// Throws std::invalid_argument for bad options, database_error(errc::invalid_url) for a bad
  /// string, and database_error with connection_refused (SQLITE_CANTOPEN: missing directory),
  /// database_not_found (a missing file without create), authentication_failed (SQLITE_NOTADB:
  /// not a database, or encrypted with another key), busy, ... on failure.
  ///
  ///     kysera::infra::sqlite::connection db(":memory:");
  explicit connection(std::string_view path_or_url, connection_options options = {})
      : options_(detail::validate(std::move(options))), target_(detail::parse_target(path_or_url)) {
    read_only_ = options_.read_only || target_.mode == std::optional<std::string>("ro");
    create_ = !read_only_ && (target_.mode ? *target_.mode == "rwc" : options_.create);
    identify(detail::describe(target_, read_only_));
    use_statement_deadline(options_.statement_deadline, std::chrono::milliseconds::zero());
    wait_.marker = &marker();
    open();
  }

  /// Closes (waits for a statement in flight on another thread).
  ~connection() { close(); }

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
    check_open_locked();
    if (sql.find('\0') != std::string_view::npos) {
      throw error(errc::query_failed, "SQL text contains a NUL byte");
    }
    if (sql.size() > static_cast<std::size_t>(INT_MAX)) {
      throw error(errc::query_failed, "SQL text is too long", {}, SQLITE_TOOBIG);
    }
    return bounded_locked(statement_kind::statement, [&] {
      statement_scope scope(marker());
      return run(sql, detail::phase::statement, "executing on ");
    });
  }

  /// Reads the schema version from the file header: checks that the file is still a readable
  /// database (waits for a lock like any statement). The statement is prepared once and reused.
  /// Throws database_error.
  ///
  ///     db.ping();
  void ping() {
    std::lock_guard lock(mutex_);
    check_open_locked();
    bounded_locked(statement_kind::statement, [&] {
      statement_scope scope(marker());
      probe_locked();
    });
  }

  /// `ping()` bounded by `deadline` (the `database_with_bounded_ping` capability; the health
  /// check uses it): a lock wait still going at the deadline gives up and the call throws
  /// errc::timeout; the connection stays usable. Throws errc::timeout as well when another call
  /// keeps the connection busy until the deadline. Always returns true (SQLite never needs a
  /// reconnect first). Only file I/O that the operating system itself does not bound (a hung
  /// network file system) can hold it longer.
  ///
  ///     db.try_ping_until(std::chrono::steady_clock::now() + 100ms);
  using base::try_ping_until;

  /// Interrupts the statement (or lock wait) running in `execute`, `ping` or `transaction` on
  /// another thread, which then throws database_error(errc::cancelled). Returns at once; a no-op
  /// when nothing runs or after close().
  ///
  ///     std::thread t([&] { db.execute(long_sql); });  // throws errc::cancelled
  ///     db.cancel();
  using base::cancel;

  /// The SQLite library version, e.g. "3.40.1" (sqlite3_libversion()). Throws errc::closed
  /// after close().
  std::string server_version() {
    std::lock_guard lock(mutex_);
    check_open_locked();
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
  using base::transaction;

  /// As `transaction(fn)`, with the BEGIN mode chosen for this call (e.g. `deferred` for a
  /// read-only transaction that must not take the write lock).
  ///
  ///     db.transaction(kysera::infra::sqlite::transaction_mode::deferred, [](auto& c) { ... });
  template <class F>
  std::invoke_result_t<F&, connection&> transaction(sqlite::transaction_mode mode, F&& fn) {
    return run_transaction(fn, mode);
  }

  /// Closes the handle: idempotent and final. Waits for a statement in flight on another thread
  /// (it does not interrupt it; call cancel() first for that). Afterwards every call except
  /// close(), cancel(), is_open() and description() throws database_error(errc::closed).
  using base::close;

  /// The raw handle; the caller must not use it concurrently with other calls on this
  /// connection, nor replace its busy or progress handlers (cancel() relies on them).
  /// Throws errc::closed after close().
  sqlite3* native() {
    std::lock_guard lock(mutex_);
    check_open_locked();
    return db_;
  }

  /// The canonical sqlite: form of what was opened, e.g. "sqlite:///tmp/app.db?mode=ro" or
  /// "sqlite::memory:" (itself a valid connection string).
  using base::description;

 private:
  void open() {
    int flags = (read_only_ ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | (create_ ? SQLITE_OPEN_CREATE : 0) |
                SQLITE_OPEN_FULLMUTEX;
#ifdef SQLITE_OPEN_EXRESCODE
    flags |= SQLITE_OPEN_EXRESCODE;
#endif
    if (target_.uri) flags |= SQLITE_OPEN_URI;
    sqlite3* db = nullptr;
    int rc = sqlite3_open_v2(target_.filename.c_str(), &db, flags, nullptr);
    const std::string context = "opening " + description();
    if (rc != SQLITE_OK) {
      int code = db != nullptr ? sqlite3_extended_errcode(db) : rc;
      std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
      sqlite3_close_v2(db);
      if ((code & 0xff) == SQLITE_CANTOPEN && !target_.uri) {
        auto reason = detail::explain_cantopen(target_.filename, create_);
        if (!reason.text.empty()) message += ": " + reason.text;
        if (reason.database_missing) {
          // Not "refused": there is nothing to open, and retrying will not make it appear.
          database_error e = detail::make_error(code, message, detail::phase::open, context);
          throw database_error(errc::database_not_found, e.what(), e.backend(), e.sqlstate(), e.native_code());
        }
      }
      throw detail::make_error(code, message, detail::phase::open, context);
    }
    sqlite3_extended_result_codes(db, 1);
    wait_.limit = std::min(options_.busy_timeout, options_.connect_timeout);
    wait_.install(db);
    db_ = db;
    try {
      // Reads the header: a file that is not a database fails now, not at the first query.
      run("PRAGMA schema_version", detail::phase::open, "opening ");
      if (options_.journal_mode) run("PRAGMA journal_mode = " + *options_.journal_mode, detail::phase::open, "opening ");
      run(options_.foreign_keys ? "PRAGMA foreign_keys = ON" : "PRAGMA foreign_keys = OFF", detail::phase::open,
          "opening ");
    } catch (...) {
      db_ = nullptr;
      sqlite3_close_v2(db);
      throw;
    }
    wait_.limit = options_.busy_timeout;
  }

  [[noreturn]] void fail(int rc, detail::phase where, std::string_view action) const {
    throw detail::error_from(db_, rc, where, std::string(action) + description(), cancel_requested());
  }

  // The probe statement, prepared on first use and reused (SQLite prepares it again by itself
  // after a schema change); callers hold mutex_ inside a statement_scope.
  void probe_locked() {
    if (cancel_requested()) fail(SQLITE_INTERRUPT, detail::phase::statement, "pinging ");
    if (probe_ == nullptr) {
      int rc = sqlite3_prepare_v2(db_, "PRAGMA schema_version", -1, &probe_, nullptr);
      if (rc != SQLITE_OK) {
        sqlite3_finalize(probe_);
        probe_ = nullptr;
        fail(rc, detail::phase::statement, "pinging ");
      }
    }
    const int rc = sqlite3_step(probe_);
    sqlite3_reset(probe_);  // ends the read; the handle keeps step's error for fail()
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(rc, detail::phase::statement, "pinging ");
  }

  // Runs every statement of `sql`; callers hold mutex_.
  rows run(std::string_view sql, detail::phase where, std::string_view action) {
    return detail::run_all(
        db_, sql, [&](int rc) { fail(rc, where, action); }, [&] { return cancel_requested(); });
  }

  // ---- hooks of basic_connection

  void begin_transaction_locked() { begin_transaction_locked(options_.transaction_mode); }

  void begin_transaction_locked(sqlite::transaction_mode mode) {
    bounded_locked(statement_kind::statement, [&] {
      statement_scope scope(marker());  // BEGIN IMMEDIATE may wait for the write lock
      (void)run(detail::begin_sql(mode), detail::phase::statement, "beginning a transaction on ");
    });
  }

  void commit_transaction_locked() {
    check_open_locked();             // fn may have closed the connection
    bounded_locked(statement_kind::commit, [&] {
      statement_scope scope(marker());  // COMMIT may wait for readers to finish
      (void)run("COMMIT", detail::phase::commit, "committing on ");
    });
  }

  void rollback_transaction_locked() noexcept {
    // SQLite itself rolls back after some errors (and keeps the transaction after a busy
    // COMMIT): only roll back what is still open.
    if (db_ != nullptr && sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

  // Runs under the marker's lock while a statement runs, so db_ is the open handle.
  bool interrupt_statement() noexcept {
    sqlite3_interrupt(db_);
    return true;
  }

  // Statement deadlines (basic_connection::bounded_locked): the progress handler interrupts a
  // statement and the busy handler gives a lock wait up at the deadline; no watchdog needed.
  void bound_statements_locked(std::chrono::steady_clock::time_point deadline) noexcept {
    wait_.call_deadline = deadline;
  }

  bool ready_for_bounded_ping_locked() const noexcept { return true; }

  bool bounded_ping_locked(std::chrono::steady_clock::time_point deadline) {
    statement_scope scope(marker());
    wait_.call_deadline = deadline;
    struct end_of_call {
      std::chrono::steady_clock::time_point& deadline;
      ~end_of_call() { deadline = std::chrono::steady_clock::time_point::max(); }
    } reset{wait_.call_deadline};
    try {
      probe_locked();
    } catch (const database_error& e) {
      if (e.condition() == errc::busy && std::chrono::steady_clock::now() >= deadline) {
        throw deadline_error("no answer by the deadline (another connection held a lock)");
      }
      throw;
    }
    return true;
  }

  void close_session_locked() noexcept {
    sqlite3_finalize(std::exchange(probe_, nullptr));  // a no-op for null
    if (sqlite3* db = std::exchange(db_, nullptr); db != nullptr) sqlite3_close_v2(db);
  }

  const connection_options options_;
  const detail::open_target target_;
  bool read_only_ = false;
  bool create_ = true;

  sqlite3* db_ = nullptr;          // under mutex_; set before the first statement, cleared by close()
  sqlite3_stmt* probe_ = nullptr;  // the ping's prepared statement; under mutex_
  detail::lock_wait wait_;         // the busy and progress handlers' state; under mutex_
};

static_assert(database<connection>);
static_assert(database_with_ping<connection>);
static_assert(database_with_cancel<connection>);
static_assert(database_with_server_version<connection>);
static_assert(database_with_transaction<connection>);
static_assert(database_with_bounded_ping<connection>);

}  // namespace kysera::infra::sqlite

namespace kysera::infra::pool {

/// A single SQLite connection counts as a pool of one: total 1, idle 0, active 1 while open;
/// total 0 and active 0 once closed (so total == idle + active always holds); waiting 0, max 1.
template <>
struct pool_traits<sqlite::connection> {
  static pool_metrics get_metrics(sqlite::connection& c) {
    std::size_t open = c.is_open() ? 1 : 0;
    return pool_metrics{open, 0, open, 0, 1};
  }
  static void close(sqlite::connection& c) { c.close(); }
};

static_assert(pool_with_metrics<sqlite::connection>);

}  // namespace kysera::infra::pool
