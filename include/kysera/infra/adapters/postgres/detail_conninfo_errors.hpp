#pragma once
// Why libpq rejected a connection string, in words that never quote it. libpq's own messages
// repeat the offending text (`missing "=" after "<word>"`, `... in URI: "<the whole URI>"`), and
// that text may be a password. Values always come from libpq (detail_conninfo.hpp); the scanner
// here only locates a problem by byte offset, following libpq's keyword/value rules exactly.

#include <libpq-fe.h>

#include <cctype>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "../../error.hpp"

namespace kysera::infra::postgres::detail {

[[noreturn]] inline void invalid_connection_string(const std::string& why) {
  throw database_error(errc::invalid_url, "postgres: invalid connection string: " + why,
                       "postgres");
}

inline bool is_space(char c) noexcept {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

/// One `keyword=value` of keyword/value conninfo, as libpq tokenises it.
struct kv_token {
  std::size_t key_at = 0;
  std::string_view key;
  std::string_view raw_value;  ///< as written: with its quotes and backslashes
};

enum class kv_problem { none, missing_equals, unterminated_quote };

struct kv_scan {
  std::vector<kv_token> tokens;
  kv_problem problem = kv_problem::none;
  std::size_t problem_at = 0;
};

/// libpq's tokenising of keyword/value conninfo: a keyword ends at `=` or whitespace; a value is
/// bare (ends at whitespace; `\` takes the next byte literally, a trailing `\` is dropped) or
/// single-quoted (`\` escapes the next byte). Stops at the first problem.
inline kv_scan scan_keyword_value(std::string_view text) {
  kv_scan s;
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (true) {
    while (i < n && is_space(text[i])) ++i;
    if (i >= n) return s;
    kv_token t;
    t.key_at = i;
    while (i < n && text[i] != '=' && !is_space(text[i])) ++i;
    t.key = text.substr(t.key_at, i - t.key_at);
    while (i < n && is_space(text[i])) ++i;
    if (i >= n || text[i] != '=') {
      s.problem = kv_problem::missing_equals;
      s.problem_at = t.key_at;
      return s;
    }
    ++i;
    while (i < n && is_space(text[i])) ++i;
    const std::size_t value_at = i;
    if (i < n && text[i] == '\'') {
      ++i;
      while (true) {
        if (i >= n) {
          s.problem = kv_problem::unterminated_quote;
          s.problem_at = value_at;
          return s;
        }
        if (text[i] == '\\') {
          i += i + 1 < n ? 2 : 1;
        } else if (text[i++] == '\'') {
          break;
        }
      }
    } else {
      while (i < n && !is_space(text[i])) i += text[i] == '\\' && i + 1 < n ? 2 : 1;
    }
    t.raw_value = text.substr(value_at, i - value_at);
    s.tokens.push_back(t);
  }
}

/// The tokens of text libpq accepted (a problem cannot occur there; what was read is returned).
inline std::vector<kv_token> tokenize_keyword_value(std::string_view text) {
  return scan_keyword_value(text).tokens;
}

/// Whether libpq knows `keyword` (the list comes from libpq itself).
inline bool is_libpq_keyword(std::string_view keyword) {
  char* error = nullptr;
  PQconninfoOption* all = PQconninfoParse("", &error);
  if (error) PQfreemem(error);
  if (!all) return true;  // out of memory: do not claim it is unknown
  bool known = false;
  for (const PQconninfoOption* o = all; o->keyword != nullptr; ++o) {
    if (keyword == o->keyword) known = true;
  }
  PQconninfoFree(all);
  return known;
}

/// A "name://" prefix other than postgres(ql):// is a mistake, not keyword/value conninfo.
inline void reject_foreign_scheme(std::string_view text) {
  auto sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return;
  for (std::size_t i = 0; i < sep; ++i) {
    char ch = text[i];
    if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '+' || ch == '-' || ch == '.')) {
      return;
    }
  }
  invalid_connection_string("unsupported scheme \"" + std::string(text.substr(0, sep)) +
                            "\" (expected postgres:// or postgresql://)");
}

