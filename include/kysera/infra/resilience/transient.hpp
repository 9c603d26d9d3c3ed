#pragma once
/// \file
/// Which errors are worth retrying: `is_transient_error`, `is_serialization_error`,
/// `is_replay_safe_error`, `is_retryable_before_commit`.

#include <array>
#include <exception>
#include <string_view>
#include <system_error>

#include "../error.hpp"

namespace kysera::infra::resilience {

namespace detail {

/// The `errc` an exception carries when it is a `std::system_error` in our category.
inline bool our_code(const std::exception& e, errc& out) noexcept {
  const auto* se = dynamic_cast<const std::system_error*>(&e);
  if (se == nullptr || !infra::is_infra_error(se->code())) return false;
  out = static_cast<errc>(se->code().value());
  return true;
}

constexpr bool is_transient_code(errc e) noexcept {
  switch (e) {
    case errc::connection_refused:
    case errc::connection_lost:
    case errc::timeout:
    case errc::too_many_connections:
    case errc::serialization_failure:
    case errc::deadlock:
    case errc::lock_timeout:
    case errc::busy:
      return true;
    default:  // outcome_unknown above all: the work may already have committed
      return false;
  }
}

// The codes the TypeScript package retries. Outcome-unknown codes (08007, 40003) are left out on
// purpose.
inline constexpr std::array<std::string_view, 16> transient_code_names{
    "ECONNREFUSED", "ETIMEDOUT",          "ECONNRESET",           "EPIPE",
    "57P03",        "08006",              "08001",                "08003",
    "08004",        "40001",              "40P01",                "ER_LOCK_DEADLOCK",
    "ER_LOCK_WAIT_TIMEOUT", "ER_CON_COUNT_ERROR", "SQLITE_BUSY",  "SQLITE_LOCKED"};

}  // namespace detail

/// True for errors that a later attempt may not hit: a `database_error` (or any
/// `std::system_error` in the kysera category) whose code is connection_refused,
/// connection_lost, timeout, too_many_connections, serialization_failure, deadlock,
/// lock_timeout or busy; a `std::system_error` meaning ECONNREFUSED, ETIMEDOUT, ECONNRESET or
/// EPIPE. Never true for `errc::outcome_unknown` (the work may have committed) nor for
/// `circuit_breaker_error`.
///
///     catch (const std::exception& e) { if (is_transient_error(e)) schedule_retry(); }
inline bool is_transient_error(const std::exception& e) noexcept {
  errc code{};
  if (detail::our_code(e, code)) return detail::is_transient_code(code);
  const auto* se = dynamic_cast<const std::system_error*>(&e);
  if (se == nullptr) return false;
  const std::error_code& ec = se->code();
  return ec == std::errc::connection_refused || ec == std::errc::timed_out ||
         ec == std::errc::connection_reset || ec == std::errc::broken_pipe;
}

/// True for the error code strings the TypeScript package treats as transient: ECONNREFUSED,
/// ETIMEDOUT, ECONNRESET, EPIPE, SQLSTATEs 57P03, 08006, 08001, 08003, 08004, 40001, 40P01, and
/// ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, ER_CON_COUNT_ERROR, SQLITE_BUSY, SQLITE_LOCKED.
/// Exact, case-sensitive match.
///
///     is_transient_error(e.sqlstate());  // "40001" -> true, "08007" -> false
constexpr bool is_transient_error(std::string_view code) noexcept {
  for (std::string_view name : detail::transient_code_names) {
    if (name == code) return true;
  }
  return false;
}

/// True when the database rolled the whole transaction back so that rerunning it may succeed:
/// `errc::serialization_failure` (SQLSTATE 40001) and `errc::deadlock` (40P01, MySQL 1213).
///
///     if (is_serialization_error(e)) rerun_whole_transaction();
inline bool is_serialization_error(const std::exception& e) noexcept {
  errc code{};
  return detail::our_code(e, code) &&
         (code == errc::serialization_failure || code == errc::deadlock);
}

/// True when the error proves the statement or transaction did NOT take effect, so rerunning it
/// is safe even for non-idempotent work (an INSERT, a money transfer): connection_refused and
/// too_many_connections (never reached the server), serialization_failure and deadlock (rolled
/// back), lock_timeout and busy (the statement did not run). False for connection_lost, timeout
/// and raw socket errors (the server may have run the statement) and for outcome_unknown.
///
///     retry_options writes{.should_retry = is_replay_safe_error};
inline bool is_replay_safe_error(const std::exception& e) noexcept {
  errc code{};
  if (!detail::our_code(e, code)) return false;
  switch (code) {
    case errc::connection_refused:
    case errc::too_many_connections:
    case errc::serialization_failure:
    case errc::deadlock:
    case errc::lock_timeout:
    case errc::busy:
      return true;
    default:
      return false;
  }
}

/// The errors after which rerunning a whole transaction is safe and may succeed once the
/// database is back: everything `is_serialization_error` accepts (serialization_failure,
/// deadlock), plus the errors raised before COMMIT was sent, when the server has rolled the
/// transaction back or never began it: connection_refused, connection_lost,
/// too_many_connections and busy. Never `outcome_unknown` (the session broke during COMMIT, so
/// it may have committed: our adapters report exactly that case as outcome_unknown, never as
/// connection_lost). Statement and lock timeouts are left out: rerunning a transaction that
/// waited out its deadline mostly adds load; accept them in your own `should_retry` if they suit.
///
///     with_transaction_retry(db, fn, {.should_retry = is_retryable_before_commit});
inline bool is_retryable_before_commit(const std::exception& e) noexcept {
  if (is_serialization_error(e)) return true;
  errc code{};
  if (!detail::our_code(e, code)) return false;
  switch (code) {
    case errc::connection_refused:
    case errc::connection_lost:
    case errc::too_many_connections:
    case errc::busy:
      return true;
    default:
      return false;
  }
}

}  // namespace kysera::infra::resilience
