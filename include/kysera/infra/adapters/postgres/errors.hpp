#pragma once
// Error classification of the PostgreSQL adapter, free of libpqxx so it can be tested with
// synthetic SQLSTATEs and messages. driver.hpp gathers the facts from a libpqxx exception;
// classify() turns them into an errc (docs/adapters/writing-an-adapter.md, "Errors").

#include <cctype>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include "../../detail/secrets.hpp"
#include "../../error.hpp"

namespace kysera::infra::postgres::detail {

/// Where a failure happened: it decides between "refused" and "lost", and "lost" and "unknown".
enum class phase {
  connect,    ///< opening a session (libpq connect, session setup)
  statement,  ///< a statement, BEGIN or ROLLBACK on an open session
  commit,     ///< COMMIT: if the session breaks here the outcome is unknown
};

/// What kind of libpqxx exception it was, where the type says more than the SQLSTATE.
enum class failure_kind {
  sql,                   ///< the server reported an error (SQLSTATE known or not)
  broken_connection,     ///< pqxx::broken_connection: no usable session
  in_doubt,              ///< pqxx::in_doubt_error / statement_completion_unknown
  too_many_connections,  ///< pqxx::too_many_connections
  protocol_violation,    ///< pqxx::protocol_violation (libpqxx 8): not cured by reconnecting
  usage,                 ///< pqxx::usage_error: a statement could not be run as asked
  other,                 ///< anything else
};

struct failure_facts {
  phase when = phase::statement;
  failure_kind kind = failure_kind::other;
  std::string sqlstate;      ///< empty when unknown
  std::string message;       ///< the driver's text
  bool session_open = true;  ///< whether libpq still calls the session usable afterwards
};

struct classification {
  errc code = errc::backend_error;
  std::string sqlstate;  ///< the SQLSTATE reported, or the one libpq's message implies
};

inline bool contains_icase(std::string_view haystack, std::string_view needle) noexcept {
  if (needle.empty()) return true;
  if (haystack.size() < needle.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    bool match = true;
    for (std::size_t j = 0; j < needle.size(); ++j) {
      if (std::tolower(static_cast<unsigned char>(haystack[i + j])) !=
          std::tolower(static_cast<unsigned char>(needle[j]))) {
        match = false;
        break;
      }
    }
    if (match) return true;
  }
  return false;
}

inline bool contains_any(std::string_view haystack,
                         std::initializer_list<std::string_view> needles) {
  for (auto n : needles) {
    if (contains_icase(haystack, n)) return true;
  }
  return false;
}

/// The errc of an error the server reported with `sqlstate` (five characters).
inline errc errc_for_sqlstate(std::string_view sqlstate, std::string_view message, phase when) {
  const errc lost = when == phase::commit ? errc::outcome_unknown : errc::connection_lost;
  if (sqlstate.size() != 5) return errc::backend_error;
  std::string_view cls = sqlstate.substr(0, 2);
  if (sqlstate == "08007" || sqlstate == "40003") return errc::outcome_unknown;
  if (cls == "08") {
    if (sqlstate == "08001" || sqlstate == "08004") return errc::connection_refused;
    return lost;  // 08000, 08003, 08006, 08P01: the session is gone
  }
  if (sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P04" || sqlstate == "57P05") {
    return lost;  // admin/crash shutdown, database dropped, idle session timeout
  }
  if (sqlstate == "57P03") return errc::connection_refused;  // cannot_connect_now
  if (sqlstate == "57014") {
    // query_canceled: statement_timeout and cancel requests share the code; only the text differs.
    return contains_icase(message, "statement timeout") ? errc::timeout : errc::cancelled;
  }
  if (sqlstate == "53300") return errc::too_many_connections;
  if (sqlstate == "3D000") return errc::database_not_found;  // invalid_catalog_name
  if (cls == "28") return errc::authentication_failed;
  if (sqlstate == "40001") return errc::serialization_failure;
  if (sqlstate == "40P01") return errc::deadlock;
  if (sqlstate == "40002") return errc::constraint_violation;
  if (cls == "40") return errc::backend_error;  // 40000 transaction_rollback, unspecified
  if (sqlstate == "55P03") return errc::lock_timeout;
  if (cls == "23") return errc::constraint_violation;
  if (cls == "42") return errc::query_failed;
  if (sqlstate == "25P03") return lost;  // idle_in_transaction_session_timeout ends the session
  // Server-side trouble rather than a problem with the statement.
  if (cls == "53" || cls == "54" || cls == "57" || cls == "58" || cls == "F0" || cls == "XX") {
    return errc::backend_error;
  }
  return errc::query_failed;  // data exceptions, invalid transaction state, RAISE, ...
}

/// libpq's check of an enumerated option (sslmode, gssencmode, channel_binding,
/// target_session_attrs, ...) before it connects: `invalid <option> value: "..."`.
inline bool is_invalid_option_value(std::string_view message) noexcept {
  static constexpr std::string_view prefix = "invalid ";
  static constexpr std::string_view suffix = " value: \"";
  for (std::size_t at = message.find(prefix); at != std::string_view::npos;
       at = message.find(prefix, at + 1)) {
    std::size_t i = at + prefix.size();
    const std::size_t name_begin = i;
    while (i < message.size() &&
           (std::islower(static_cast<unsigned char>(message[i])) || message[i] == '_')) {
      ++i;
    }
    if (i > name_begin && message.substr(i, suffix.size()) == suffix) return true;
  }
  return false;
}

/// A failure to open a session, from libpq's message (libpqxx gives no SQLSTATE there). Needs
/// libpq's English messages; an unrecognised connect failure counts as connection_refused.
inline classification classify_connect_message(std::string_view message) {
  if (contains_any(message, {"password authentication failed", "no password supplied",
                             "authentication failed", "password is required"})) {
    return {errc::authentication_failed, "28P01"};
  }
  if (contains_any(message, {"no pg_hba.conf entry", "pg_hba.conf rejects",
                             "permission denied for database"}) ||
      (contains_icase(message, "role \"") && contains_icase(message, "does not exist"))) {
    return {errc::authentication_failed, "28000"};
  }
  if (contains_any(message, {"too many clients", "too many connections",
                             "remaining connection slots are reserved"})) {
    return {errc::too_many_connections, "53300"};
  }
  if (contains_any(message,
                   {"the database system is starting up", "the database system is shutting down",
                    "the database system is in recovery mode",
                    "the database system is not yet accepting connections",
                    "the database system is not accepting connections"})) {
    return {errc::connection_refused, "57P03"};
  }
  if (contains_any(message, {"timeout expired", "timed out"})) {
    return {errc::timeout, "08001"};
  }
  if (contains_any(message,
                   {"invalid connection option", "connection info string", "invalid URI",
                    "URI query parameter", "percent-encoded", "invalid integer value",
                    "invalid port number", " in URI: \"", " in URI (expected", "hostaddr values",
                    "port numbers to", "invalid SSL protocol version range",
                    "for minimum SSL protocol version", "for maximum SSL protocol version"}) ||
      is_invalid_option_value(message)) {
    return {errc::invalid_url, ""};
  }
  if (contains_icase(message, "database \"") && contains_icase(message, "does not exist")) {
    return {errc::database_not_found, "3D000"};
  }
  return {errc::connection_refused, "08001"};
}

/// The errc (and SQLSTATE) for a failure.
inline classification classify(const failure_facts& f) {
  const errc lost = f.when == phase::commit ? errc::outcome_unknown : errc::connection_lost;
  if (f.kind == failure_kind::in_doubt) return {errc::outcome_unknown, f.sqlstate};
  if (f.kind == failure_kind::too_many_connections) {
    return {errc::too_many_connections, f.sqlstate.empty() ? "53300" : f.sqlstate};
  }
  if (f.when == phase::connect) {
    if (!f.sqlstate.empty()) {
      errc code = errc_for_sqlstate(f.sqlstate, f.message, f.when);
      // A session that broke while we were still setting it up was never established.
      if (code == errc::connection_lost || code == errc::outcome_unknown) {
        code = errc::connection_refused;
      }
      return {code, f.sqlstate};
    }
    return classify_connect_message(f.message);
  }
  if (f.kind == failure_kind::protocol_violation) return {errc::backend_error, f.sqlstate};
  errc code = errc::backend_error;
  if (!f.sqlstate.empty()) {
    code = errc_for_sqlstate(f.sqlstate, f.message, f.when);
  } else if (f.kind == failure_kind::usage) {
    code = errc::query_failed;
  }
  if ((f.kind == failure_kind::broken_connection || !f.session_open) &&
      code != errc::outcome_unknown) {
    code = lost;
  }
  return {code, f.sqlstate};
}

/// The driver's text on one line: runs of whitespace (libpq's "\n\t") become one space, and a
/// line break that starts a new sentence ("...: Connection refused\n\tIs the server running...")
/// ends the previous one with a full stop, so the joined text reads as sentences.
inline std::string one_line(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  bool pending_space = false;
  bool pending_break = false;
  auto is_upper = [](char c) { return c >= 'A' && c <= 'Z'; };
  auto is_lower = [](char c) { return c >= 'a' && c <= 'z'; };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char ch = text[i];
    if (std::isspace(static_cast<unsigned char>(ch))) {
      pending_space = !out.empty();
      pending_break = pending_break || (ch == '\n' && !out.empty());
      continue;
    }
    if (pending_space) {
      // "Is the", "Hint", ...: a capitalised word, not an acronym such as "TCP/IP" or "LINE".
      const bool sentence_starts = pending_break && is_upper(ch) && i + 1 < text.size() &&
                                   is_lower(text[i + 1]);
      const char last = out.back();
      if (sentence_starts && std::string_view(".:;?!,").find(last) == std::string_view::npos) {
        out.push_back('.');
      }
      out.push_back(' ');
    }
    pending_space = false;
    pending_break = false;
    out.push_back(ch);
  }
  return out;
}

