#pragma once
/// \file
/// The MySQL/MariaDB adapter's connection strings: `mysql://` and `mariadb://` URLs, what they
/// ask the client library to open, and their description (never the password). Needs no driver
/// headers, so it can be unit-tested (and fuzzed) on its own.

#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "../../detail/secrets.hpp"
#include "../../detail/url.hpp"
#include "../../error.hpp"
#include "options.hpp"

namespace kysera::infra::mysql::detail {

/// Where and as whom to connect, parsed from a `mysql://` or `mariadb://` URL.
struct mysql_target {
  std::string scheme = "mysql";
  std::string host = "localhost";
  std::uint16_t port = 3306;
  std::string user;
  std::string password;
  std::string schema;
  std::string socket{};  ///< unix socket path; empty for TCP
  std::optional<mysql::ssl_mode> ssl_mode{};
  std::string ssl_ca{}, ssl_cert{}, ssl_key{};
  /// Every form of the password a message could show: decoded, as written, percent-encoded.
  std::vector<std::string> secrets;
};

inline bool over_socket(const mysql_target& t) noexcept { return !t.socket.empty(); }

/// "mysql://user@host:port/db": the URL without password and parameters, percent-encoded so
/// that it parses back to the same scheme, user, host, port and database.
inline std::string describe(const mysql_target& t) {
  using infra::detail::percent_encode;
  std::string out = t.scheme + "://";
  if (!t.user.empty()) out += percent_encode(t.user) + "@";
  if (over_socket(t)) {
    return out + "localhost/" + percent_encode(t.schema) + "?socket=" + percent_encode(t.socket);
  }
  out += t.host.find(':') != std::string::npos ? "[" + t.host + "]" : percent_encode(t.host);
  out += ":" + std::to_string(t.port);
  out += "/" + percent_encode(t.schema);
  return out;
}

/// A parameter name a message may quote: short and made of name characters only (anything else
/// may be a piece of a mistyped password).
inline bool quotable_name(std::string_view key) noexcept {
  if (key.empty() || key.size() > 40) return false;
  for (char c : key) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-' || c == '.')) {
      return false;
    }
  }
  return true;
}

/// The client library's "tcp://host:port" (or "unix://path") form.
inline std::string driver_host_name(const mysql_target& t) {
  if (over_socket(t)) return "unix://" + t.socket;
  std::string host = t.host.find(':') != std::string::npos ? "[" + t.host + "]" : t.host;
  return "tcp://" + host + ":" + std::to_string(t.port);
}

/// Reads a URL `ssl-mode` value: MySQL's names in any case, '-' for '_', and libpq's spellings
/// (disable, prefer, require, verify-full).
inline std::optional<ssl_mode> parse_ssl_mode(std::string_view value) {
  std::string v;
  for (char c : value) {
    if (c == '-') c = '_';
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    v.push_back(c);
  }
  if (v == "disabled" || v == "disable") return ssl_mode::disabled;
  if (v == "preferred" || v == "prefer") return ssl_mode::preferred;
  if (v == "required" || v == "require") return ssl_mode::required;
  if (v == "verify_ca") return ssl_mode::verify_ca;
  if (v == "verify_identity" || v == "verify_full") return ssl_mode::verify_identity;
  return std::nullopt;
}

/// Parses a URL parameter duration: "5" or "5s" (seconds) or "1500ms" (milliseconds).
inline std::chrono::milliseconds parse_duration_param(const std::string& key, const std::string& value) {
  auto fail = [&]() -> std::chrono::milliseconds {
    throw database_error(errc::invalid_url,
                         "invalid connection URL: parameter " + key +
                             " must be a whole number of seconds (\"5\", \"5s\") or milliseconds (\"1500ms\")",
                         "mysql");
  };
  std::string_view text = value;
  long long scale = 1000;
  if (text.size() > 2 && text.substr(text.size() - 2) == "ms") {
    text.remove_suffix(2);
    scale = 1;
  } else if (text.size() > 1 && text.back() == 's') {
    text.remove_suffix(1);
  }
  if (text.empty() || text.size() > 12) return fail();
  long long n = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return fail();
    n = n * 10 + (c - '0');
  }
  return std::chrono::milliseconds(n * scale);
}

