#pragma once
/// \file
/// `kysera::infra::postgres::connection`: the PostgreSQL driver (libpqxx 6.4, 7.x and 8.x) over
/// the adapter skeleton (`adapters/detail/basic_connection.hpp`).

#include <atomic>
#include <chrono>
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
#include <vector>

#include "../../database.hpp"
#include "../../detail/socket.hpp"
#include "../../error.hpp"
#include "../detail/basic_connection.hpp"
#include "connection_string.hpp"
#include "driver.hpp"
#include "errors.hpp"
#include "exit_registry.hpp"
#include "options.hpp"

namespace kysera::infra::postgres {

/// Thread-safe: every member may be called from any thread; statements are serialised by one
/// internal recursive mutex, so two threads can share a connection (one statement at a time).
///
/// Connects eagerly. When a call fails because the session broke (killed, server restarted),
/// that call throws `errc::connection_lost` and is never replayed; the next call reconnects
/// first (one attempt). Inside `transaction()` it never reconnects. `cancel()` never blocks.
///
///     kysera::infra::postgres::connection db("host=127.0.0.1 port=5432 user=app password=s3cret");
///     auto n = db.transaction([](auto& c) {
///       c.execute("update accounts set balance = balance - 10 where id = 1");
///       return c.execute("select count(*) from accounts")[0][0].template as<long>();
///     });
class connection : public adapters::detail::basic_connection<connection> {
  using base = adapters::detail::basic_connection<connection>;
  friend base;

 public:
  static constexpr std::string_view backend_name = "postgres";
  static constexpr std::string_view session_prefix = "session to ";
  using native_type = pqxx::connection;

  /// Opens a session. `url_or_conninfo` is libpq conninfo ("host=... port=... password=...") or
  /// a postgres:// / postgresql:// URI. Bad options throw `std::invalid_argument`; a malformed
  /// string throws `database_error(errc::invalid_url)`; a failed connect throws `database_error`
  /// with connection_refused, authentication_failed, timeout, too_many_connections, ...
  explicit connection(std::string_view url_or_conninfo, connection_options options = {})
      : options_(detail::validated(std::move(options))),
        info_(detail::parse_connection_string(url_or_conninfo)),
        libpq_string_(detail::with_defaults(info_, detail::whole_seconds(options_.connect_timeout),
                                            options_.application_name)) {
    identify(detail::describe(info_), info_.secrets);
    use_statement_deadline(options_.statement_deadline, options_.statement_deadline_grace);
    add_secret_from_environment("PGPASSWORD");  // libpq also takes the password from there
    std::lock_guard lock(mutex_);
    open_first_session_locked();
  }

  /// Closes (see `close()`).
  ~connection() { close(); }

  /// Runs one statement and returns its result. Outside `transaction()` each statement runs in
  /// autocommit (a pqxx::nontransaction); inside, in the open transaction. Throws `database_error`;
  /// SQL text holding a NUL byte is refused with errc::query_failed before anything is sent.
  ///
  ///     auto r = db.execute("select id, name from users");
  ///     for (const auto& row : r) use(row[0].as<int>(), row[1].c_str());
  pqxx::result execute(std::string_view sql) {
    std::lock_guard lock(mutex_);
    check_open_locked();
    if (tx_) {
      ensure_session_locked();  // a lost session is final inside a transaction
      try {
        check_no_nul(sql);
        pqxx::result r =
            guarded_locked(detail::phase::statement, [&] { return detail::exec(*tx_, sql); });
        tx_failure_.reset();  // e.g. ROLLBACK TO SAVEPOINT: the transaction is usable again
        return r;
      } catch (const database_error& e) {
        if (!tx_failure_) tx_failure_.emplace(e);  // keep the first: the root cause
        throw;
      }
    }
    check_no_nul(sql);
    pqxx::connection& session = session_locked();
    return guarded_locked(detail::phase::statement, [&] {
      pqxx::nontransaction tx(session);
      pqxx::result r = detail::exec(tx, sql);
      tx.commit();
      return r;
    });
  }

