#pragma once
// Internals of the SQLite adapter: connection-string parsing and result-code classification.
// Kept apart from the connection class so both can be unit-tested without opening a file.

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>
#include <system_error>
#include <string>
#include <string_view>

#include "../../detail/url.hpp"
#include "../../error.hpp"

namespace kysera::infra::sqlite::detail {

inline constexpr std::string_view backend = "sqlite";

/// What a connection string asks SQLite to open.
struct open_target {
  std::string filename;             // what sqlite3_open_v2 receives
  bool memory = false;              // ":memory:" (a private in-memory database)
  bool uri = false;                 // a "file:" URI, opened with SQLITE_OPEN_URI
  std::optional<std::string> mode;  // "ro", "rw" or "rwc" from a sqlite: URL's ?mode=
};

[[noreturn]] inline void invalid_url(const std::string& why) {
  throw database_error(errc::invalid_url, "sqlite: invalid connection string: " + why,
                       std::string(backend));
}

inline std::string decode(std::string_view text) {
  try {
    return infra::detail::percent_decode(text, backend);
  } catch (const database_error&) {
    invalid_url("bad %-escape");
  }
}

inline bool starts_with_ci(std::string_view text, std::string_view prefix) noexcept {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
  }
  return true;
}

/// Parses the accepted forms (see the adapter's documentation):
///   "/abs/path", "relative/path", ":memory:", "file:..." (SQLite URI, passed through),
///   "sqlite:///abs/path", "sqlite://relative/path", "sqlite::memory:", "sqlite://:memory:",
///   each sqlite: form optionally followed by "?mode=ro|rw|rwc".
/// Throws database_error(errc::invalid_url) for anything else; messages never quote the text.
inline open_target parse_target(std::string_view text) {
  if (text.empty()) invalid_url("empty");
  if (text.find('\0') != std::string_view::npos) invalid_url("contains a NUL byte");
  open_target t;
  if (!starts_with_ci(text, "sqlite:")) {
    // A plain path is taken literally: no %-decoding, '?' is part of the name.
    t.filename = std::string(text);
    t.memory = text == ":memory:";
    t.uri = starts_with_ci(text, "file:");
    return t;
  }
  std::string_view rest = text.substr(7);
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string path;
  if (rest == ":memory:") {
    path = ":memory:";  // sqlite::memory:
  } else if (rest.substr(0, 2) == "//") {
    path = decode(rest.substr(2));  // sqlite:///abs, sqlite://rel
  } else {
    invalid_url("expected sqlite:///absolute/path, sqlite://relative/path or sqlite::memory:");
  }
  if (path.empty()) invalid_url("no database path after sqlite://");
  if (path.find('\0') != std::string::npos) invalid_url("contains a NUL byte");
  infra::detail::for_each_query_pair(query, [&](std::string_view raw_key, std::string_view raw_value, bool) {
    std::string key = decode(raw_key);
    std::string value = decode(raw_value);
    if (key != "mode") invalid_url("unknown parameter '" + key + "' (supported: mode)");
    if (value != "ro" && value != "rw" && value != "rwc") {
      invalid_url("mode must be ro, rw or rwc");
    }
    t.mode = value;
  });
  t.memory = path == ":memory:";
  t.filename = std::move(path);
  return t;
}

/// The canonical sqlite: form of a target (itself a valid connection string); no secrets exist.
inline std::string describe(const open_target& t, bool read_only) {
  std::string out;
  if (t.uri) {
    out = t.filename;
  } else if (t.memory) {
    out = "sqlite::memory:";
  } else {
    out = "sqlite://";
    for (char c : t.filename) {
      if (c == '%') out += "%25";
      else if (c == '?') out += "%3F";
      else out += c;
    }
  }
  if (read_only && !t.uri) out += "?mode=ro";
  return out;
}

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
  return database_error(classify(extended_code, where), msg, std::string(backend), {},
                        extended_code);
}

/// Accepted journal modes (validated: the value is spliced into a PRAGMA).
inline bool valid_journal_mode(std::string_view mode) noexcept {
  static constexpr std::string_view modes[] = {"delete", "truncate", "persist",
                                               "memory", "wal",      "off"};
  std::string lower(mode);
  for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return std::find(std::begin(modes), std::end(modes), lower) != std::end(modes);
}

}  // namespace kysera::infra::sqlite::detail
