#pragma once
// Connection strings of the PostgreSQL adapter: libpq keyword/value conninfo ("host=... port=...
// password=...") and postgres:// / postgresql:// URIs. Parsed only as far as the adapter needs:
// to reject malformed text early (errc::invalid_url), to find the password so it can be redacted
// from every message, to build a password-free description, and to add our defaults
// (connect_timeout, application_name) where the string does not set them. Everything else is
// left to libpq, which receives the user's text unchanged plus those additions.

#include <cctype>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../../detail/url.hpp"
#include "../../error.hpp"

namespace kysera::infra::postgres::detail {

/// What the adapter knows about a connection string after parsing it.
struct conninfo {
  bool is_url = false;
  std::string text;    ///< the string as the user gave it
  std::string scheme;  ///< "postgres" or "postgresql" for a URI
  std::string hosts;   ///< URI host list as written ("h1:5432,h2"), or the host keyword
  std::string user;
  std::string password;
  std::string port;
  std::string dbname;
  /// Keywords of a conninfo string, or query parameters of a URI (values decoded).
  std::vector<std::pair<std::string, std::string>> params;
  /// Every form of the password that could appear in a message (decoded and as written).
  std::vector<std::string> secrets;

  bool has(std::string_view key) const noexcept {
    for (const auto& p : params) {
      if (p.first == key) return true;
    }
    return false;
  }
};

[[noreturn]] inline void invalid_connection_string(const std::string& why) {
  // Never quotes the text: it may hold a password.
  throw database_error(errc::invalid_url, "postgres: invalid connection string: " + why,
                       "postgres");
}

inline bool is_space(char c) noexcept {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

inline bool is_postgres_uri(std::string_view text) noexcept {
  return text.starts_with("postgresql://") || text.starts_with("postgres://");
}

inline void add_secret(conninfo& c, std::string secret) {
  if (secret.empty()) return;
  for (const auto& s : c.secrets) {
    if (s == secret) return;
  }
  c.secrets.push_back(std::move(secret));
}

/// Applies the keywords that describe the session (later ones win, as in libpq).
inline void apply_keyword(conninfo& c, const std::string& key, const std::string& value) {
  if (key == "host" || (key == "hostaddr" && c.hosts.empty())) {
    c.hosts = value;
  } else if (key == "port") {
    c.port = value;
  } else if (key == "user") {
    c.user = value;
  } else if (key == "dbname") {
    c.dbname = value;
  } else if (key == "password") {
    c.password = value;
    add_secret(c, value);
  }
}

/// Whether `key` can be a libpq keyword at all: every keyword libpq knows is made of ASCII letters
/// and underscores (digits are let through too). Anything else (a dash, a colon, an `@`...) is
/// rather a piece of a value, e.g. the tail of an unquoted password that contained a space.
inline bool plausible_keyword(std::string_view key) noexcept {
  for (char ch : key) {
    auto u = static_cast<unsigned char>(ch);
    if (!(std::isalnum(u) || ch == '_')) return false;
  }
  return true;
}

/// Parses libpq's keyword/value form with libpq's own rules: `key = value` pairs separated by
/// whitespace; a value is either bare (backslash escapes the next character) or single-quoted
/// (backslash escapes `'` and `\`). Errors say where the problem is (a byte offset), never what
/// the text there is: a stray word may be the second half of a password.
inline conninfo parse_keyword_value(std::string_view text) {
  conninfo c;
  c.text = std::string(text);
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (true) {
    while (i < n && is_space(text[i])) ++i;
    if (i >= n) break;
    const std::size_t key_begin = i;
    while (i < n && text[i] != '=' && !is_space(text[i])) ++i;
    std::string key(text.substr(key_begin, i - key_begin));
    while (i < n && is_space(text[i])) ++i;
    if (i >= n || text[i] != '=') {
      std::string why = "missing \"=\" after the word at byte " + std::to_string(key_begin) +
                        " (a value with spaces must be in single quotes)";
      if (c.params.empty()) {
        why +=
            "; the text does not start with postgres:// or postgresql://, so it is read as "
            "libpq keyword=value conninfo";
      }
      invalid_connection_string(why);
    }
    if (key.empty()) {
      invalid_connection_string("empty keyword before the \"=\" at byte " + std::to_string(i));
    }
    if (!plausible_keyword(key)) {
      invalid_connection_string(
          "malformed keyword at byte " + std::to_string(key_begin) +
          " (keywords are letters, digits and \"_\"; a value with spaces must be "
          "in single quotes)");
    }
    ++i;
    while (i < n && is_space(text[i])) ++i;
    std::string value;
    if (i < n && text[i] == '\'') {
      const std::size_t quote_at = i;
      ++i;
      bool closed = false;
      while (i < n) {
        if (text[i] == '\\' && i + 1 < n) {
          value.push_back(text[i + 1]);
          i += 2;
        } else if (text[i] == '\'') {
          ++i;
          closed = true;
          break;
        } else {
          value.push_back(text[i++]);
        }
      }
      if (!closed) {
        invalid_connection_string("unterminated quoted value starting at byte " +
                                  std::to_string(quote_at));
      }
    } else {
      while (i < n && !is_space(text[i])) {
        if (text[i] == '\\' && i + 1 < n) {
          value.push_back(text[i + 1]);
          i += 2;
        } else {
          value.push_back(text[i++]);
        }
      }
    }
    apply_keyword(c, key, value);
    c.params.emplace_back(std::move(key), std::move(value));
  }
  return c;
}

inline void check_port(std::string_view port) {
  if (port.empty() || port.size() > 5) invalid_connection_string("bad port");
  unsigned value = 0;
  for (char ch : port) {
    if (ch < '0' || ch > '9') invalid_connection_string("bad port");
    value = value * 10 + static_cast<unsigned>(ch - '0');
  }
  if (value == 0 || value > 65535) invalid_connection_string("port out of range");
}

/// Parses a postgres:// or postgresql:// URI the way libpq reads it:
/// `scheme://[user[:password]@][host[:port][,host[:port]...]][/dbname][?key=value&...]`.
inline conninfo parse_uri(std::string_view text) {
  conninfo c;
  c.is_url = true;
  c.text = std::string(text);
  auto sep = text.find("://");
  c.scheme = std::string(text.substr(0, sep));
  std::string_view rest = text.substr(sep + 3);
  if (rest.find('\0') != std::string_view::npos) invalid_connection_string("contains a NUL byte");

  // The authority ends at the first '/' or '?'; credentials end at its first '@' (as in libpq).
  std::size_t authority_end = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, authority_end);
  rest = authority_end == std::string_view::npos ? std::string_view{} : rest.substr(authority_end);
  if (auto at = authority.find('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    std::string_view raw_password;
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      raw_password = userinfo.substr(colon + 1);
      userinfo = userinfo.substr(0, colon);
    }
    c.user = infra::detail::percent_decode(userinfo, "postgres");
    c.password = infra::detail::percent_decode(raw_password, "postgres");
    add_secret(c, c.password);
    add_secret(c, std::string(raw_password));
  }

  // Hosts: a comma-separated list of host[:port], IPv6 addresses in brackets.
  c.hosts = std::string(authority);
  std::string first_port;
  std::string_view hosts = authority;
  while (!hosts.empty()) {
    auto comma = hosts.find(',');
    std::string_view entry = hosts.substr(0, comma);
    hosts = comma == std::string_view::npos ? std::string_view{} : hosts.substr(comma + 1);
    std::string_view after_host = entry;
    if (!entry.empty() && entry.front() == '[') {
      auto close = entry.find(']');
      if (close == std::string_view::npos) invalid_connection_string("unterminated [IPv6] host");
      if (close == 1) invalid_connection_string("empty [IPv6] host \"[]\"");
      after_host = entry.substr(close + 1);
      if (!after_host.empty() && after_host.front() != ':') {
        invalid_connection_string("junk after [IPv6] host");
      }
    }
    if (auto colon = after_host.rfind(':'); colon != std::string_view::npos) {
      std::string_view port = after_host.substr(colon + 1);
      check_port(port);
      if (first_port.empty()) first_port = std::string(port);
    }
    (void)infra::detail::percent_decode(entry, "postgres");  // validates the escapes
  }
  c.port = first_port;

  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (!rest.empty() && rest.front() == '/') rest.remove_prefix(1);
  c.dbname = infra::detail::percent_decode(rest, "postgres");

  infra::detail::for_each_query_pair(
      query, [&](std::string_view raw_key, std::string_view raw_value, bool has_value) {
        if (!has_value) invalid_connection_string("query parameter without \"=\"");
        std::string key = infra::detail::percent_decode(raw_key, "postgres");
        std::string value = infra::detail::percent_decode(raw_value, "postgres");
        if (key.empty()) invalid_connection_string("empty query parameter name");
        if (key == "password") add_secret(c, std::string(raw_value));
        apply_keyword(c, key, value);
        c.params.emplace_back(std::move(key), std::move(value));
      });
  return c;
}

/// Parses either form. A string with some other `scheme://` prefix is rejected; anything else
/// is read as keyword/value conninfo (the empty string means "libpq defaults").
inline conninfo parse_connection_string(std::string_view text) {
  if (text.find('\0') != std::string_view::npos) invalid_connection_string("contains a NUL byte");
  if (is_postgres_uri(text)) return parse_uri(text);
  auto sep = text.find("://");
  if (sep != std::string_view::npos) {
    bool looks_like_scheme = sep > 0;
    for (std::size_t i = 0; i < sep; ++i) {
      char ch = text[i];
      if (!(std::isalnum(static_cast<unsigned char>(ch)) || ch == '+' || ch == '-' || ch == '.')) {
        looks_like_scheme = false;
      }
    }
    if (looks_like_scheme) {
      invalid_connection_string("unsupported scheme \"" + std::string(text.substr(0, sep)) +
                                "\" (expected postgres:// or postgresql://)");
    }
  }
  return parse_keyword_value(text);
}

/// A conninfo value in single quotes, with `\` and `'` escaped.
inline std::string quote_conninfo_value(std::string_view value) {
  std::string out = "'";
  for (char ch : value) {
    if (ch == '\\' || ch == '\'') out.push_back('\\');
    out.push_back(ch);
  }
  out.push_back('\'');
  return out;
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
inline std::string percent_encode(std::string_view value) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : value) {
    auto u = static_cast<unsigned char>(ch);
    if (std::isalnum(u) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 0x0F]);
    }
  }
  return out;
}