  /// One round trip ("SELECT 1"); reconnects first when the session is known to be broken.
  ///
  ///     db.ping();  // throws database_error when the server cannot be reached
  void ping() { (void)execute("SELECT 1"); }

  /// `ping()` on the calling thread, bounded by `deadline` (the `database_with_bounded_ping`
  /// capability; the health check uses it). If the server has not answered by then, the
  /// session's socket is shut down: the call throws errc::timeout at once and the next call
  /// reconnects (session state is lost, as after any lost session). Throws errc::timeout as well
  /// when another call keeps the connection busy until the deadline. Returns false, doing
  /// nothing, when the session must be reopened first: a reconnect is bounded by
  /// `connect_timeout`, not by `deadline`.
  ///
  ///     bool answered = db.try_ping_until(std::chrono::steady_clock::now() + 500ms);
  using base::try_ping_until;

  /// Interrupts the statement running on another thread (libpq cancel request). Returns at once,
  /// also when the server is paused or unreachable: the request runs on a detached helper thread
  /// that owns what it needs (at most one at a time). Does nothing when no statement runs. The
  /// statement fails with errc::cancelled. PostgreSQL's cancel names a session, not a statement:
  /// a request that arrives after its statement finished can hit the next one on the session.
  ///
  ///     std::thread t([&] { db.execute("select pg_sleep(60)"); });  // throws errc::cancelled
  ///     db.cancel();
  using base::cancel;

  /// The server's version text, from `SELECT version()` ("PostgreSQL 15.8 (Debian ...) on ...").
  ///
  ///     log.info(db.server_version());
  std::string server_version() {
    pqxx::result r = execute("SELECT version()");
    return std::string(r[0][0].c_str());
  }

  /// Runs `fn(*this)` between BEGIN and COMMIT (a pqxx::work) while holding the connection, and
  /// returns what `fn` returns. `fn` runs on the calling thread and uses `execute` on the
  /// connection it receives. When `fn` throws: ROLLBACK, then the exception propagates. A lost
  /// session inside throws errc::connection_lost (no reconnect until the transaction ends); a
  /// COMMIT whose session broke throws errc::outcome_unknown. When `fn` catches a failed
  /// statement and returns normally, nothing is committed: the transaction rolls back and throws
  /// a `database_error` with the failed statement's errc (unless a later statement succeeded,
  /// e.g. ROLLBACK TO SAVEPOINT with libpqxx 7+). Nesting on one thread throws
  /// `std::logic_error`. For another isolation level, make the first statement
  /// "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE".
  ///
  ///     db.transaction([](kysera::infra::postgres::connection& c) {
  ///       c.execute("insert into audit(msg) values ('a')");
  ///       c.execute("insert into audit(msg) values ('b')");
  ///     });
  using base::transaction;

  /// Ends the session; idempotent and final. Waits for a statement (or transaction) in flight on
  /// another thread. Every later call throws errc::closed. Called from inside `transaction()`,
  /// it rolls the transaction back.
  ///
  ///     db.close();  // later calls throw database_error(errc::closed)
  using base::close;

  /// False once `close()` was called.
  using base::is_open;

  /// The libpqxx connection, reconnected first if it was broken. Valid until the next reconnect
  /// or `close()`; the caller must not use it concurrently with other calls on this object.
  ///
  ///     pqxx::work w(db.native());  // only while no other thread uses db
  pqxx::connection& native() {
    std::lock_guard lock(mutex_);
    check_open_locked();
    return session_locked();
  }

  /// The server process id of the current session; 0 when there is none. Lock-free, so another
  /// connection can use it (pg_terminate_backend) while this one is busy.
  ///
  ///     admin.execute("select pg_terminate_backend(" + std::to_string(db.backend_pid()) + ")");
  int backend_pid() const noexcept { return backend_pid_.load(); }

  /// "postgres://user@host:port/dbname" (never the password).
  using base::description;

  /// The options this connection was opened with.
  const connection_options& options() const noexcept { return options_; }

