#pragma once
/// \file
/// `kysera::infra::mysql::connection`: the MySQL/MariaDB driver (Connector/C++ legacy JDBC API,
/// 1.1 and 8.x/9.x) over the adapter skeleton (`adapters/detail/basic_connection.hpp`).

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>

#include "../../detail/socket.hpp"
#include "../../error.hpp"
#include "../../rows.hpp"
#include "../detail/basic_connection.hpp"
#include "connection_string.hpp"
#include "driver.hpp"
#include "errors.hpp"
#include "options.hpp"

namespace kysera::infra::mysql {

/// Thread-safe: every member may be called from any thread; statements are serialised by one
/// internal recursive mutex (so `transaction`'s callable can call `execute` on the same object).
///
/// Connects eagerly. When a call fails because the session broke (killed, server restarted,
/// read timeout) it throws `errc::connection_lost` (or `timeout`) and is never replayed; the next
/// call reconnects first (one attempt). Inside `transaction` it never reconnects. Session state
/// (SET variables, temporary tables, user locks) does not survive a reconnect.
///
///     kysera::infra::mysql::connection db("mysql://app:secret@127.0.0.1:3306/shop?connect_timeout=5");
///     auto r = db.execute("SELECT id, name FROM users");
///     db.transaction([](auto& tx) { tx.execute("UPDATE stock SET n = n - 1 WHERE id = 7"); });
class connection : public adapters::detail::basic_connection<connection> {
  using base = adapters::detail::basic_connection<connection>;
  friend base;

 public:
  static constexpr std::string_view backend_name = "mysql";
  static constexpr std::string_view session_prefix = "on ";

  /// Parses `url` (`mysql://` or `mariadb://`, default port 3306; parameters connect_timeout,
  /// read_timeout, write_timeout, cancel_timeout in seconds or with an "ms" suffix, ssl-mode,
  /// ssl-ca, ssl-cert, ssl-key, and socket for `mysql://user@localhost/db?socket=/path`, each
  /// overriding `options`) and connects. Bad options: `std::invalid_argument` naming the field; bad URL:
  /// `database_error(errc::invalid_url)`; connect failure: `database_error` with its `errc`.
  ///
  ///     kysera::infra::mysql::connection_options o;
  ///     o.connect_timeout = 3s;
  ///     kysera::infra::mysql::connection db("mysql://app:secret@db:3306/shop", o);
  explicit connection(std::string_view url, connection_options options = {}) {
    detail::validate(options);
    target_ = detail::parse_mysql_url(url, options);
    options_ = options;
    identify(detail::describe(target_), target_.secrets);
    use_statement_deadline(options_.statement_deadline, options_.statement_deadline_grace);
    cancel_ = std::make_shared<detail::mysql_cancel_target>();
    cancel_->target = target_;
    cancel_->timeout_s = detail::driver_seconds(options_.cancel_timeout);
    std::lock_guard lock(mutex_);
    open_first_session_locked();
  }

  /// Closes (waits for a statement in flight).
  ~connection() { close(); }

  /// Runs one statement and returns its result, copied out: columns, values (NULL is nullopt),
  /// `affected_rows` for statements without a result set, `last_insert_id` when
  /// `fetch_last_insert_id` is on. Throws `database_error`.
  ///
  ///     auto r = db.execute("SELECT name FROM users WHERE id = 1");
  ///     std::string name = r.at(0, "name").value_or("");
  rows execute(std::string_view sql) {
    std::lock_guard lock(mutex_);
    rows out = run_locked(sql, detail::mysql_phase::statement);
    if (options_.fetch_last_insert_id && out.affected_rows > 0 && !broken_ && detail::mysql_is_insert(sql)) {
      // The insert happened: a failure here must not turn it into an error the caller would retry.
      try {
        rows id = run_locked("SELECT LAST_INSERT_ID()", detail::mysql_phase::statement);
        if (!id.empty() && id.at(0, 0)) out.last_insert_id = std::stoll(*id.at(0, 0));
      } catch (...) {
      }
    }
    return out;
  }

