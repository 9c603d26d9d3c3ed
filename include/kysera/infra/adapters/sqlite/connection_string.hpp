#pragma once
/// \file
/// The SQLite adapter's connection strings: what a path or sqlite: URL asks SQLite to open, and
/// its canonical description. Needs no SQLite headers, so it can be unit-tested (and fuzzed) alone.

#include <cctype>
#include <optional>
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

}  // namespace kysera::infra::sqlite::detail
