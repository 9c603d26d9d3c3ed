#pragma once
// Connection strings of the PostgreSQL adapter: libpq keyword/value conninfo ("host=... port=...
// password=...") and postgres:// / postgresql:// URIs.
//
// There is one reading of a connection string: libpq's. `PQconninfoParse` (no connection, no
// defaults, no environment) yields every keyword the string sets with the value libpq will use;
// the secrets, the description and our defaults are taken from those pairs, and libpq receives a
// keyword/value string rebuilt from them with every value quoted, so nothing we add can change
// what the user wrote. When libpq rejects the text, the scanner below says why in our words:
// libpq's own messages quote the input (`missing "=" after "<word>"`, `... in URI: "<the
// whole URI>"`), and that text may be a password. The scanner only locates a problem by byte
// offset, following libpq's keyword/value rules exactly; values always come from libpq.

#include <libpq-fe.h>

#include <cctype>
#include <cstddef>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../../detail/port.hpp"
#include "../../detail/secrets.hpp"
#include "../../detail/url.hpp"
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
      const infra::detail::port_number number = infra::detail::parse_port(port);
      if (number.result == infra::detail::port_number::status::malformed) invalid_connection_string("bad port");
      if (number.result != infra::detail::port_number::status::ok || number.value == 0) {
        invalid_connection_string("port out of range");
      }
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

// ---- reading a connection string


/// libpq's reading of a connection string.
struct conninfo {
  bool is_url = false;
  std::string scheme;  ///< "postgres" or "postgresql" for a URI; "postgres" otherwise
  /// Every keyword the string sets, with the value libpq uses, in libpq's keyword order.
  std::vector<std::pair<std::string, std::string>> params;
  /// Every form of every secret value (password, sslpassword, ...) that could appear in a
  /// message: as libpq reads it, as written in the text, quoted and percent-encoded.
  std::vector<std::string> secrets;

  /// The value libpq uses for `key`, or nullptr when the string does not set it.
  const std::string* get(std::string_view key) const noexcept {
    for (const auto& p : params) {
      if (p.first == key) return &p.second;
    }
    return nullptr;
  }
  bool has(std::string_view key) const noexcept { return get(key) != nullptr; }
  std::string value(std::string_view key) const {
    const std::string* v = get(key);
    return v ? *v : std::string();
  }
};

inline bool is_postgres_uri(std::string_view text) noexcept {
  return text.starts_with("postgresql://") || text.starts_with("postgres://");
}

/// Owns what PQconninfoParse returns.
struct conninfo_options_deleter {
  void operator()(PQconninfoOption* o) const noexcept { PQconninfoFree(o); }
};
using conninfo_options = std::unique_ptr<PQconninfoOption, conninfo_options_deleter>;

/// A conninfo value in single quotes, with `\` and `'` escaped (libpq's quoting).
inline std::string quote_conninfo_value(std::string_view value) {
  std::string out = "'";
  for (char ch : value) {
    if (ch == '\\' || ch == '\'') out.push_back('\\');
    out.push_back(ch);
  }
  out.push_back('\'');
  return out;
}

/// The spans of a URI that hold a secret as written (still percent-encoded): the password of the
/// userinfo and the value of every `password`/`sslpassword` query parameter. Uses libpq's
/// boundaries: credentials end at the first '@' before any '/', the query starts at the first
/// '?' after them.
inline void add_raw_uri_secrets(std::string_view text, std::vector<std::string>& secrets) {
  std::string_view rest = text.substr(text.find("://") + 3);
  if (auto end = rest.find_first_of("@/"); end != std::string_view::npos && rest[end] == '@') {
    std::string_view userinfo = rest.substr(0, end);
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      infra::detail::add_secret(secrets, std::string(userinfo.substr(colon + 1)));
    }
    rest = rest.substr(end + 1);
  }
  auto q = rest.find('?');
  if (q == std::string_view::npos) return;
  infra::detail::for_each_query_pair(
      rest.substr(q + 1), [&](std::string_view key, std::string_view value, bool) {
        if (key.find("password") != std::string_view::npos) {
          infra::detail::add_secret(secrets, std::string(value));
        }
      });
}

/// The spans of keyword/value text that hold a secret as written (with its quotes and escapes),
/// found with libpq's tokenising rules; never throws (the text was accepted by libpq already).
inline void add_raw_keyword_secrets(std::string_view text, std::vector<std::string>& secrets) {
  for (const auto& token : tokenize_keyword_value(text)) {
    if (token.key.find("password") != std::string_view::npos) {
      infra::detail::add_secret(secrets, std::string(token.raw_value));
    }
  }
}