  /// One real round trip (`SELECT 1`); the driver's isValid() is not trusted against MariaDB.
  ///
  ///     db.ping();
  void ping() {
    std::lock_guard lock(mutex_);
    probe_locked();
  }

  /// `ping()` on the calling thread, bounded by `deadline` (the `database_with_bounded_ping`
  /// capability; the health check uses it). If the server has not answered by then, the
  /// session's socket is shut down: the call throws errc::timeout at once and the next call
  /// reconnects (session state is lost, as after any lost session). Throws errc::timeout as well
  /// when another call keeps the connection busy until the deadline. Returns false, doing
  /// nothing, when the session must be reopened first (a reconnect is bounded by
  /// `connect_timeout`) or its socket is unknown: the driver does not expose it, so the adapter
  /// finds it after connecting by the client port the server reports (Linux, TCP).
  ///
  ///     bool answered = db.try_ping_until(std::chrono::steady_clock::now() + 500ms);
  using base::try_ping_until;

  /// Interrupts the statement another thread is running on this connection with
  /// `KILL QUERY <connection id>`, sent from a detached helper thread over a short-lived second
  /// session (`cancel_timeout`), so it returns at once even when the server is paused or gone.
  /// The interrupted call throws `errc::cancelled`. No-op when nothing runs; at most one helper
  /// per connection at a time. Whatever statement runs when the KILL arrives is interrupted.
  ///
  ///     std::thread t([&] { db.execute("SELECT SLEEP(60)"); });  // throws errc::cancelled
  ///     db.cancel();
  using base::cancel;

  /// The server's version text (`SELECT VERSION()`), e.g. "10.11.6-MariaDB-0+deb12u1".
  ///
  ///     std::string v = db.server_version();
  std::string server_version() {
    std::lock_guard lock(mutex_);
    rows r = run_locked("SELECT VERSION()", detail::mysql_phase::statement);
    if (r.empty() || !r.at(0, 0)) return {};
    return *r.at(0, 0);
  }

  /// Runs `fn(*this)` between START TRANSACTION and COMMIT, holding the connection for the whole
  /// call; ROLLBACK and rethrow when `fn` throws; returns what `fn` returns. A lost connection
  /// inside throws `errc::connection_lost` and is not reconnected until the call ends; a COMMIT
  /// that fails because the connection broke throws `errc::outcome_unknown`. Nested calls on
  /// the same thread throw `std::logic_error`.
  ///
  ///     int n = db.transaction([](kysera::infra::mysql::connection& tx) {
  ///       tx.execute("UPDATE accounts SET balance = balance - 10 WHERE id = 1");
  ///       return 1;
  ///     });
  using base::transaction;

  /// Idempotent and final: waits for a statement in flight, then ends the session. Every later
  /// call throws `errc::closed`.
  ///
  ///     db.close();
  using base::close;

  /// False after `close()`.
  using base::is_open;

  /// The driver's session (reconnecting first if it broke). The caller must not use it
  /// concurrently with other calls on this object.
  ///
  ///     sql::Connection& raw = db.native();
  ::sql::Connection& native() {
    std::lock_guard lock(mutex_);
    return session_locked();
  }

  /// The server's id of the current session (`CONNECTION_ID()`), 0 while not connected; it
  /// changes on reconnect. Useful for `KILL` and for reading the process list.
  std::uint64_t connection_id() const noexcept { return connection_id_.load(); }

  /// "mysql://user@host:port/db": never the password.
  using base::description;

 private:
  // ---- hooks of basic_connection

  void begin_transaction_locked() { run_locked("START TRANSACTION", detail::mysql_phase::statement); }
  void commit_transaction_locked() { run_locked("COMMIT", detail::mysql_phase::commit); }
  void rollback_transaction_locked() noexcept { rollback_quietly_locked(); }
  void close_session_locked() noexcept { drop_locked(); }

