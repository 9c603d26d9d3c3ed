#pragma once
/// \file
/// The options of `postgres::connection` and their validation. Needs no libpq headers.

#include <chrono>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "../../detail/time.hpp"

namespace kysera::infra::postgres {

/// Options of `postgres::connection`; a plain value type (not synchronised). Invalid values throw
/// `std::invalid_argument` naming the field when the connection is constructed.
///
///     kysera::infra::postgres::connection_options o;
///     o.connect_timeout = 3s;
///     o.statement_timeout = 30s;
///     kysera::infra::postgres::connection db(url, o);
struct connection_options {
  /// Bound on opening a session, passed to libpq as `connect_timeout` in whole seconds (rounded
  /// up; libpq treats 1 s as 2 s) unless the connection string sets it. Must be positive and at
  /// most 2147483647 s (libpq's int).
  std::chrono::milliseconds connect_timeout{10000};
  /// `SET statement_timeout` on every (re)connect; a statement running longer fails with
  /// errc::timeout (SQLSTATE 57014). 0 leaves the server's setting alone. Must be in
  /// [0, 2147483647] ms (the server's int).
  std::chrono::milliseconds statement_timeout{0};
  /// Client-side bound on each statement (BEGIN and COMMIT included), 0 = off (the default). At
  /// the deadline a libpq cancel request goes out; if the server has still not answered after
  /// `statement_deadline_grace`, the session's socket is shut down. The call throws errc::timeout
  /// (a COMMIT: errc::outcome_unknown) and the next call opens a new session. An ambient deadline
  /// (`deadline_scope`) that ends earlier wins. Must not be negative.
  std::chrono::milliseconds statement_deadline{0};
  /// How long after a statement deadline the server may still answer the cancel before the
  /// socket is shut down. Must not be negative.
  std::chrono::milliseconds statement_deadline_grace{200};
  /// libpq `application_name` (shown in pg_stat_activity) unless the connection string sets it;
  /// empty sends none. Must not contain a NUL byte.
  std::string application_name = "kysera-infra";
};

namespace detail {

/// libpq's connect_timeout is in whole seconds: round up so the bound is never shorter. Safe
/// for every value, milliseconds::max() included (no overflow).
inline std::int64_t whole_seconds(std::chrono::milliseconds d) noexcept {
  return static_cast<std::int64_t>(infra::detail::saturating_ceil<std::chrono::seconds>(d).count());
}

inline connection_options validated(connection_options o) {
  // Both end up as a C int on the libpq/server side: seconds for connect_timeout,
  // milliseconds for statement_timeout.
  constexpr std::int64_t int_max = std::numeric_limits<int>::max();
  if (o.connect_timeout <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("postgres::connection_options: connect_timeout must be positive");
  }
  if (whole_seconds(o.connect_timeout) > int_max) {
    throw std::invalid_argument(
        "postgres::connection_options: connect_timeout must be at most 2147483647 s (libpq "
        "takes whole seconds in an int)");
  }
  if (o.statement_timeout < std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("postgres::connection_options: statement_timeout must not be negative");
  }
  if (o.statement_timeout.count() > int_max) {
    throw std::invalid_argument(
        "postgres::connection_options: statement_timeout must be at most 2147483647 ms "
        "(PostgreSQL's limit)");
  }
  if (o.statement_deadline < std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("postgres::connection_options: statement_deadline must not be negative");
  }
  if (o.statement_deadline_grace < std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("postgres::connection_options: statement_deadline_grace must not be negative");
  }
  if (o.application_name.find('\0') != std::string::npos) {
    throw std::invalid_argument("postgres::connection_options: application_name must not contain a NUL byte");
  }
  return o;
}

}  // namespace detail
}  // namespace kysera::infra::postgres
