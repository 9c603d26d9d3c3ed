#pragma once
/// \file
/// The MySQL/MariaDB adapter's options, URL parsing and error classification. This part needs no
/// driver headers, so it can be unit-tested (and read) on its own; `mysql.hpp` includes it.

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "../../detail/secrets.hpp"
#include "../../detail/url.hpp"
#include "../../error.hpp"

namespace kysera::infra::mysql {

/// TLS for the session, named like the MySQL client's `--ssl-mode`.
enum class ssl_mode {
  disabled,         ///< plain TCP, no TLS
  preferred,        ///< TLS when the server offers it, else plain (MySQL's default)
  required,         ///< TLS or fail; the server's certificate is not checked
  verify_ca,        ///< TLS, the server's certificate signed by `ssl_ca`
  verify_identity,  ///< verify_ca, and the certificate names the host connected to
};

/// "disabled", "preferred", "required", "verify_ca", "verify_identity".
constexpr std::string_view to_string(ssl_mode m) noexcept {
  switch (m) {
    case ssl_mode::disabled: return "disabled";
    case ssl_mode::preferred: return "preferred";
    case ssl_mode::required: return "required";
    case ssl_mode::verify_ca: return "verify_ca";
    case ssl_mode::verify_identity: return "verify_identity";
  }
  return "unknown";
}

/// Options of a `mysql::connection`. Durations are sent to the client library in whole seconds,
/// rounded up (250ms becomes 1 s). URL parameters of the same name override these fields.
///
///     kysera::infra::mysql::connection_options o;
///     o.connect_timeout = 3s;
///     o.read_timeout = 30s;   // a statement that waits longer for its result fails with errc::timeout
struct connection_options {
  /// Bound on opening a session (TCP connect and handshake). Must be positive.
  std::chrono::milliseconds connect_timeout{10000};
  /// Bound on each wait for data from the server while a statement runs; 0 = none. When it
  /// expires the session is dropped (the server may still finish the statement) and the call
  /// throws `errc::timeout`; the next call reconnects.
  std::chrono::milliseconds read_timeout{0};
  /// Bound on each wait to send data to the server; 0 = none.
  std::chrono::milliseconds write_timeout{60000};
  /// Connect, read and write timeout of the short-lived second session `cancel()` uses to send
  /// `KILL QUERY`. Must be positive.
  std::chrono::milliseconds cancel_timeout{2000};
  /// After an INSERT or REPLACE that changed rows, also run `SELECT LAST_INSERT_ID()` (one more
  /// round trip) and report it in `rows::last_insert_id`. The value is MySQL's LAST_INSERT_ID():
  /// for a table without AUTO_INCREMENT it is whatever the session generated last.
  bool fetch_last_insert_id = false;
  /// TLS mode; empty leaves it to the client library (Connector/C++ 8.x: preferred; 1.1 on
  /// MariaDB Connector/C: plain unless a CA, certificate or key is given). URL `ssl-mode`.
  std::optional<mysql::ssl_mode> ssl_mode{};
  /// PEM file of the CA that signed the server's certificate (needed for verify_ca and
  /// verify_identity). URL `ssl-ca`.
  std::string ssl_ca{};
  /// PEM files of a client certificate and its key, for accounts created `REQUIRE X509`; both
  /// or neither. URL `ssl-cert`, `ssl-key`.
  std::string ssl_cert{};
  std::string ssl_key{};
  /// Connect over this unix socket instead of TCP (the host must be localhost or empty, with no
  /// port). URL `socket`.
  std::string socket{};
};

namespace detail {

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

/// Whole seconds for the client library, rounded up; 0 stays 0.
inline int driver_seconds(std::chrono::milliseconds d) noexcept {
  auto ms = d.count();
  if (ms <= 0) return 0;
  auto s = (ms + 999) / 1000;
  return s > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max() : static_cast<int>(s);
}

/// Throws `std::invalid_argument` naming the first bad field.
inline void validate(const connection_options& o) {
  using std::chrono::milliseconds;
  // The client library takes seconds in an int; a year is far beyond any sensible bound.
  constexpr milliseconds max{365LL * 24 * 3600 * 1000};
  auto check = [&](milliseconds v, const char* field, bool allow_zero) {
    if (v.count() < 0 || (!allow_zero && v.count() == 0) || v > max) {
      throw std::invalid_argument(std::string("mysql::connection_options::") + field +
                                  (allow_zero ? " must be between 0 and one year"
                                              : " must be positive and at most one year"));
    }
  };
  check(o.connect_timeout, "connect_timeout", false);
  check(o.read_timeout, "read_timeout", true);
  check(o.write_timeout, "write_timeout", true);
  check(o.cancel_timeout, "cancel_timeout", false);
  auto no_nul = [](const std::string& v, const char* field) {
    if (v.find('\0') != std::string::npos) {
      throw std::invalid_argument(std::string("mysql::connection_options::") + field +
                                  " must not contain a NUL byte");
    }
  };
  no_nul(o.ssl_ca, "ssl_ca");
  no_nul(o.ssl_cert, "ssl_cert");
  no_nul(o.ssl_key, "ssl_key");
  no_nul(o.socket, "socket");
  if (o.ssl_cert.empty() != o.ssl_key.empty()) {
    throw std::invalid_argument("mysql::connection_options::ssl_cert and ssl_key must be given together");
  }
  if ((o.ssl_mode == ssl_mode::verify_ca || o.ssl_mode == ssl_mode::verify_identity) && o.ssl_ca.empty()) {
    throw std::invalid_argument(
        "mysql::connection_options::ssl_ca is needed for ssl_mode verify_ca and verify_identity");
  }
  if (o.ssl_mode == ssl_mode::disabled && !(o.ssl_ca.empty() && o.ssl_cert.empty() && o.ssl_key.empty())) {
    throw std::invalid_argument(
        "mysql::connection_options::ssl_mode disabled contradicts ssl_ca, ssl_cert and ssl_key");
  }
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

/// What the failing call was doing: the error numbers mean different things in each.
enum class mysql_phase { connect, statement, commit };

/// Client error numbers (CR_*) and server error numbers (ER_*) the adapter looks at.
namespace mysql_code {
inline constexpr int server_shutdown = 1053;        // ER_SERVER_SHUTDOWN
inline constexpr int query_interrupted = 1317;      // ER_QUERY_INTERRUPTED (KILL QUERY)
inline constexpr int connection_killed = 1927;      // ER_CONNECTION_KILLED (MariaDB)
inline constexpr int statement_timeout = 1969;      // ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
inline constexpr int query_timeout = 3024;          // ER_QUERY_TIMEOUT (MySQL max_execution_time)
inline constexpr int client_interaction_timeout = 4031;  // ER_CLIENT_INTERACTION_TIMEOUT (MySQL 8.0.24+)
inline constexpr int socket_error = 2002;           // CR_CONNECTION_ERROR
inline constexpr int conn_host_error = 2003;        // CR_CONN_HOST_ERROR
inline constexpr int unknown_host = 2005;           // CR_UNKNOWN_HOST
inline constexpr int server_gone = 2006;            // CR_SERVER_GONE_ERROR
inline constexpr int server_lost = 2013;            // CR_SERVER_LOST
inline constexpr int commands_out_of_sync = 2014;   // CR_COMMANDS_OUT_OF_SYNC
inline constexpr int server_lost_extended = 2055;   // CR_SERVER_LOST_EXTENDED
inline constexpr int ssl_connection_error = 2026;   // CR_SSL_CONNECTION_ERROR
}  // namespace mysql_code

/// True for error numbers after which the session cannot be used again.
constexpr bool is_session_broken(int code) noexcept {
  using namespace mysql_code;
  return code == server_gone || code == server_lost || code == server_lost_extended ||
         code == connection_killed || code == server_shutdown || code == client_interaction_timeout ||
         code == commands_out_of_sync;
}

/// True for error numbers that mean "could not talk to the server" (refused, lost, timed out).
constexpr bool is_network_error(int code) noexcept {
  using namespace mysql_code;
  return code == socket_error || code == conn_host_error || code == server_gone || code == server_lost ||
         code == server_lost_extended;
}

/// The `errc` for a MySQL/MariaDB error number and SQLSTATE, per the adapter contract. Timeouts
/// that show up as a lost connection (connect or read timeout) are decided by the caller, which
/// knows how long the call took.
constexpr errc classify_mysql_error(int code, std::string_view sqlstate, mysql_phase phase) noexcept {
  using namespace mysql_code;
  switch (code) {
    case 1040:  // ER_CON_COUNT_ERROR
    case 1203:  // ER_TOO_MANY_USER_CONNECTIONS
    case 1226:  // ER_USER_LIMIT_REACHED (MAX_USER_CONNECTIONS and the other per-account limits)
      return errc::too_many_connections;
    case 1044:  // ER_DBACCESS_DENIED_ERROR
    case 1045:  // ER_ACCESS_DENIED_ERROR
    case 1698:  // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
    case 1251:  // ER_NOT_SUPPORTED_AUTH_MODE
    case 1862:  // ER_MUST_CHANGE_PASSWORD_LOGIN
    case 2049:  // CR_SECURE_AUTH
    case 2059:  // CR_AUTH_PLUGIN_CANNOT_LOAD
      return errc::authentication_failed;
    case 1049:  // ER_BAD_DB_ERROR "Unknown database" (at connect, or USE)
      return errc::database_not_found;
    case 1213:  // ER_LOCK_DEADLOCK
      return errc::deadlock;
    case 1205:  // ER_LOCK_WAIT_TIMEOUT
      return errc::lock_timeout;
    case query_interrupted:
      return errc::cancelled;
    case statement_timeout:
    case query_timeout:
      return errc::timeout;
    case 1062:  // ER_DUP_ENTRY
    case 1586:  // ER_DUP_ENTRY_WITH_KEY_NAME
    case 1451:  // ER_ROW_IS_REFERENCED_2
    case 1452:  // ER_NO_REFERENCED_ROW_2
    case 1216:  // ER_NO_REFERENCED_ROW
    case 1217:  // ER_ROW_IS_REFERENCED
    case 1048:  // ER_BAD_NULL_ERROR
    case 1364:  // ER_NO_DEFAULT_FOR_FIELD
    case 1557:  // ER_FOREIGN_DUPLICATE_KEY
    case 4025:  // ER_CONSTRAINT_FAILED (MariaDB CHECK)
    case 3819:  // ER_CHECK_CONSTRAINT_VIOLATED (MySQL CHECK)
      return errc::constraint_violation;
    case socket_error:
    case conn_host_error:
    case unknown_host:
      return phase == mysql_phase::connect ? errc::connection_refused : errc::connection_lost;
    default:
      break;
  }
  if (is_session_broken(code) && code != commands_out_of_sync) {
    switch (phase) {
      case mysql_phase::connect: return errc::connection_refused;  // no session was established
      case mysql_phase::commit: return errc::outcome_unknown;      // it may have committed
      case mysql_phase::statement: return errc::connection_lost;
    }
  }
  // By SQLSTATE where the number is not one we know.
  if (sqlstate == "08007" || sqlstate == "40003") return errc::outcome_unknown;
  if (sqlstate == "40001") return errc::serialization_failure;
  if (sqlstate == "28000") return errc::authentication_failed;
  if (sqlstate.size() == 5 && sqlstate.substr(0, 2) == "23") return errc::constraint_violation;
  if (sqlstate == "08S01" || sqlstate == "08006") {
    return phase == mysql_phase::connect ? errc::connection_refused
           : phase == mysql_phase::commit ? errc::outcome_unknown
                                          : errc::connection_lost;
  }
  if (sqlstate == "08001" || sqlstate == "08004") return errc::connection_refused;
  // Server errors (1000-1999, 3000+) for a statement: syntax, missing table, ...; client errors
  // (2000-2999) and anything at connect are driver trouble.
  if (phase != mysql_phase::connect && code >= 1000 && (code < 2000 || code >= 3000)) {
    return errc::query_failed;
  }
  return errc::backend_error;
}

/// The driver's text for a failed connect (2002, 2003), as one sentence that says what it means.
/// The client library ends it with an errno in parentheses, "(115)", which MariaDB Connector/C
/// takes after its non-blocking connect (EINPROGRESS), whatever the real cause; it is replaced
/// by words. Other texts are returned unchanged.
inline std::string readable_connect_text(int code, std::string_view text, errc classified,
                                         bool over_socket) {
  using namespace mysql_code;
  std::string out(text);
  if (code == ssl_connection_error) {
    return "TLS handshake failed (" + out + "); check ssl-mode, ssl-ca, ssl-cert and ssl-key";
  }
  if (code != socket_error && code != conn_host_error) return out;
  int error_number = -1;
  if (auto open = out.rfind(" ("); open != std::string::npos && out.size() > open + 3 &&
                                   out.back() == ')' && out.size() - open <= 10) {
    int n = 0;
    bool digits = true;
    for (std::size_t i = open + 2; i + 1 < out.size(); ++i) {
      if (out[i] < '0' || out[i] > '9') digits = false;
      n = digits ? n * 10 + (out[i] - '0') : n;
    }
    if (digits) {
      error_number = n;
      out.erase(open);
    }
  }
  if (classified == errc::timeout) return out + ": no answer within the connect timeout";
  if (error_number == EINPROGRESS || error_number == ECONNREFUSED || error_number < 0) {
    out += over_socket ? ": nothing accepted the connection"
                       : ": the connection was refused or the host is unreachable";
  } else {
    out += ": " + std::generic_category().message(error_number);
  }
  return out + (over_socket ? ". Is the server running, with its socket at that path?"
                            : ". Is the server running and accepting TCP/IP connections on that port?");
}

}  // namespace detail
}  // namespace kysera::infra::mysql