  // Runs under the statement marker's lock while a statement runs. The KILL QUERY goes out from
  // a detached helper thread that the driver's exit registry waits for (it tears the client
  // library down at exit), over a short-lived second session bounded by cancel_timeout.
  bool interrupt_statement() noexcept {
    std::uint64_t id = connection_id_.load();
    if (id == 0) return false;
    std::shared_ptr<detail::mysql_cancel_target> target = cancel_;
    if (!target->slot.claim()) return true;  // a KILL is on its way already
    detail::mysql_helper_registry* registry = nullptr;
    try {
      registry = detail::mysql_globals().helpers;
      registry->enter();
      std::thread([target, id, registry] {
        thread_local detail::mysql_helper_registry::leave_at_thread_exit leave{registry};
        detail::mysql_kill_query(*target, id);
        target->slot.release();
      }).detach();
    } catch (...) {
      if (registry) registry->leave();
      target->slot.release();
      return false;
    }
    return true;
  }

  // Not armed across a reconnect: session_locked() will not reopen what is alive now.
  bool ready_for_bounded_ping_locked() noexcept {
    return socket_.valid() && (in_transaction_locked() || session_alive_locked());
  }
  infra::detail::socket_handle& socket_locked() noexcept { return socket_; }

  void rollback_quietly_locked() noexcept {
    if (!is_open() || !conn_ || broken_) return;  // a broken session rolled back on its own
    try {
      run_locked("ROLLBACK", detail::mysql_phase::statement);
    } catch (...) {
      // Not rolled back (e.g. the deadline had passed, so it was not sent): the transaction must
      // not stay open on a session the next call reuses; a new session rolls it back.
      mark_broken_locked();
    }
  }

  database_error make_error(errc code, const std::string& what, const std::string& sqlstate, int native,
                            const char* context) const {
    return error(code, what + " (" + context + " " + description() + ")", sqlstate, native);
  }

  /// A session opened off the connection (see `session_opener`).
  struct opened_session {
    std::unique_ptr<::sql::Connection> connection;
    std::uint64_t id = 0;
    infra::detail::socket_handle socket;
  };

  /// Opens a session; touches nothing of the connection object, so it may run on any thread
  /// (one that has used the driver: `detail::mysql_driver()`). `fail` builds the error.
  template <class Fail>
  static opened_session open_session(const detail::mysql_target& target, const connection_options& options,
                                     Fail&& fail) {
    using clock = std::chrono::steady_clock;
    int connect_s = detail::driver_seconds(options.connect_timeout);
    auto start = clock::now();
    opened_session s;
    try {
      s.connection = detail::mysql_open(target, connect_s, detail::driver_seconds(options.read_timeout),
                                        detail::driver_seconds(options.write_timeout), true);
      std::unique_ptr<::sql::Statement> st(s.connection->createStatement());
      std::unique_ptr<::sql::ResultSet> rs(st->executeQuery("SELECT CONNECTION_ID()"));
      if (rs->next()) s.id = rs->getUInt64(1);
    } catch (const ::sql::SQLException& e) {
      int code = e.getErrorCode();
      errc ec = detail::classify_mysql_error(code, e.getSQLStateCStr(), detail::mysql_phase::connect);
      // A connect or handshake that ran into the connect timeout reports a network error.
      auto elapsed = clock::now() - start;
      if (detail::is_network_error(code) && elapsed >= std::chrono::seconds(connect_s) - std::chrono::milliseconds(200)) {
        ec = errc::timeout;
      }
      throw fail(ec, detail::readable_connect_text(code, e.what(), ec, detail::over_socket(target)),
                 e.getSQLStateCStr(), code);
    } catch (const std::bad_alloc&) {
      throw;
    } catch (const std::exception& e) {
      throw fail(errc::backend_error, e.what(), std::string(), 0);
    }
    s.socket = find_socket(*s.connection, target.port);
    return s;
  }