/// Driver texts that say too little on their own, said as what they mean for the caller.
inline std::string readable_driver_text(std::string text) {
  // libpqxx 6 reports a session the server has closed (shutdown, restart, pg_terminate_backend)
  // as this when the next statement starts.
  static constexpr std::string_view not_connected = "Could not obtain client encoding: not connected.";
  if (text == not_connected) {
    return "the server closed the connection (it shut down or restarted, or the session was "
           "terminated)";
  }
  return text;
}

/// "postgres: <driver text> (<context>)", with every secret replaced by "***".
inline std::string error_message(std::string_view driver_message, errc code, phase when,
                                 std::string_view description,
                                 const std::vector<std::string>& secrets) {
  // Redact before and after joining lines: a secret may itself contain a run of whitespace.
  std::string text = readable_driver_text(one_line(infra::detail::redact(driver_message, secrets)));
  if (text.empty()) text = std::string(to_string(code));
  std::string out = "postgres: " + text;
  if (when == phase::connect) {
    out += " (connecting to " + std::string(description) + ")";
  } else if (code == errc::connection_lost || code == errc::outcome_unknown) {
    out += " (session to " + std::string(description) + ")";
  }
  return infra::detail::redact(out, secrets);
}

inline database_error make_error(const failure_facts& facts, std::string_view description,
                                 const std::vector<std::string>& secrets) {
  classification c = classify(facts);
  return database_error(c.code,
                        error_message(facts.message, c.code, facts.when, description, secrets),
                        "postgres", c.sqlstate, 0);
}

}  // namespace kysera::infra::postgres::detail
