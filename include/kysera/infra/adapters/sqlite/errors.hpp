#pragma once
/// \file
/// The SQLite adapter's errors: what an (extended) result code means, and the message and
/// `database_error` built from it.

#include <sqlite3.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <system_error>

#include "../../error.hpp"

namespace kysera::infra::sqlite::detail {

/// Where a result code came from; the same code means different things at open and at COMMIT.
enum class phase { open, statement, commit };

/// Classifies an SQLite (extended) result code.
///   BUSY*, LOCKED*            -> busy
///   INTERRUPT                 -> cancelled
///   CONSTRAINT*               -> constraint_violation
///   CANTOPEN                  -> connection_refused at open, backend_error later (temp/journal files)
///   NOTADB                    -> authentication_failed at open (garbage file, or an encrypted
///                                database opened with the wrong key), backend_error later
///   AUTH, PERM                -> authentication_failed
///   ERROR                     -> invalid_url at open (SQLite refused a file: URI: unknown mode,
///                                vfs or authority), query_failed later
///   MISMATCH, RANGE, TOOBIG, READONLY -> query_failed (the statement itself was refused)
///   IOERR*                    -> outcome_unknown during COMMIT (the commit point may have passed),
///                                backend_error elsewhere
///   anything else (FULL, CORRUPT, NOMEM, MISUSE, ...) -> backend_error
constexpr errc classify(int extended_code, phase where) noexcept {
  switch (extended_code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return errc::busy;
    case SQLITE_INTERRUPT: return errc::cancelled;
    case SQLITE_CONSTRAINT: return errc::constraint_violation;
    case SQLITE_CANTOPEN: return where == phase::open ? errc::connection_refused : errc::backend_error;
    case SQLITE_NOTADB:
      return where == phase::open ? errc::authentication_failed : errc::backend_error;
    case SQLITE_AUTH:
    case SQLITE_PERM: return errc::authentication_failed;
    case SQLITE_ERROR: return where == phase::open ? errc::invalid_url : errc::query_failed;
    case SQLITE_MISMATCH:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
    case SQLITE_READONLY: return errc::query_failed;
    case SQLITE_IOERR: return where == phase::commit ? errc::outcome_unknown : errc::backend_error;
    default: return errc::backend_error;
  }
}

/// Why SQLITE_CANTOPEN at open, where the file system tells (a plain path, not a file: URI):
/// the reason to add to "unable to open database file", and whether the database is simply not
/// there (a missing file this connection may not create). Empty when it cannot tell.
struct cantopen_reason {
  std::string text;
  bool database_missing = false;
};

inline cantopen_reason explain_cantopen(const std::string& filename, bool create) {
  if (filename.empty() || filename == ":memory:") return {};
  std::error_code ec;
  const std::filesystem::path path(filename);
  const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
  const auto dir_status = std::filesystem::status(dir, ec);
  if (ec && dir_status.type() != std::filesystem::file_type::not_found) return {};
  if (dir_status.type() == std::filesystem::file_type::not_found) return {"its directory does not exist", false};
  const auto file_status = std::filesystem::status(path, ec);
  if (file_status.type() == std::filesystem::file_type::not_found && !create) {
    return {"the file does not exist, and this connection does not create it", true};
  }
  return {};
}

/// "sqlite: <driver message> [code N] (<context>)".
inline database_error make_error(int extended_code, std::string_view driver_message, phase where,
                                 std::string_view context) {
  std::string msg = "sqlite: ";
  msg += driver_message.empty() ? std::string_view(sqlite3_errstr(extended_code)) : driver_message;
  msg += " [code ";
  msg += std::to_string(extended_code);
  msg += ']';
  if (!context.empty()) {
    msg += " (";
    msg += context;
    msg += ')';
  }
  return database_error(classify(extended_code, where), msg, std::string("sqlite"), {},
                        extended_code);
}

}  // namespace kysera::infra::sqlite::detail