  void connect_locked() {
    adopt_session_locked(open_session(target_, options_, [this](errc ec, const std::string& what,
                                                                const std::string& sqlstate, int code) {
      return make_error(ec, what, sqlstate, code, "connecting to");
    }));
  }

  // ---- the bounded reconnect of basic_connection (a reconnect under a statement deadline)

  auto session_opener() const {
    // What the helper needs, copied: it must not touch this object, which may be gone by then.
    return [target = target_, options = options_, secrets = secrets(), where = " (connecting to " + description() + ")"] {
      return open_session(target, options, [&](errc ec, const std::string& what, const std::string& sqlstate, int code) {
        return database_error(ec, infra::detail::redact(std::string(backend_name) + ": " + what + where, secrets),
                              std::string(backend_name), sqlstate, code);
      });
    };
  }

  // On a detached thread that the driver's exit registry waits for, ready to use the driver.
  static void start_detached(std::function<void()> job) {
    detail::mysql_helper_registry* registry = detail::mysql_globals().helpers;
    registry->enter();
    try {
      std::thread([registry, job = std::move(job)] {
        thread_local detail::mysql_helper_registry::leave_at_thread_exit leave{registry};
        detail::mysql_driver();
        job();
      }).detach();
    } catch (...) {
      registry->leave();
      throw;
    }
  }

  void adopt_session_locked(opened_session&& s) noexcept {
    drop_locked();
    conn_ = std::move(s.connection);
    broken_ = false;
    connection_id_.store(s.id);
    socket_ = std::move(s.socket);
  }

  /// The session's socket, found by the client port the server reports for it; invalid when
  /// unknown.
  static infra::detail::socket_handle find_socket(::sql::Connection& c, std::uint16_t server_port) noexcept {
    if constexpr (!infra::detail::can_find_tcp_sockets) {
      return {};
    } else {
      try {
        rows r = detail::mysql_run(c, "SELECT HOST FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()");
        if (r.empty() || !r.at(0, 0)) return {};
        auto port = infra::detail::trailing_port(*r.at(0, 0));
        if (!port) return {};
        return infra::detail::socket_handle::duplicate(infra::detail::find_tcp_socket(*port, server_port));
      } catch (...) {
        return {};  // no bounded ping on this session; everything else works as before
      }
    }
  }

  void mark_broken_locked() noexcept {
    broken_ = true;
    connection_id_.store(0);  // no KILL QUERY for a session that is gone
  }

  void drop_locked() noexcept {
    connection_id_.store(0);
    socket_.reset();
    if (!conn_) return;
    try {
      detail::mysql_driver();  // this thread may never have used the driver
      conn_->close();
    } catch (...) {
    }
    try {
      conn_.reset();
    } catch (...) {
    }
  }

  /// The session for the next statement: throws `closed`; reconnects when it broke (never inside
  /// a transaction).
  ::sql::Connection& session_locked() {
    check_open_locked();
    ensure_session_locked();
    return *conn_;
  }

  bool session_usable_locked() noexcept { return session_alive_locked(); }

  void reconnect_locked() {
    drop_locked();
    connect_locked();
  }

  /// Whether the session can take a statement now without a reconnect (marks it broken when the
  /// driver has closed it).
  bool session_alive_locked() noexcept {
    if (!conn_ || broken_) return false;
    try {
      detail::mysql_driver();
      if (conn_->isClosed()) broken_ = true;
    } catch (...) {
      broken_ = true;
    }
    return !broken_;
  }

  rows run_locked(std::string_view sql, detail::mysql_phase phase) {
    return guarded_locked(phase, [sql](::sql::Connection& c) { return detail::mysql_run(c, sql); });
  }

  /// `SELECT 1` without copying a result out: the ping's round trip and little else.
  void probe_locked() {
    guarded_locked(detail::mysql_phase::statement, [](::sql::Connection& c) {
      std::unique_ptr<::sql::Statement> st(c.createStatement());
      std::unique_ptr<::sql::ResultSet> rs(st->executeQuery(::sql::SQLString("SELECT 1")));
      while (rs->next()) {
      }
    });
  }

