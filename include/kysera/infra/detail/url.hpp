#pragma once
// A small parser for `scheme://user:password@host:port/database?key=value&...` connection URLs.

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "../error.hpp"
#include "port.hpp"

namespace kysera::infra::detail {

struct url {
  std::string scheme;
  std::string user;
  std::string password;
  std::string raw_password;  // as written, still percent-encoded
  std::string host;
  std::optional<std::uint16_t> port;
  std::string database;  // path without the leading '/'
  std::map<std::string, std::string> params;
};

inline int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/// Decodes %XX escapes; throws `database_error(errc::invalid_url)` on a malformed escape.
inline std::string percent_decode(std::string_view in, std::string_view backend) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) {
        throw database_error(errc::invalid_url, "invalid connection URL: truncated %-escape",
                             std::string(backend));
      }
      int hi = hex_value(in[i + 1]);
      int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) {
        throw database_error(errc::invalid_url, "invalid connection URL: bad %-escape",
                             std::string(backend));
      }
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

/// Percent-encodes every byte but RFC 3986's unreserved characters (letters, digits, `-._~`).
inline std::string percent_encode(std::string_view value) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(value.size());
  for (char ch : value) {
    auto u = static_cast<unsigned char>(ch);
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(hex[u >> 4]);
      out.push_back(hex[u & 0x0F]);
    }
  }
  return out;
}

/// Calls `fn(key, value, has_value)` for each non-empty `key[=value]` pair of a URL query string
/// (the text after '?'), in order and still percent-encoded. Shared by every URL parser.
template <class F>
void for_each_query_pair(std::string_view query, F&& fn) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    auto eq = pair.find('=');
    if (eq == std::string_view::npos) {
      fn(pair, std::string_view{}, false);
    } else {
      fn(pair.substr(0, eq), pair.substr(eq + 1), true);
    }
  }
}

/// Parses a connection URL as RFC 3986 splits it: the authority ends at the first '/', '?' or
/// '#', and the user info at the last '@' within the authority. Text that could be read two ways
/// is rejected: an '@' after the authority when the authority has none (a password holding an
/// unencoded '/', '?' or '#'), a fragment, brackets outside an [IPv6] host. Error messages never
/// quote the URL, which may hold a password.
inline url parse_url(std::string_view text, std::string_view backend) {
  auto fail = [&](const char* why) -> url {
    throw database_error(errc::invalid_url, std::string("invalid connection URL: ") + why,
                         std::string(backend));
  };
  if (text.find('\0') != std::string_view::npos) return fail("contains a NUL byte");
  url u;
  auto sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) return fail("expected scheme://");
  u.scheme = std::string(text.substr(0, sep));
  for (auto& c : u.scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string_view rest = text.substr(sep + 3);

  const std::size_t authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  std::string_view authority = rest.substr(0, authority_end);
  rest.remove_prefix(authority_end);
  if (rest.find('#') != std::string_view::npos) {
    return fail("a fragment (\"#\") is not allowed; write '#' in a password as %23");
  }
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority = authority.substr(at + 1);
    if (auto colon = userinfo.find(':'); colon != std::string_view::npos) {
      u.user = percent_decode(userinfo.substr(0, colon), backend);
      u.raw_password = std::string(userinfo.substr(colon + 1));
      u.password = percent_decode(u.raw_password, backend);
    } else {
      u.user = percent_decode(userinfo, backend);
    }
  } else if (rest.find('@') != std::string_view::npos) {
    return fail(
        "an '@' after the host: a user name or password holding '/', '?' or '#' must "
        "percent-encode them (%2F, %3F, %23)");
  }

  // What is left starts with '/' (the path) or '?' (the query), or is empty.
  std::string_view query;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  std::string_view path = rest.empty() ? rest : rest.substr(1);

  std::string_view port_text;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return fail("unterminated [IPv6] host");
    std::string_view address = authority.substr(1, close - 1);
    if (address.empty()) return fail("empty [IPv6] host");
    for (char c : address) {
      if (!(std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.')) {
        return fail("bad [IPv6] host (hex digits, ':' and '.' only)");
      }
    }
    u.host = std::string(address);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return fail("junk after [IPv6] host");
      port_text = after.substr(1);
      has_port = true;
    }
  } else {
    std::string_view host = authority;
    if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
      host = authority.substr(0, colon);
      port_text = authority.substr(colon + 1);
      has_port = true;
    }
    if (host.find_first_of("[]") != std::string_view::npos) {
      return fail("'[' or ']' outside an [IPv6] host");
    }
    u.host = percent_decode(host, backend);
    for (char c : u.host) {
      auto b = static_cast<unsigned char>(c);
      if (b <= 0x20 || b == 0x7f || c == ':' || c == '/' || c == '@') {
        return fail("bad host name (an IPv6 address goes in brackets)");
      }
    }
  }
  if (has_port) {
    const port_number port = parse_port(port_text);
    if (port.result == port_number::status::malformed) return fail("bad port");
    if (port.result == port_number::status::out_of_range || port.value == 0) return fail("port out of range");
    u.port = port.value;
  }
  u.database = percent_decode(path, backend);
  for_each_query_pair(query, [&](std::string_view raw_key, std::string_view raw_value, bool) {
    std::string key = percent_decode(raw_key, backend);
    if (key.empty()) (void)fail("empty parameter name");
    u.params[key] = percent_decode(raw_value, backend);
  });
  return u;
}

}  // namespace kysera::infra::detail
