#pragma once
/// \file
/// `adapters::detail::basic_connection<Driver>`: the one connection skeleton every backend plugs
/// into (the spdlog `base_sink` pattern). The skeleton owns what every adapter must get right the
/// same way: the call lock, the "closed" check, the "a statement of ours is running" marker that
/// `cancel()` acts on, the bounded ping, the BEGIN/COMMIT/ROLLBACK frame of `transaction(fn)`,
/// and messages that never carry a secret. A backend is a driver class deriving from
/// `basic_connection<itself>` that supplies hooks; it writes no locking of its own.
///
/// The hooks a driver provides (all called with the call lock held unless said otherwise; see
/// docs/adapters/writing-an-adapter.md for the full contract):
///   static constexpr std::string_view backend_name;    "postgres", "mysql", ...
///   static constexpr std::string_view session_prefix;  goes before the description in messages
///   void close_session_locked() noexcept;               releases everything (close())
///   bool session_usable_locked();                       (server backends, for ensure_session_locked)
///   void reconnect_locked();                            opens a fresh session
///   void begin_transaction_locked(args...);             BEGIN (transaction())
///   void commit_transaction_locked();                   COMMIT
///   void rollback_transaction_locked() noexcept;        ROLLBACK, best effort
///   bool interrupt_statement() noexcept;                from cancel(), on any thread, while a
///                                                       statement runs; false if it could not
///   optionally, so that a reconnect under a deadline is bounded by it:
///     auto session_opener() const;                      a callable owning copies of what it needs,
///                                                       that opens a session on any thread
///     void start_detached(std::function<void()>);       runs a job on a detached helper thread
///     void adopt_session_locked(session&&);             makes an opened session the connection's
///   optionally, for a backend that bounds its statements itself instead of the watchdog:
///     void bound_statements_locked(time_point deadline); max() when the statement has ended
///   bool ready_for_bounded_ping_locked();               try_ping_until() may go ahead
///   then either
///     infra::detail::socket_handle& socket_locked();    the session's socket, shut down at a
///     void probe_locked();                              deadline that the probe overruns, and
///     void mark_broken_locked() noexcept;               the session is then reopened later
///   or
///     bool bounded_ping_locked(time_point deadline);    a backend that bounds the ping itself
///
/// Statement deadlines: a driver runs each statement through `bounded_locked(kind, fn)` (after
/// it has a session, inside nothing else), which bounds it by min(ambient deadline, now +
/// `statement_deadline`): at the deadline `interrupt_statement` (the backend's cancel), at the
/// deadline plus the grace the socket hook (the session is then reopened on the next call).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "../../detail/call_mutex.hpp"
#include "../../detail/secrets.hpp"
#include "../../detail/session_registry.hpp"
#include "../../detail/socket.hpp"
#include "../../deadline.hpp"
#include "../../detail/watchdog.hpp"
#include "../../error.hpp"
#include "statement_marker.hpp"

namespace kysera::infra::adapters::detail {

/// Thread-safe, like every adapter connection built on it: every public member may be called
/// from any thread; calls are serialised by one recursive call lock (so `transaction`'s callable
/// may call the connection again), except `cancel()`, `is_open()` and `description()`, which
/// never wait for it.
template <class Driver>
class basic_connection {
 public:
  basic_connection(const basic_connection&) = delete;
  basic_connection& operator=(const basic_connection&) = delete;

  /// Interrupts the statement running on another thread (the driver's `interrupt_statement`
  /// hook); returns at once. A no-op when nothing runs or after `close()`.
  void cancel() noexcept {
    if (!is_open()) return;
    marker_.interrupt([this]() noexcept { return driver().interrupt_statement(); });
  }

  /// `ping()` bounded by `deadline` (the `database_with_bounded_ping` capability). Throws
  /// errc::timeout when another call holds the connection until the deadline, or when the
  /// deadline has passed before anything was sent; errc::closed after `close()`. Returns false,
  /// doing nothing, when the driver says the ping cannot be bounded now.
  bool try_ping_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock = lock_until(deadline);
    check_open_locked();
    if (!driver().ready_for_bounded_ping_locked()) return false;
    if (std::chrono::steady_clock::now() >= deadline) throw deadline_error("the deadline passed before the ping");
    if constexpr (requires(Driver& d) { d.socket_locked(); }) {
      Driver& d = driver();
      return infra::detail::call_with_deadline(
          deadline, &infra::detail::shut_socket_down, &d.socket_locked(), [&] { d.probe_locked(); },
          [&] { d.mark_broken_locked(); },
          [&] {
            return deadline_error(
                "no answer by the deadline; the session was shut down and reopens on the next call");
          });
    } else {
      return driver().bounded_ping_locked(deadline);
    }
  }