 private:
  /// libpq sends the SQL text as a C string: it would run only the part before a NUL byte.
  static void check_no_nul(std::string_view sql) {
    if (auto at = sql.find('\0'); at != std::string_view::npos) {
      throw database_error(errc::query_failed,
                           "postgres: the SQL text contains a NUL byte (at byte " + std::to_string(at) +
                               "); nothing was run",
                           std::string(backend_name));
    }
  }

  bool session_usable_locked() const noexcept {
    return session_ && !broken_ && session_->is_open();
  }

  /// The current session, reconnecting first (one attempt) when there is none or it broke,
  /// never inside a transaction.
  pqxx::connection& session_locked() {
    ensure_session_locked();
    return *session_;
  }

  void drop_session_locked() noexcept {
    std::shared_ptr<pqxx::connection> old;
    old.swap(session_);
    backend_pid_.store(0);
    socket_.reset();
    // Destroyed here, or on a cancel helper thread that still holds it.
    old.reset();
  }

  /// A session opened off the connection (see `session_opener`).
  struct opened_session {
    std::shared_ptr<pqxx::connection> connection;
    int backend_pid = 0;
    infra::detail::socket_handle socket;
  };

  /// Opens a session; touches nothing of the connection object, so it may run on any thread.
  static opened_session open_session(const std::string& libpq_string, std::chrono::milliseconds statement_timeout,
                                     const std::string& description, const std::vector<std::string>& secrets) {
    std::shared_ptr<pqxx::connection> fresh;
    try {
      fresh = std::make_shared<pqxx::connection>(libpq_string.c_str());  // char const* works in 6, 7 and 8
      detail::after_connect(*fresh);
      if (statement_timeout.count() > 0) {
        pqxx::nontransaction tx(*fresh);
        detail::exec(tx, "SET statement_timeout = " + std::to_string(statement_timeout.count()));
        tx.commit();
      }
    } catch (...) {
      throw detail::translate(std::current_exception(), detail::phase::connect, false, description, secrets);
    }
    opened_session s;
    s.backend_pid = fresh->backendpid();
    s.socket = infra::detail::socket_handle::duplicate(fresh->sock());  // libpq keeps it for the session
    s.connection = std::move(fresh);
    return s;
  }

  void reconnect_locked() {
    drop_session_locked();
    broken_ = false;
    adopt_session_locked(open_session(libpq_string_, options_.statement_timeout, description(), secrets()));
  }

  // ---- the bounded reconnect of basic_connection (a reconnect under a statement deadline)

  auto session_opener() const {
    return [libpq = libpq_string_, timeout = options_.statement_timeout, description = description(),
            secrets = secrets()] { return open_session(libpq, timeout, description, secrets); };
  }
  // Counted, so that process exit waits for a connect still running (exit_registry.hpp).
  static void start_detached(std::function<void()> job) { detail::connect_helpers::start(std::move(job)); }
  void adopt_session_locked(opened_session&& s) noexcept {
    drop_session_locked();
    broken_ = false;
    backend_pid_.store(s.backend_pid);
    socket_ = std::move(s.socket);
    session_ = std::move(s.connection);
  }

  /// Runs `fn` on the open session as one cancellable statement; translates what it throws and
  /// marks the session broken when the error says so.
  /// Bounded by the statement deadline (`bounded_locked`).
  template <class F>
  auto guarded_locked(detail::phase when, F&& fn) -> decltype(fn()) {
    return bounded_locked(when == detail::phase::commit ? statement_kind::commit : statement_kind::statement,
                          [&]() -> decltype(fn()) {
                            try {
                              statement_scope running(marker());
                              return fn();
                            } catch (...) {
                              bool open = session_ && session_->is_open();
                              database_error error = detail::translate(std::current_exception(), when, open,
                                                                       description(), secrets());
                              errc code = error.condition();
                              if (!open || code == errc::connection_lost || code == errc::outcome_unknown) {
                                broken_ = true;
                              }
                              throw error;
                            }
                          });
  }

  void begin_locked() {
    tx_failure_.reset();
    pqxx::connection& session = session_locked();
    guarded_locked(detail::phase::statement, [&] { tx_ = std::make_unique<pqxx::work>(session); });
  }