/// Why libpq rejected keyword/value text, located by byte offset.
[[noreturn]] inline void explain_keyword_value(std::string_view text) {
  kv_scan s = scan_keyword_value(text);
  const std::string at = " at byte ";
  if (s.problem == kv_problem::missing_equals) {
    std::string why = "missing \"=\" after the word" + at + std::to_string(s.problem_at) +
                      " (a value with spaces must be in single quotes)";
    if (s.tokens.empty()) {
      why +=
          "; the text does not start with postgres:// or postgresql://, so it is read as "
          "libpq keyword=value conninfo";
    }
    invalid_connection_string(why);
  }
  if (s.problem == kv_problem::unterminated_quote) {
    invalid_connection_string("unterminated quoted value starting" + at +
                              std::to_string(s.problem_at));
  }
  for (const auto& t : s.tokens) {
    if (t.key.empty()) {
      invalid_connection_string("empty keyword before the \"=\"" + at + std::to_string(t.key_at));
    }
    for (char ch : t.key) {
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '_')) {
        invalid_connection_string(
            "malformed keyword" + at + std::to_string(t.key_at) +
            " (keywords are letters, digits and \"_\"; a value with spaces must be in single "
            "quotes)");
      }
    }
    if (!is_libpq_keyword(t.key)) {
      invalid_connection_string("unknown keyword" + at + std::to_string(t.key_at) +
                                " (not a libpq connection option)");
    }
  }
  invalid_connection_string("libpq cannot parse it");
}

/// Why libpq rejected a URI, from the fixed part of libpq's message (never its quoted parts).
[[noreturn]] inline void explain_uri(std::string_view libpq_message) {
  struct reason {
    std::string_view libpq;
    std::string_view ours;
  };
  static constexpr reason reasons[] = {
      {"IPv6 host address may not be empty", "empty [IPv6] host \"[]\""},
      {"looking for matching \"]\"", "unterminated [IPv6] host"},
      {"unexpected character", "unexpected character after a host (expected \":\" or \"/\")"},
      {"extra key/value separator", "a query parameter has more than one \"=\""},
      {"missing key/value separator", "query parameter without \"=\""},
      {"invalid URI query parameter", "unknown query parameter (not a libpq connection option)"},
      {"invalid percent-encoded token", "bad %-escape"},
      {"forbidden value %00", "a %-escape decodes to a NUL byte"},
      {"invalid connection option", "unknown query parameter (not a libpq connection option)"},
  };
  for (const auto& r : reasons) {
    if (libpq_message.find(r.libpq) != std::string_view::npos) {
      invalid_connection_string(std::string(r.ours));
    }
  }
  invalid_connection_string("libpq cannot parse the URI");
}

/// Throws the invalid_url error for text PQconninfoParse rejected with `libpq_message`.
[[noreturn]] inline void explain_rejection(std::string_view text, bool is_url,
                                           std::string_view libpq_message) {
  if (libpq_message.find("out of memory") != std::string_view::npos) {
    throw database_error(errc::backend_error,
                         "postgres: out of memory while parsing the connection string", "postgres");
  }
  if (is_url) explain_uri(libpq_message);
  explain_keyword_value(text);
}

/// libpq checks ports only when it connects; a bad one is a malformed string, said at once.
/// `ports` is libpq's comma-separated list; empty entries mean the default port.
inline void check_ports(std::string_view ports) {
  while (true) {
    auto comma = ports.find(',');
    std::string_view port = ports.substr(0, comma);
    if (!port.empty()) {
      if (port.size() > 5) invalid_connection_string("bad port");
      unsigned value = 0;
      for (char ch : port) {
        if (ch < '0' || ch > '9') invalid_connection_string("bad port");
        value = value * 10 + static_cast<unsigned>(ch - '0');
      }
      if (value == 0 || value > 65535) invalid_connection_string("port out of range");
    }
    if (comma == std::string_view::npos) return;
    ports.remove_prefix(comma + 1);
  }
}

/// libpq reads `host:` in a URI as "the default port"; a colon with nothing after it is rather a
/// port that went missing (an empty variable in a template), so it is refused.
inline void check_uri_empty_ports(std::string_view uri) {
  std::string_view rest = uri.substr(uri.find("://") + 3);
  if (auto end = rest.find_first_of("@/"); end != std::string_view::npos && rest[end] == '@') {
    rest.remove_prefix(end + 1);  // libpq's credentials: up to the first '@' before any '/'
  }
  rest = rest.substr(0, rest.find_first_of("/?"));
  bool in_brackets = false;
  for (std::size_t i = 0; i < rest.size(); ++i) {
    if (rest[i] == '[') in_brackets = true;
    if (rest[i] == ']') in_brackets = false;
    if (rest[i] == ':' && !in_brackets && (i + 1 == rest.size() || rest[i + 1] == ',')) {
      invalid_connection_string("empty port after \":\"");
    }
  }
}

}  // namespace kysera::infra::postgres::detail
