#pragma once
/// \file
/// The `database` concept every module is written against, and its optional capabilities.

#include <chrono>
#include <concepts>
#include <optional>
#include <string>
#include <string_view>

#include "error.hpp"

namespace kysera::infra {

/// A database handle the modules can work with.
///
/// Requirements, for an lvalue `db` of type `Db`:
///  1. `db.execute(sql)` with a `std::string_view` runs one statement and throws on failure
///     (ideally a `database_error`); what it returns is the backend's own result and is ignored
///     by the modules.
///  2. `db.close()` releases everything the handle holds; calling it again does nothing.
///
/// Nothing else is required, so a user's own type can model it:
///
///     struct my_db {
///       void execute(std::string_view sql);
///       void close();
///     };
///     static_assert(kysera::infra::database<my_db>);
template <class Db>
concept database = requires(Db& db, std::string_view sql) {
  db.execute(sql);
  db.close();
};

/// Optional: `db.ping()` checks the session cheaply and throws when it is unusable.
template <class Db>
concept database_with_ping = database<Db> && requires(Db& db) { db.ping(); };

/// Optional: `db.cancel()` interrupts a statement running on another thread. It returns at once,
/// also when the server is paused or unreachable, and never throws.
template <class Db>
concept database_with_cancel = database<Db> && requires(Db& db) { db.cancel(); };

/// Optional: `db.server_version()` returns the server's version text.
template <class Db>
concept database_with_server_version = database<Db> && requires(Db& db) {
  { db.server_version() } -> std::convertible_to<std::string>;
};

/// Optional: `db.try_ping_until(deadline)` pings like `ping()` but on the calling thread and
/// bounded: it returns or throws by `deadline` (plus scheduling delay), throwing
/// `database_error(errc::timeout)` when the deadline passes, also against a server that has
/// stopped answering. To keep that promise it may end the session (the next call reopens it).
/// It returns false, having done nothing, when it cannot bound the ping right now (for instance
/// when the session must be reopened first, which takes the driver's connect timeout); the caller
/// then pings another way. The health check uses it to probe without a thread hand-off.
template <class Db>
concept database_with_bounded_ping =
    database<Db> && requires(Db& db, std::chrono::steady_clock::time_point deadline) {
      { db.try_ping_until(deadline) } -> std::same_as<bool>;
    };

namespace detail {
/// A stand-in callable used only to ask whether `transaction` accepts a function of a session.
// The body is defined (and empty) so that checking a user type whose transaction() has a deduced
// return type never needs an undefined function.
struct transaction_probe {
  template <class Session>
  void operator()(Session&) const {}
};
}  // namespace detail

/// Optional: `db.transaction(fn)` runs `fn(session&)` between BEGIN and COMMIT on one session,
/// rolling back when `fn` throws, and returns what `fn` returns.
template <class Db>
concept database_with_transaction =
    database<Db> && requires(Db& db) { db.transaction(detail::transaction_probe{}); };

/// Checks that `db` answers: `db.ping()` where it exists, else `db.execute("SELECT 1")`.
template <database Db>
void ping(Db& db) {
  if constexpr (database_with_ping<Db>) {
    db.ping();
  } else {
    db.execute("SELECT 1");
  }
}

/// Interrupts a running statement where `Db` can; returns whether it could try.
template <database Db>
bool try_cancel(Db& db) noexcept {
  if constexpr (database_with_cancel<Db>) {
    try {
      db.cancel();
    } catch (...) {
      return false;
    }
    return true;
  } else {
    return false;
  }
}

/// The server's version where `Db` can tell it; empty otherwise. Throws what `Db` throws.
template <database Db>
std::optional<std::string> server_version(Db& db) {
  if constexpr (database_with_server_version<Db>) {
    return std::string(db.server_version());
  } else {
    return std::nullopt;
  }
}

}  // namespace kysera::infra

namespace kysera::infra {

/// Optional: `db.close_for(timeout)` closes like `close()` but waits at most `timeout` for work
/// in flight (leased pool connections) and returns whether everything finished in time.
/// Graceful shutdown uses it where present.
template <class Db>
concept database_with_timed_close = database<Db> && requires(Db& db, std::chrono::milliseconds t) {
  { db.close_for(t) } -> std::convertible_to<bool>;
};

}  // namespace kysera::infra