/// Parses `mysql://user:pass@host:port/db?connect_timeout=5&read_timeout=30&write_timeout=60`
/// (also `mariadb://`); parameters override the matching fields of `options`. Throws
/// `database_error(errc::invalid_url)` (never quoting the URL) for anything else, including a
/// %-escape that decodes to a NUL byte (the client library would cut the value short there).
inline mysql_target parse_mysql_url(std::string_view text, connection_options& options) {
  auto u = infra::detail::parse_url(text, "mysql");
  if (u.scheme != "mysql" && u.scheme != "mariadb") {
    throw database_error(errc::invalid_url,
                         "invalid connection URL: scheme must be mysql:// or mariadb://", "mysql");
  }
  // The client library takes C strings: a %00 would silently cut the value short.
  auto has_nul = [](const std::string& v) { return v.find('\0') != std::string::npos; };
  bool nul = has_nul(u.user) || has_nul(u.password) || has_nul(u.host) || has_nul(u.database);
  for (const auto& [key, value] : u.params) nul = nul || has_nul(key) || has_nul(value);
  if (nul) {
    throw database_error(errc::invalid_url, "invalid connection URL: a %-escape decodes to a NUL byte",
                         "mysql");
  }
  if (u.database.find('/') != std::string::npos) {
    throw database_error(errc::invalid_url, "invalid connection URL: the path must be one database name",
                         "mysql");
  }
  mysql_target t;
  t.scheme = u.scheme;
  if (!u.host.empty()) t.host = u.host;
  if (u.port) t.port = *u.port;
  t.user = u.user;
  t.password = u.password;
  infra::detail::add_secret(t.secrets, u.password);
  infra::detail::add_secret(t.secrets, u.raw_password);
  infra::detail::add_secret(t.secrets, infra::detail::percent_encode(u.password));
  t.schema = u.database;
  connection_options merged = options;
  for (const auto& [key, value] : u.params) {
    if (key == "connect_timeout") {
      merged.connect_timeout = parse_duration_param(key, value);
    } else if (key == "read_timeout") {
      merged.read_timeout = parse_duration_param(key, value);
    } else if (key == "write_timeout") {
      merged.write_timeout = parse_duration_param(key, value);
    } else if (key == "cancel_timeout") {
      merged.cancel_timeout = parse_duration_param(key, value);
    } else if (key == "ssl-mode" || key == "ssl_mode" || key == "sslmode") {
      auto mode = parse_ssl_mode(value);
      if (!mode) {
        throw database_error(errc::invalid_url,
                             "invalid connection URL: parameter ssl-mode must be disabled, preferred, "
                             "required, verify_ca or verify_identity",
                             "mysql");
      }
      merged.ssl_mode = mode;
    } else if (key == "ssl-ca" || key == "ssl_ca") {
      merged.ssl_ca = value;
    } else if (key == "ssl-cert" || key == "ssl_cert") {
      merged.ssl_cert = value;
    } else if (key == "ssl-key" || key == "ssl_key") {
      merged.ssl_key = value;
    } else if (key == "socket") {
      merged.socket = value;
    } else {
      throw database_error(errc::invalid_url,
                           "invalid connection URL: unknown parameter" +
                               (quotable_name(key) ? " '" + key + "'" : std::string()) +
                               " (supported: connect_timeout, read_timeout, write_timeout, cancel_timeout, "
                               "ssl-mode, ssl-ca, ssl-cert, ssl-key, socket)",
                           "mysql");
    }
  }
  if (!merged.socket.empty() && (!(u.host.empty() || u.host == "localhost") || u.port)) {
    throw database_error(errc::invalid_url,
                         "invalid connection URL: a socket connection takes the host localhost (or none) "
                         "and no port",
                         "mysql");
  }
  try {
    validate(merged);
  } catch (const std::invalid_argument& e) {
    throw database_error(errc::invalid_url, std::string("invalid connection URL: ") + e.what(), "mysql");
  }
  options = merged;
  t.socket = merged.socket;
  if (!t.socket.empty()) t.host = "localhost";
  t.ssl_mode = merged.ssl_mode;
  t.ssl_ca = merged.ssl_ca;
  t.ssl_cert = merged.ssl_cert;
  t.ssl_key = merged.ssl_key;
  return t;
}

}  // namespace kysera::infra::mysql::detail