  /// Runs `fn(connection&)` between BEGIN and COMMIT, holding the connection for the whole call;
  /// ROLLBACK and rethrow when `fn` or COMMIT throws. Returns what `fn` returns (references too).
  /// A nested call on the same connection throws std::logic_error.
  template <class F>
  std::invoke_result_t<F&, Driver&> transaction(F&& fn) {
    return run_transaction(fn);
  }

  /// Idempotent and final: waits for a call in flight on another thread, then releases the
  /// session (from inside `transaction`, after rolling it back). Later calls throw errc::closed.
  void close() noexcept {
    infra::detail::session_registry::instance().remove(registered_);  // no cut from now on
    std::lock_guard lock(mutex_);
    if (closed_.exchange(true)) return;
    driver().close_session_locked();
  }

  /// False once `close()` was called. Never blocks.
  bool is_open() const noexcept { return !closed_.load(std::memory_order_acquire); }

  /// What this connection talks to, never a password (each backend documents its form).
  std::string description() const { return description_; }

 protected:
  basic_connection() = default;
  // A constructor that threw never called close().
  ~basic_connection() { infra::detail::session_registry::instance().remove(registered_); }

  /// Set once by the driver's constructor, before the first call. Registers the connection with
  /// the pool whose factory is running on this thread, if any (see `cut_running_session`).
  void identify(std::string description, std::vector<std::string> secrets = {}) {
    description_ = std::move(description);
    secrets_ = std::move(secrets);
    registered_.owner = infra::detail::session_registry::current_owner();
    registered_.session = this;
    registered_.cut = &cut_running_session;
    infra::detail::session_registry::instance().add(registered_);
  }

  /// Adds the value of the environment variable `name` (where the client library also reads a
  /// password) to the secrets kept out of messages.
  void add_secret_from_environment(const char* name) {
    if (const char* value = std::getenv(name); value != nullptr) infra::detail::add_secret(secrets_, value);
  }

  const std::vector<std::string>& secrets() const noexcept { return secrets_; }

  /// `text` with every secret masked.
  std::string redacted(std::string_view text) const { return infra::detail::redact(text, secrets_); }

  /// "<backend>: <what>", its secrets masked.
  database_error error(errc code, std::string_view what, std::string sqlstate = {}, int native = 0) const {
    return database_error(code, redacted(std::string(Driver::backend_name) + ": " + std::string(what)),
                          std::string(Driver::backend_name), std::move(sqlstate), native);
  }

  /// "(<session_prefix><description>)", the tail of every message about this connection.
  std::string context() const { return "(" + std::string(Driver::session_prefix) + description_ + ")"; }

  void check_open_locked() const {
    if (closed_.load(std::memory_order_acquire)) {
      throw database_error(errc::closed,
                           std::string(Driver::backend_name) + ": connection is closed (" + description_ + ")",
                           std::string(Driver::backend_name));
    }
  }

  /// Before a statement: reopens a session the driver reports unusable (`session_usable_locked`;
  /// one attempt, `reconnect_locked`), except inside `transaction`, where a lost session throws
  /// errc::connection_lost until the transaction ends: a statement is never replayed on a new
  /// session, and half a transaction never continues on one.
  ///
  /// Under a statement deadline (ambient or the connection's own), a driver that can open a
  /// session off the connection (`session_opener`, `adopt_session_locked`) opens it on a helper
  /// thread and waits at most until the deadline plus the grace: a server that accepts TCP but
  /// does not answer (paused) costs the call its deadline, not `connect_timeout`. A connect still
  /// running then goes on in the background, and the next call takes its session (or error).
  void ensure_session_locked() {
    if (driver().session_usable_locked()) return;
    if (in_transaction_) {
      throw error(errc::connection_lost,
                  "the session was lost inside a transaction; it is reopened after the transaction ends " + context());
    }
    if constexpr (has_session_opener()) {
      const auto deadline = infra::detail::statement_deadline_from(statement_deadline_);
      if (deadline != std::chrono::steady_clock::time_point::max() || pending_open_) {
        reconnect_until_locked(deadline);
        return;
      }
    }
    driver().reconnect_locked();
  }