/// Parses either form with libpq. Throws database_error(errc::invalid_url) for text libpq
/// rejects, for a scheme other than postgres(ql)://, for a NUL byte, and for ports that are not
/// numbers in 1..65535; the message says what is wrong and never quotes the text.
inline conninfo parse_connection_string(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) invalid_connection_string("contains a NUL byte");
  conninfo c;
  c.is_url = is_postgres_uri(text);
  c.scheme = c.is_url ? std::string(text.substr(0, text.find("://"))) : std::string("postgres");
  if (!c.is_url) reject_foreign_scheme(text);

  const std::string owned(text);
  char* error = nullptr;
  conninfo_options options(PQconninfoParse(owned.c_str(), &error));
  if (!options) {
    std::string libpq_message = error ? error : "";
    if (error) PQfreemem(error);
    explain_rejection(text, c.is_url, libpq_message);  // [[noreturn]]
  }
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    c.params.emplace_back(o->keyword, o->val);
    const bool secret = (o->dispchar != nullptr && o->dispchar[0] == '*') ||
                        std::string_view(o->keyword).find("password") != std::string_view::npos;
    if (secret && *o->val != '\0') {
      std::string value = o->val;
      infra::detail::add_secret(c.secrets, value);
      infra::detail::add_secret(c.secrets, quote_conninfo_value(value));
      infra::detail::add_secret(c.secrets, infra::detail::percent_encode(value));
    }
  }
  if (c.is_url) {
    check_uri_empty_ports(text);
    add_raw_uri_secrets(text, c.secrets);
  } else {
    add_raw_keyword_secrets(text, c.secrets);
  }
  check_ports(c.value("port"));
  return c;
}

/// The text handed to libpq: every pair of libpq's reading, each value quoted, plus
/// `connect_timeout` (whole seconds) and `application_name` where the string does not set them.
/// Parsed by libpq again, it yields exactly the user's pairs plus those two.
inline std::string with_defaults(const conninfo& c, std::int64_t connect_timeout_seconds,
                                 std::string_view application_name) {
  std::string out;
  auto add = [&](std::string_view key, std::string_view value) {
    if (!out.empty()) out.push_back(' ');
    out.append(key);
    out.push_back('=');
    out += quote_conninfo_value(value);
  };
  for (const auto& [key, value] : c.params) add(key, value);
  if (!c.has("connect_timeout")) add("connect_timeout", std::to_string(connect_timeout_seconds));
  if (!application_name.empty() && !c.has("application_name")) {
    add("application_name", application_name);
  }
  return out;
}

/// Splits a libpq comma-separated list ("h1,h2", "5432,,5433").
inline std::vector<std::string> split_list(std::string_view list) {
  std::vector<std::string> out;
  if (list.empty()) return out;
  while (true) {
    auto comma = list.find(',');
    out.emplace_back(list.substr(0, comma));
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}

/// "postgres://user@host:port,host:port/dbname": what a message or a log line may show, as a URI
/// that libpq parses back to the same user, hosts, ports and dbname. Never a password.
inline std::string describe(const conninfo& c) {
  using infra::detail::percent_encode;
  std::string out = c.scheme + "://";
  if (const std::string* user = c.get("user"); user && !user->empty()) {
    out += percent_encode(*user) + "@";
  }
  std::vector<std::string> hosts = split_list(c.value("host"));
  if (hosts.empty()) hosts = split_list(c.value("hostaddr"));
  std::vector<std::string> ports = split_list(c.value("port"));
  // One port applies to every host, as libpq reads it.
  if (ports.size() == 1 && hosts.size() > 1) ports.resize(hosts.size(), ports.front());
  if (hosts.empty() && !ports.empty()) hosts.resize(ports.size());
  for (std::size_t i = 0; i < hosts.size(); ++i) {
    if (i > 0) out += ',';
    const std::string& host = hosts[i];
    bool ipv6 = host.find(':') != std::string::npos;
    for (char ch : host) {
      ipv6 = ipv6 && (std::isxdigit(static_cast<unsigned char>(ch)) || ch == ':' || ch == '.');
    }
    out += ipv6 ? "[" + host + "]" : percent_encode(host);
    if (i < ports.size() && !ports[i].empty()) out += ":" + ports[i];
  }
  out += "/" + percent_encode(c.value("dbname"));
  return out;
}

}  // namespace kysera::infra::postgres::detail