  /// Runs `fn(session)` as one cancellable statement (reconnecting first when the session
  /// broke); translates what it throws into `database_error` and marks a lost session.
  template <class F>
  auto guarded_locked(detail::mysql_phase phase, F&& fn) -> decltype(fn(std::declval<::sql::Connection&>())) {
    using clock = std::chrono::steady_clock;
    ::sql::Connection& c = session_locked();
    detail::mysql_driver();
    using result_type = decltype(fn(c));
    return bounded_locked(phase == detail::mysql_phase::commit ? statement_kind::commit : statement_kind::statement,
                          [&]() -> result_type {
                            statement_scope running(marker());
                            auto start = clock::now();
                            try {
                              return fn(c);
                            } catch (const ::sql::SQLException& e) {
                              throw statement_error(e.getErrorCode(), e.getSQLStateCStr(), e.what(), phase,
                                                    clock::now() - start);
                            } catch (const std::bad_alloc&) {
                              throw;
                            } catch (const std::exception& e) {
                              throw statement_error(0, "", e.what(), phase, clock::now() - start);
                            }
                          });
  }

  database_error statement_error(int code, const std::string& sqlstate, const std::string& what,
                                 detail::mysql_phase phase, std::chrono::steady_clock::duration elapsed) {
    errc ec = detail::classify_mysql_error(code, sqlstate, phase);
    // Whatever the number, an error that means "the session is gone" (e.g. 1153, a packet over
    // max_allowed_packet, arrives as SQLSTATE 08S01 and the server closes the session) must make
    // the next call reconnect rather than fail with "server has gone away".
    bool broken = detail::is_session_broken(code) || ec == errc::connection_lost || ec == errc::outcome_unknown;
    if (!broken) {
      try {
        broken = conn_->isClosed();
      } catch (...) {
        broken = true;
      }
    }
    if (broken) mark_broken_locked();
    bool cancelled = cancel_requested();
    if (cancelled && (code == detail::mysql_code::query_interrupted ||
                      code == detail::mysql_code::connection_killed || code == detail::mysql_code::server_lost)) {
      ec = errc::cancelled;  // MariaDB may report a KILL QUERY as a killed or lost connection
    } else if (broken && options_.read_timeout.count() > 0 && detail::is_network_error(code) &&
               elapsed >= std::chrono::seconds(detail::driver_seconds(options_.read_timeout)) -
                              std::chrono::milliseconds(200)) {
      ec = phase == detail::mysql_phase::commit ? errc::outcome_unknown : errc::timeout;
    }
    std::string text = what;
    if (ec == errc::outcome_unknown) {
      text = "connection lost during COMMIT; the transaction may or may not have committed: " + text;
    } else if (ec == errc::timeout && detail::is_network_error(code)) {
      // The driver only says "Lost connection": say that it was our read_timeout.
      text = "no answer within read_timeout (" + std::to_string(detail::driver_seconds(options_.read_timeout)) +
             " s), so the session was dropped: " + text;
    } else if (ec == errc::cancelled && code != detail::mysql_code::query_interrupted) {
      text = "statement cancelled: " + text;  // MariaDB reported the KILL QUERY as a killed session
    }
    return make_error(ec, text, sqlstate, code, "on");
  }

  detail::mysql_target target_;
  connection_options options_;
  std::shared_ptr<detail::mysql_cancel_target> cancel_;

  std::unique_ptr<::sql::Connection> conn_;  // guarded by mutex_
  infra::detail::socket_handle socket_;      // guarded by mutex_: conn_'s socket, if known
  bool broken_ = false;                      // guarded by mutex_: reconnect before the next statement
  std::atomic<std::uint64_t> connection_id_{0};
};

}  // namespace kysera::infra::mysql
