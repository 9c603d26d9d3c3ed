#pragma once
// Connection strings of the PostgreSQL adapter: libpq keyword/value conninfo ("host=... port=...
// password=...") and postgres:// / postgresql:// URIs.
//
// There is one reading of a connection string: libpq's. `PQconninfoParse` (no connection, no
// defaults, no environment) yields every keyword the string sets with the value libpq will use;
// the secrets, the description and our defaults are taken from those pairs, and libpq receives a
// keyword/value string rebuilt from them with every value quoted, so nothing we add can change
// what the user wrote. When libpq rejects the text, detail_conninfo_errors.hpp says why in our
// words: libpq's own messages quote the input, which may hold a password.

#include <libpq-fe.h>

#include <cctype>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../../detail/secrets.hpp"
#include "../../detail/url.hpp"
#include "../../error.hpp"
#include "detail_conninfo_errors.hpp"

namespace kysera::infra::postgres::detail {

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

/// libpq's connect_timeout is in whole seconds: round up so the bound is never shorter. Safe
/// for every value, milliseconds::max() included (no overflow).
inline std::int64_t whole_seconds(std::chrono::milliseconds d) noexcept {
  const auto ms = static_cast<std::int64_t>(d.count());
  std::int64_t seconds = ms / 1000;
  if (ms % 1000 > 0) ++seconds;
  return seconds;
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
