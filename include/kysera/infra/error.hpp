#pragma once
/// \file
/// The error model shared by every module: `errc`, its category, and `database_error`.

#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "detail/process_wide.hpp"

namespace kysera::infra {

/// What went wrong, independent of the backend. Compare with `e.code() == errc::timeout`.
enum class errc {
  connection_refused = 1,  ///< nothing listens, or the server refused a new session
  connection_lost,         ///< an established session broke (killed, server restarted, network)
  timeout,                 ///< a connect, statement or acquire deadline passed
  too_many_connections,    ///< the server's connection limit is reached
  authentication_failed,   ///< wrong user or password, or not allowed to connect
  serialization_failure,   ///< SQLSTATE 40001 class: rerun the whole transaction
  deadlock,                ///< the server picked this transaction as deadlock victim
  lock_timeout,            ///< waiting for a row or table lock timed out
  busy,                    ///< SQLite: the file is locked by another connection
  outcome_unknown,         ///< the connection broke during COMMIT: it may or may not have committed
  cancelled,               ///< the statement was cancelled through `cancel()`
  circuit_open,            ///< the circuit breaker rejected the call
  pool_exhausted,          ///< no pooled connection became free within `acquire_timeout`
  pool_closed,             ///< the pool was closed
  shutting_down,           ///< a graceful shutdown is running or has run
  closed,                  ///< the connection was closed with `close()`
  invalid_url,             ///< the connection string could not be parsed
  constraint_violation,    ///< unique, foreign key, check or not-null constraint failed
  query_failed,            ///< any other error reported for a statement (syntax, missing table…)
  backend_error,           ///< any other driver error
  database_not_found,      ///< the named database does not exist (PostgreSQL 3D000, MySQL 1049, a SQLite file not to be created)
};

}  // namespace kysera::infra

template <>
struct std::is_error_code_enum<kysera::infra::errc> : std::true_type {};

namespace kysera::infra {

namespace detail {
inline constexpr std::string_view error_category_name = "kysera.infra";

class KYSERA_INFRA_PROCESS_WIDE error_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return error_category_name.data(); }

  std::string message(int value) const override {
    switch (static_cast<errc>(value)) {
      case errc::connection_refused: return "connection refused";
      case errc::connection_lost: return "connection lost";
      case errc::timeout: return "timed out";
      case errc::too_many_connections: return "too many connections";
      case errc::authentication_failed: return "authentication failed";
      case errc::serialization_failure: return "serialization failure";
      case errc::deadlock: return "deadlock detected";
      case errc::lock_timeout: return "lock wait timeout";
      case errc::busy: return "database is busy";
      case errc::outcome_unknown: return "outcome unknown";
      case errc::cancelled: return "statement cancelled";
      case errc::circuit_open: return "circuit breaker is open";
      case errc::pool_exhausted: return "connection pool exhausted";
      case errc::pool_closed: return "connection pool is closed";
      case errc::shutting_down: return "shutting down";
      case errc::closed: return "connection is closed";
      case errc::invalid_url: return "invalid connection string";
      case errc::constraint_violation: return "constraint violation";
      case errc::query_failed: return "query failed";
      case errc::backend_error: return "backend error";
      case errc::database_not_found: return "database not found";
    }
    return "unknown kysera.infra error";
  }

  std::error_condition default_error_condition(int value) const noexcept override {
    // Lets `e.code() == std::errc::timed_out` and friends work as well.
    switch (static_cast<errc>(value)) {
      case errc::connection_refused: return std::errc::connection_refused;
      case errc::connection_lost: return std::errc::connection_reset;
      case errc::timeout: return std::errc::timed_out;
      case errc::cancelled: return std::errc::operation_canceled;
      case errc::busy: return std::errc::device_or_resource_busy;
      case errc::invalid_url: return std::errc::invalid_argument;
      default: return {value, *this};
    }
  }
};
}  // namespace detail

/// The category of `errc`. Thread-safe (a stateless singleton). Exported even under
/// `-fvisibility=hidden`, so shared libraries share one instance (detail/process_wide.hpp).
KYSERA_INFRA_PROCESS_WIDE inline const std::error_category& error_category() noexcept {
  static const detail::error_category_impl instance;
  return instance;
}

/// True when `category` is ours. Thread-safe. Compares the name, not only the address: a shared
/// library that keeps a private copy of the category (a version script hiding everything,
/// `-Bsymbolic`) hands out codes whose category is another object. Every check in this library
/// goes through this, never through `std::error_category::operator==` (an address comparison).
inline bool is_infra_category(const std::error_category& category) noexcept {
  return &category == &error_category() || std::string_view(category.name()) == detail::error_category_name;
}

