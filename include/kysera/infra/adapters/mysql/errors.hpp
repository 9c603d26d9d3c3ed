#pragma once
/// \file
/// The MySQL/MariaDB adapter's errors: what an error number and SQLSTATE mean (per
/// docs/adapters/writing-an-adapter.md, "Errors"), and readable texts for failed connects.
/// Needs no driver headers.

#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

#include "../../error.hpp"

namespace kysera::infra::mysql::detail {

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

}  // namespace kysera::infra::mysql::detail