  void commit_locked() {
    if (tx_ && tx_failure_) {
      // fn swallowed a failed statement: PostgreSQL would answer COMMIT with a silent ROLLBACK.
      database_error failure = *tx_failure_;
      rollback_locked();
      throw database_error(failure.condition(),
                           "postgres: transaction rolled back because a statement in it failed (" +
                               std::string(failure.what()) + ")",
                           failure.backend(), failure.sqlstate(), failure.native_code());
    }
    std::unique_ptr<pqxx::work> tx = std::move(tx_);
    if (!tx) {
      check_open_locked();  // close() from inside fn already rolled back: errc::closed
      throw std::logic_error("postgres: the transaction ended before COMMIT");
    }
    if (!session_usable_locked()) {
      // The session broke before COMMIT was sent: the server has rolled the transaction back.
      tx.reset();
      ensure_session_locked();  // throws connection_lost: we are inside the transaction
    }
    guarded_locked(detail::phase::commit, [&] { tx->commit(); });
  }

  // Bounded as a statement is (cancelled at the deadline, the socket shut down after the grace).
  // A ROLLBACK not done in time, or not sent because the deadline had passed, ends the session
  // instead: the server rolls back when it goes, and the socket is shut down first so that
  // libpqxx's own ROLLBACK in the transaction's destructor cannot block either.
  void rollback_locked() noexcept {
    std::unique_ptr<pqxx::work> tx = std::move(tx_);
    if (!tx) return;
    try {
      guarded_locked(detail::phase::statement, [&] {
        tx->abort();  // libpqxx swallows a failing ROLLBACK on a broken session itself
      });
    } catch (...) {
      infra::detail::shut_socket_down(&socket_);
      broken_ = true;
    }
    if (!session_ || !session_->is_open()) broken_ = true;
    tx.reset();
  }

  // ---- hooks of basic_connection

  void begin_transaction_locked() { begin_locked(); }
  void commit_transaction_locked() { commit_locked(); }
  void rollback_transaction_locked() noexcept { rollback_locked(); }

  void close_session_locked() noexcept {
    rollback_locked();
    drop_session_locked();
  }

  // Runs under the statement marker's lock while a statement runs, so session_ is stable. The
  // cancel request runs on a detached helper thread that owns what it needs: libpq's cancel
  // blocks while the server is paused, and nobody waits for it. A cancel request is sent
  // unencrypted and touches no OpenSSL state, so unlike a background connect (exit_registry.hpp)
  // exit does not wait for it.
  bool interrupt_statement() noexcept {
    std::shared_ptr<pqxx::connection> target = session_;
    if (!target) return false;
    std::shared_ptr<adapters::detail::helper_slot> slot = cancel_slot_;
    if (!slot->claim()) return true;  // a request is on its way already
    try {
      std::thread([target = std::move(target), slot]() noexcept {
        try {
          target->cancel_query();
        } catch (...) {
        }
        slot->release();
      }).detach();
    } catch (...) {
      slot->release();
      return false;
    }
    return true;
  }

  bool ready_for_bounded_ping_locked() const noexcept { return (tx_ || session_usable_locked()) && socket_.valid(); }
  infra::detail::socket_handle& socket_locked() noexcept { return socket_; }
  void probe_locked() { (void)execute("SELECT 1"); }
  void mark_broken_locked() noexcept { broken_ = true; }

  connection_options options_;
  detail::conninfo info_;
  std::string libpq_string_;

  std::shared_ptr<pqxx::connection> session_;  // under mutex_; changes only while no statement runs
  std::unique_ptr<pqxx::work> tx_;            // the open transaction, if any (guarded by mutex_)
  std::optional<database_error> tx_failure_;  // the last statement in tx_ failed with this
  bool broken_ = false;  // the session failed in a way libpq may not report yet
  infra::detail::socket_handle socket_;  // the session's socket, for try_ping_until (under mutex_)
  std::atomic<int> backend_pid_{0};
  std::shared_ptr<adapters::detail::helper_slot> cancel_slot_ = std::make_shared<adapters::detail::helper_slot>();
};

}  // namespace kysera::infra::postgres
