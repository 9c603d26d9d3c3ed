#pragma once
/// \file
/// The options of `sqlite::connection`: `transaction_mode` and `connection_options`, and their
/// validation. Needs no SQLite headers.

#include <algorithm>
#include <cctype>
#include <chrono>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

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

/// Options of `sqlite::connection`; a plain value type (not synchronised). Invalid values throw
/// `std::invalid_argument` naming the field.
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
  /// Client-side bound on each statement (BEGIN and COMMIT included), lock waits too; 0 = off
  /// (the default). At the deadline the statement is interrupted (sqlite3_interrupt) and the call
  /// throws errc::timeout (a COMMIT: errc::outcome_unknown); the connection stays usable. An
  /// ambient deadline (`deadline_scope`) that ends earlier wins. Must not be negative.
  std::chrono::milliseconds statement_deadline{0};
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

namespace detail {

/// Accepted journal modes (validated: the value is spliced into a PRAGMA).
inline bool valid_journal_mode(std::string_view mode) noexcept {
  static constexpr std::string_view modes[] = {"delete", "truncate", "persist",
                                               "memory", "wal",      "off"};
  std::string lower(mode);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::find(std::begin(modes), std::end(modes), lower) != std::end(modes);
}

inline connection_options validate(connection_options o) {
  if (o.connect_timeout.count() < 0) {
    throw std::invalid_argument("sqlite::connection_options: connect_timeout must not be negative");
  }
  if (o.busy_timeout.count() < 0) {
    throw std::invalid_argument("sqlite::connection_options: busy_timeout must not be negative");
  }
  if (o.statement_deadline.count() < 0) {
    throw std::invalid_argument("sqlite::connection_options: statement_deadline must not be negative");
  }
  if (o.journal_mode && !valid_journal_mode(*o.journal_mode)) {
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

/// The BEGIN statement for `mode`.
constexpr std::string_view begin_sql(sqlite::transaction_mode mode) noexcept {
  switch (mode) {
    case sqlite::transaction_mode::deferred: return "BEGIN DEFERRED";
    case sqlite::transaction_mode::exclusive: return "BEGIN EXCLUSIVE";
    case sqlite::transaction_mode::immediate: break;
  }
  return "BEGIN IMMEDIATE";
}

}  // namespace detail
}  // namespace kysera::infra::sqlite