  /// The constructor's connect: under an ambient deadline (a pool's factory called from an
  /// acquire under `deadline_scope`) bounded by it as a reconnect is, else by connect_timeout.
  void open_first_session_locked() {
    if constexpr (has_session_opener()) {
      const auto deadline = infra::detail::ambient_deadline();
      if (deadline != std::chrono::steady_clock::time_point::max()) {
        reconnect_until_locked(deadline);
        return;
      }
    }
    driver().reconnect_locked();
  }

  /// errc::timeout "<backend>: <what> (<session_prefix><description>)".
  database_error deadline_error(std::string_view what) const {
    return error(errc::timeout, std::string(what) + " " + context());
  }

  /// What `bounded_locked` runs: a COMMIT cut at its deadline is errc::outcome_unknown.
  enum class statement_kind { statement, commit };

  /// Sets the connection's own statement deadline (0: off) and the grace after it before the
  /// session's socket is shut down; called by the driver's constructor, after validation.
  void use_statement_deadline(std::chrono::milliseconds deadline, std::chrono::milliseconds grace) noexcept {
    statement_deadline_ = infra::detail::saturating_duration_cast<std::chrono::steady_clock::duration>(deadline);
    statement_grace_ = infra::detail::saturating_duration_cast<std::chrono::steady_clock::duration>(grace);
  }

  /// Runs `fn()` (one statement on the open session, with its marker scope inside) bounded by
  /// min(ambient deadline, now + statement_deadline). Unbounded (and nearly free: one
  /// thread-local read) when neither is set. At the deadline the statement is interrupted
  /// (`interrupt_statement`); at the deadline plus the grace the socket hook shuts the session
  /// down (`mark_broken_locked`: reopened on the next call). A statement so cut throws
  /// errc::timeout (errc::outcome_unknown for a COMMIT); one whose deadline has passed before it
  /// starts throws errc::timeout having sent nothing.
  template <class F>
  decltype(auto) bounded_locked(statement_kind kind, F&& fn) {
    const auto ambient = infra::detail::ambient_deadline();
    if (statement_deadline_ == std::chrono::steady_clock::duration::zero() &&
        ambient == std::chrono::steady_clock::time_point::max()) [[likely]] {
      return fn();
    }
    // One clock read per bounded statement.
    const auto now = std::chrono::steady_clock::now();
    auto deadline = ambient;
    if (statement_deadline_ != std::chrono::steady_clock::duration::zero()) {
      deadline = std::min(deadline, infra::detail::saturating_add(now, statement_deadline_));
    }
    return run_until_locked(now, deadline, kind, fn);
  }

