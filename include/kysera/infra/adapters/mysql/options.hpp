#pragma once
/// \file
/// The options of `mysql::connection` (`ssl_mode`, `connection_options`) and their validation.
/// Needs no driver headers.

#include <chrono>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "../../detail/time.hpp"

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

/// Options of a `mysql::connection`; a plain value type (not synchronised). Durations are sent to
/// the client library in whole seconds, rounded up (250ms becomes 1 s). URL parameters of the
/// same name override these fields.
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
  /// Client-side bound on each statement (START TRANSACTION and COMMIT included), 0 = off (the
  /// default). At the deadline `KILL QUERY` goes out (as `cancel()` sends it); if the server has
  /// still not answered after `statement_deadline_grace`, the session's socket is shut down (when
  /// the adapter knows it: Linux, TCP). The call throws errc::timeout (a COMMIT:
  /// errc::outcome_unknown) and the next call opens a new session. An ambient deadline
  /// (`deadline_scope`) that ends earlier wins. Must be between 0 and one year.
  std::chrono::milliseconds statement_deadline{0};
  /// How long after a statement deadline the server may still answer before the socket is shut
  /// down. Must be between 0 and one year.
  std::chrono::milliseconds statement_deadline_grace{200};
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

/// Whole seconds for the client library, rounded up; 0 stays 0.
inline int driver_seconds(std::chrono::milliseconds d) noexcept {
  if (d <= std::chrono::milliseconds::zero()) return 0;
  const auto s = infra::detail::saturating_ceil<std::chrono::seconds>(d).count();
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
  check(o.statement_deadline, "statement_deadline", true);
  check(o.statement_deadline_grace, "statement_deadline_grace", true);
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

}  // namespace detail
}  // namespace kysera::infra::mysql
