// Fuzzes the PostgreSQL adapter's reading of connection strings. Properties:
//  1. Only errc::invalid_url comes out of a rejected string, in a message made of our fixed words
//     (and numbers, and a scheme name): the input, which may hold a password, is never quoted.
//  2. An accepted string: what the adapter hands libpq is, in libpq's own reading, exactly the
//     user's keywords and values plus connect_timeout and application_name where unset.
//  3. Every password libpq reads is among the secrets: redacting a text that holds it removes it.
//  4. describe() is a URI that libpq reads back as the same user, hosts, ports and dbname.
#include "fuzz_check.hpp"

#include <kysera/infra/adapters/postgres/connection_string.hpp>

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace detail = kysera::infra::postgres::detail;
using kysera::fuzz::as_text;

namespace {

constexpr std::string_view templates[] = {
    "contains a NUL byte",
    "missing \"=\" after the word at byte N (a value with spaces must be in single quotes)",
    "missing \"=\" after the word at byte N (a value with spaces must be in single quotes); the "
    "text does not start with postgres:// or postgresql://, so it is read as libpq keyword=value "
    "conninfo",
    "unterminated quoted value starting at byte N",
    "empty keyword before the \"=\" at byte N",
    "malformed keyword at byte N (keywords are letters, digits and \"_\"; a value with spaces must "
    "be in single quotes)",
    "unknown keyword at byte N (not a libpq connection option)",
    "libpq cannot parse it",
    "empty [IPvN] host \"[]\"",
    "unterminated [IPvN] host",
    "unexpected character after a host (expected \":\" or \"/\")",
    "a query parameter has more than one \"=\"",
    "query parameter without \"=\"",
    "unknown query parameter (not a libpq connection option)",
    "bad %-escape",
    "a %-escape decodes to a NUL byte",
    "libpq cannot parse the URI",
    "bad port",
    "port out of range",
    "empty port after \":\"",
    "unsupported scheme \"S\" (expected postgres:// or postgresql://)",
    "out of memory while parsing the connection string",
};

std::vector<std::string> split(const std::string& list) { return detail::split_list(list); }

/// Hosts and ports as libpq pairs them: one port for every host, or one port each.
bool same_target(const detail::conninfo& a, const detail::conninfo& b) {
  auto hosts = [](const detail::conninfo& c) {
    return split(c.has("host") ? c.value("host") : c.value("hostaddr"));
  };
  auto ports = [&](const detail::conninfo& c) {
    auto p = split(c.value("port"));
    auto h = hosts(c);
    if (p.size() == 1 && h.size() > 1) p.resize(h.size(), p.front());
    if (p.empty()) p.resize(h.size());
    return p;
  };
  return a.value("user") == b.value("user") && a.value("dbname") == b.value("dbname") &&
         hosts(a) == hosts(b) && ports(a) == ports(b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string_view text = as_text(data, size);
  detail::conninfo c;
  try {
    c = detail::parse_connection_string(text);
  } catch (const kysera::infra::database_error& e) {
    std::string message = e.what();
    KYSERA_FUZZ_CHECK(e.condition() == kysera::infra::errc::invalid_url ||
                          message.find("out of memory") != std::string::npos,
                      message);
    // Only the scheme of an unsupported scheme:// prefix may be repeated; it holds no secret.
    if (auto q = message.find("unsupported scheme \""); q != std::string::npos) {
      auto begin = q + 20;
      auto end = message.find('"', begin);
      KYSERA_FUZZ_CHECK(end != std::string::npos &&
                            text.substr(0, end - begin + 3) == message.substr(begin, end - begin) + "://",
                        message);
      message.replace(begin, end - begin, "S");
    }
    KYSERA_FUZZ_CHECK(kysera::fuzz::matches_a_template(
                          message, "postgres: invalid connection string: ", templates) ||
                          kysera::fuzz::matches_a_template(message, "postgres: ", templates),
                      message);
    return 0;
  }

  // 2. Our additions never change the user's reading.
  const std::string handed = detail::with_defaults(c, 7, "kysera-infra");
  const auto reread = detail::parse_connection_string(handed);
  auto expected = c.params;
  if (!c.has("connect_timeout")) expected.emplace_back("connect_timeout", "7");
  if (!c.has("application_name")) expected.emplace_back("application_name", "kysera-infra");
  KYSERA_FUZZ_CHECK(reread.params.size() == expected.size(), handed);
  for (const auto& [key, value] : expected) {
    const std::string* got = reread.get(key);
    KYSERA_FUZZ_CHECK(got != nullptr && *got == value, key);
  }

  // 3. Every password libpq reads is redacted.
  for (const auto& [key, value] : c.params) {
    if (key.find("password") == std::string::npos || value.empty()) continue;
    if (value.find('*') != std::string::npos) continue;  // "***" itself could spell it
    std::string masked = kysera::infra::detail::redact("before " + value + " after", c.secrets);
    KYSERA_FUZZ_CHECK(masked.find(value) == std::string::npos, key);
  }

  // 4. The description reads back as the same target. Lists libpq would refuse at connect (port
  // count not matching the host count) and empty host entries have no URI form.
  const auto hosts = split(c.has("host") ? c.value("host") : c.value("hostaddr"));
  const auto ports = split(c.value("port"));
  bool describable = ports.size() <= 1 || ports.size() == hosts.size();
  for (const auto& h : hosts) describable = describable && !h.empty();
  if (hosts.empty() && !ports.empty()) describable = false;
  if (describable) {
    const std::string described = detail::describe(c);
    detail::conninfo back;
    try {
      back = detail::parse_connection_string(described);
    } catch (const kysera::infra::database_error& e) {
      KYSERA_FUZZ_CHECK(false, described + " -> " + e.what());
    }
    KYSERA_FUZZ_CHECK(same_target(c, back), described);
    KYSERA_FUZZ_CHECK(!back.has("password"), described);
  }
  return 0;
}