/// libpq's connect_timeout is in whole seconds: round up so the bound is never shorter. Safe
/// for every value, milliseconds::max() included (no overflow).
inline std::int64_t whole_seconds(std::chrono::milliseconds d) noexcept {
  const auto ms = static_cast<std::int64_t>(d.count());
  std::int64_t seconds = ms / 1000;
  if (ms % 1000 > 0) ++seconds;
  return seconds;
}

/// The text handed to libpq: the user's string plus `connect_timeout` (whole seconds) and
/// `application_name` where the string does not set them itself.
inline std::string with_defaults(const conninfo& c, std::int64_t connect_timeout_seconds,
                                 std::string_view application_name) {
  std::vector<std::pair<std::string, std::string>> extra;
  if (!c.has("connect_timeout")) {
    extra.emplace_back("connect_timeout", std::to_string(connect_timeout_seconds));
  }
  if (!application_name.empty() && !c.has("application_name")) {
    extra.emplace_back("application_name", std::string(application_name));
  }
  std::string out = c.text;
  if (c.is_url) {
    bool has_query = out.find('?') != std::string::npos;
    for (const auto& [key, value] : extra) {
      if (!has_query) {
        out += '?';
        has_query = true;
      } else if (out.back() != '?' && out.back() != '&') {
        out += '&';
      }
      out += key + "=" + percent_encode(value);
    }
  } else {
    for (const auto& [key, value] : extra) {
      if (!out.empty() && !is_space(out.back())) out += ' ';
      out += key + "=" + quote_conninfo_value(value);
    }
  }
  return out;
}

/// "postgres://user@host:port/dbname": what a message or a log line may show. Never the password.
inline std::string describe(const conninfo& c) {
  std::string out = (c.is_url ? c.scheme : std::string("postgres")) + "://";
  if (!c.user.empty()) out += c.user + "@";
  out += c.hosts;
  if (!c.is_url && !c.port.empty()) out += ":" + c.port;
  out += "/" + c.dbname;
  return out;
}

}  // namespace kysera::infra::postgres::detail