/// True when `code` is in our category (`is_infra_category`); its `errc` is then `errc(code.value())`.
inline bool is_infra_error(const std::error_code& code) noexcept {
  return is_infra_category(code.category());
}

/// Found by ADL, so `std::error_code ec = errc::timeout;` works.
inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

/// `code == errc::timeout` (and `!=`, either order): same value and our category by identity
/// (`is_infra_category`), so a code from another shared library's copy of the category matches.
/// Found by ADL; it is a better match than the standard comparison through `make_error_code`.
inline bool operator==(const std::error_code& code, errc e) noexcept {
  return code.value() == static_cast<int>(e) && is_infra_error(code);
}

/// The name of an `errc` value, e.g. "connection_lost".
constexpr std::string_view to_string(errc e) noexcept {
  switch (e) {
    case errc::connection_refused: return "connection_refused";
    case errc::connection_lost: return "connection_lost";
    case errc::timeout: return "timeout";
    case errc::too_many_connections: return "too_many_connections";
    case errc::authentication_failed: return "authentication_failed";
    case errc::serialization_failure: return "serialization_failure";
    case errc::deadlock: return "deadlock";
    case errc::lock_timeout: return "lock_timeout";
    case errc::busy: return "busy";
    case errc::outcome_unknown: return "outcome_unknown";
    case errc::cancelled: return "cancelled";
    case errc::circuit_open: return "circuit_open";
    case errc::pool_exhausted: return "pool_exhausted";
    case errc::pool_closed: return "pool_closed";
    case errc::shutting_down: return "shutting_down";
    case errc::closed: return "closed";
    case errc::invalid_url: return "invalid_url";
    case errc::constraint_violation: return "constraint_violation";
    case errc::query_failed: return "query_failed";
    case errc::backend_error: return "backend_error";
    case errc::database_not_found: return "database_not_found";
  }
  return "unknown";
}

/// An error from a database or from one of our pools. Immutable, so safe to share between threads.
///
/// `backend()` is "postgres", "mysql", "sqlite", "pool" or a user-chosen name; `sqlstate()` is
/// empty where the backend has none; `native_code()` is the MySQL error number or the SQLite
/// extended result code (0 where there is none). Messages never contain a password: adapters
/// build them from the driver's text with every known secret replaced by "***".
///
/// `what()` is the message exactly as built (e.g. "postgres: ... (connecting to ...)"), without
/// the ": <code().message()>" that `std::system_error::what()` appends: the message already says
/// what went wrong. `code().message()` gives the category's short text ("connection refused"),
/// `to_string(condition())` the enumerator's name, and `code().default_error_condition()` the
/// portable `std::errc` where one fits (see docs/errors.md).
///
///     try { db.execute("select 1"); }
///     catch (const kysera::infra::database_error& e) {
///       if (e.code() == kysera::infra::errc::connection_refused) { ... }
///     }
///
/// Its type information is exported even under `-fvisibility=hidden`, so a `catch` in one shared
/// library matches an error thrown in another.
class KYSERA_INFRA_PROCESS_WIDE database_error : public std::system_error {
 public:
  database_error(errc code, const std::string& message, std::string backend = {},
                 std::string sqlstate = {}, int native_code = 0)
      : std::system_error(make_error_code(code), message),
        message_(std::make_shared<const std::string>(message)),
        backend_(std::move(backend)),
        sqlstate_(std::move(sqlstate)),
        native_code_(native_code) {}

  /// The message without the code's text appended.
  const char* what() const noexcept override { return message_->c_str(); }
  const std::string& backend() const noexcept { return backend_; }
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  int native_code() const noexcept { return native_code_; }
  /// The `errc` this error carries (`code()` compared against our category).
  errc condition() const noexcept { return static_cast<errc>(code().value()); }

 private:
  std::shared_ptr<const std::string> message_;  // shared: copying an exception must not throw
  std::string backend_;
  std::string sqlstate_;
  int native_code_;
};

/// True for codes that mean the session itself is gone or unusable, so a pool must discard it.
constexpr bool is_connection_error(errc e) noexcept {
  return e == errc::connection_refused || e == errc::connection_lost ||
         e == errc::outcome_unknown || e == errc::authentication_failed || e == errc::closed ||
         e == errc::too_many_connections;
}

}  // namespace kysera::infra