  /// The call lock, or errc::timeout when another call holds it until `deadline`.
  std::unique_lock<infra::detail::call_mutex> lock_until(std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_, std::defer_lock);
    if (!lock.try_lock_until(deadline)) {
      throw deadline_error("the connection stayed busy with another call until the deadline");
    }
    return lock;
  }

  /// The frame of `transaction`: `begin_args` go to the driver's `begin_transaction_locked`.
  template <class F, class... Begin>
  std::invoke_result_t<F&, Driver&> run_transaction(F& fn, Begin&&... begin_args) {
    using result_type = std::invoke_result_t<F&, Driver&>;
    std::lock_guard lock(mutex_);
    check_open_locked();
    if (in_transaction_) {
      throw std::logic_error(std::string(Driver::backend_name) +
                             ": transaction() called inside a transaction on the same connection");
    }
    driver().begin_transaction_locked(std::forward<Begin>(begin_args)...);
    in_transaction_ = true;
    struct end_of_transaction {
      bool& flag;
      ~end_of_transaction() { flag = false; }
    } reset{in_transaction_};
    try {
      if constexpr (std::is_void_v<result_type>) {
        std::invoke(fn, driver());
        driver().commit_transaction_locked();
      } else {
        result_type result = std::invoke(fn, driver());
        driver().commit_transaction_locked();
        if constexpr (std::is_reference_v<result_type>) {
          return static_cast<result_type>(result);
        } else {
          return result;
        }
      }
    } catch (...) {
      driver().rollback_transaction_locked();
      throw;
    }
  }

  /// True inside `transaction(fn)` (under the call lock).
  bool in_transaction_locked() const noexcept { return in_transaction_; }

  using statement_scope = statement_marker::scope;
  statement_marker& marker() noexcept { return marker_; }
  bool cancel_requested() const noexcept { return marker_.cancel_requested(); }

  /// Serialises every call that talks to the database; held across `transaction`.
  mutable infra::detail::call_mutex mutex_;

 private:
  Driver& driver() noexcept { return static_cast<Driver&>(*this); }

  // Functions, not constants: asked inside member functions, where Driver is complete.
  static constexpr bool has_socket_hook() { return requires(Driver& d) { d.socket_locked(); }; }
  static constexpr bool has_session_opener() { return requires(const Driver& d) { d.session_opener(); }; }

  void reconnect_until_locked(std::chrono::steady_clock::time_point deadline) {
    using opener_type = decltype(std::declval<const Driver&>().session_opener());
    using session_type = std::invoke_result_t<opener_type&>;
    using state_type = pending_open<session_type>;
    std::shared_ptr<state_type> state = std::static_pointer_cast<state_type>(pending_open_);
    if (!state) {
      if (std::chrono::steady_clock::now() >= deadline) {
        throw deadline_error("the deadline passed before a new session could be opened");
      }
      state = std::make_shared<state_type>();
      try {
        driver().start_detached([state, open = driver().session_opener()]() mutable noexcept {
          state->run(open, Driver::backend_name);
        });
      } catch (...) {
        driver().reconnect_locked();  // no helper thread: connect here, bounded by connect_timeout
        return;
      }
      pending_open_ = state;
    }
    {
      std::unique_lock lock(state->mutex);
      if (!infra::detail::wait_until_capped(state->cv, lock, infra::detail::saturating_add(deadline, statement_grace_),
                                            [&] { return state->done; })) {
        throw deadline_error(
            "no new session by the deadline; the connect goes on in the background and the next call takes it");
      }
    }
    pending_open_.reset();
    if (state->error) throw database_error(*state->error);
    if (!state->session) {
      throw database_error(errc::backend_error, std::string(Driver::backend_name) + ": opening a new session failed",
                           std::string(Driver::backend_name));
    }
    driver().adopt_session_locked(std::move(*state->session));
  }

  // The registry's cut (a pool closing at its deadline): when a statement runs, interrupts it
  // (first stage) or shuts the session's socket down (second stage, a moment later: a cancel
  // helper reads what it needs from the session first); the statement fails and its session is
  // reopened on the next call. Under the marker's lock, so the session cannot change meanwhile.
  static bool cut_running_session(void* self, infra::detail::session_registry::cut_stage stage,
                                  std::string& what) noexcept {
    auto* c = static_cast<basic_connection*>(self);
    const bool cut = c->marker_.interrupt([c, stage]() noexcept {
      if (stage == infra::detail::session_registry::cut_stage::interrupt) return c->driver().interrupt_statement();
      if constexpr (has_socket_hook()) {
        infra::detail::shut_socket_down(&c->driver().socket_locked());
        return true;
      } else {
        return c->driver().interrupt_statement();
      }
    });
    if (cut) {
      try {
        what = std::string(Driver::backend_name) + " " + c->description_;
      } catch (...) {
      }
    }
    return cut;
  }

  // One bounded statement's watchdog state, on the calling thread's stack. The first action (at
  // the deadline) interrupts and arms the second (the socket, after the grace), so a statement
  // that ends in time costs one arm and one disarm.
  struct statement_cut {
    basic_connection* connection;
    infra::detail::socket_handle* socket;  // null: no socket to shut down
    std::chrono::steady_clock::time_point cut_at;
    std::uint64_t second = 0;  // written by the first action; read once disarm(first) returned
  };

  // On the watchdog thread: the driver's cancel never blocks (a network cancel goes out from a
  // helper thread), nor does arming.
  static void at_statement_deadline(void* context) noexcept {
    auto* cut = static_cast<statement_cut*>(context);
    basic_connection* c = cut->connection;
    c->marker_.interrupt([c]() noexcept { return c->driver().interrupt_statement(); });
    if (cut->socket != nullptr) {
      cut->second = infra::detail::watchdog::instance().arm(cut->cut_at, &infra::detail::shut_socket_down, cut->socket);
    }
  }

  template <class F>
  decltype(auto) run_until_locked(std::chrono::steady_clock::time_point now,
                                  std::chrono::steady_clock::time_point deadline, statement_kind kind, F& fn) {
    using result_type = decltype(fn());
    if (now >= deadline) {
      throw deadline_error("the deadline passed before the statement was sent");
    }
    if constexpr (requires(Driver& d) { d.bound_statements_locked(deadline); }) {
      return run_self_bounded_locked(deadline, kind, fn);
    } else {
      statement_cut cut{this, nullptr, infra::detail::saturating_add(deadline, statement_grace_)};
      if constexpr (has_socket_hook()) {
        if (driver().socket_locked().valid()) cut.socket = &driver().socket_locked();
      }
      auto& dog = infra::detail::watchdog::instance();
      const std::uint64_t first = dog.arm(deadline, &at_statement_deadline, &cut);
      // True when an action fired: the statement was cut (its session is gone when the socket was).
      auto settle = [&]() noexcept {
        if (first == 0 || !dog.disarm(first)) return false;
        if (cut.second != 0) (void)dog.disarm(cut.second);
        if constexpr (has_socket_hook()) {
          // A cancel request that arrives after its statement ended can hit the next one
          // (PostgreSQL's names a session): a session we cancelled is not used again.
          driver().mark_broken_locked();
        }
        return true;
      };
      try {
        if constexpr (std::is_void_v<result_type>) {
          fn();
          (void)settle();
          return;
        } else {
          result_type result = fn();
          (void)settle();
          return result;
        }
      } catch (...) {
        if (!settle()) throw;
        throw cut_error(kind, std::current_exception());
      }
    }
  }

  // A driver that bounds its statements itself (`bound_statements_locked(deadline)`, e.g.
  // SQLite's progress and busy handlers): a lock wait or an interrupt that ends a statement at
  // or after its deadline is the deadline's cut.
  template <class F>
  decltype(auto) run_self_bounded_locked(std::chrono::steady_clock::time_point deadline, statement_kind kind, F& fn) {
    driver().bound_statements_locked(deadline);
    struct unbound {
      Driver& d;
      ~unbound() { d.bound_statements_locked(std::chrono::steady_clock::time_point::max()); }
    } reset{driver()};
    try {
      return fn();
    } catch (const database_error& e) {
      const errc code = e.condition();
      if ((code == errc::cancelled || code == errc::busy || code == errc::timeout) &&
          std::chrono::steady_clock::now() >= deadline) {
        throw cut_error(kind, std::current_exception());
      }
      throw;
    }
  }

  database_error cut_error(statement_kind kind, const std::exception_ptr& cause) const {
    std::string why;
    try {
      std::rethrow_exception(cause);
    } catch (const std::exception& e) {
      why = e.what();
    } catch (...) {
      why = "unknown error";
    }
    if (kind == statement_kind::commit) {
      return error(errc::outcome_unknown,
                   "COMMIT cut at its deadline; the transaction may or may not have committed " + context() + ": " +
                       why);
    }
    return error(errc::timeout, "statement cut at its deadline " + context() + ": " + why);
  }

  std::string description_;
  std::vector<std::string> secrets_;
  bool in_transaction_ = false;  // under mutex_
  std::chrono::steady_clock::duration statement_deadline_{0};  // set by the constructor
  std::chrono::steady_clock::duration statement_grace_{std::chrono::milliseconds(200)};
  infra::detail::session_registry::entry registered_;  // linked from identify() to close()
  std::shared_ptr<void> pending_open_;  // under mutex_: a pending_open<session> of reconnect_until_locked
  std::atomic<bool> closed_{false};
  statement_marker marker_;
};

}  // namespace kysera::infra::adapters::detail
