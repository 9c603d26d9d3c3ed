// Fuzzes the MySQL adapter's URL reading. Properties:
//  1. A rejected URL gives errc::invalid_url in a message made of our fixed words; it quotes at
//     most a parameter name made of name characters, never anything else of the input.
//  2. An accepted URL: describe() parses back to the same scheme, user, host, port, database and
//     socket, without a password; and redacting a text that holds the password removes it.
#include "fuzz_check.hpp"

#include <kysera/infra/adapters/mysql/connection_string.hpp>

#include <array>
#include <string>
#include <string_view>

namespace my = kysera::infra::mysql;
using kysera::fuzz::as_text;

namespace {

constexpr std::string_view templates[] = {
    "contains a NUL byte",
    "expected scheme://",
    "a fragment (\"#\") is not allowed; write '#' in a password as %N",
    "an '@' after the host: a user name or password holding '/', '?' or '#' must percent-encode "
    "them (%NF, %NF, %N)",
    "unterminated [IPvN] host",
    "empty [IPvN] host",
    "bad [IPvN] host (hex digits, ':' and '.' only)",
    "junk after [IPvN] host",
    "'[' or ']' outside an [IPvN] host",
    "bad host name (an IPvN address goes in brackets)",
    "bad port",
    "port out of range",
    "empty parameter name",
    "truncated %-escape",
    "bad %-escape",
    "scheme must be mysql:// or mariadb://",
    "a %-escape decodes to a NUL byte",
    "the path must be one database name",
    "parameter connect_timeout must be a whole number of seconds (\"N\", \"Ns\") or milliseconds "
    "(\"Nms\")",
    "parameter read_timeout must be a whole number of seconds (\"N\", \"Ns\") or milliseconds "
    "(\"Nms\")",
    "parameter write_timeout must be a whole number of seconds (\"N\", \"Ns\") or milliseconds "
    "(\"Nms\")",
    "parameter cancel_timeout must be a whole number of seconds (\"N\", \"Ns\") or milliseconds "
    "(\"Nms\")",
    "unknown parameter (supported: connect_timeout, read_timeout, write_timeout, cancel_timeout, "
    "ssl-mode, ssl-ca, ssl-cert, ssl-key, socket)",
    "unknown parameter 'P' (supported: connect_timeout, read_timeout, write_timeout, "
    "cancel_timeout, ssl-mode, ssl-ca, ssl-cert, ssl-key, socket)",
    "parameter ssl-mode must be disabled, preferred, required, verify_ca or verify_identity",
    "a socket connection takes the host localhost (or none) and no port",
    "mysql::connection_options::ssl_cert and ssl_key must be given together",
    "mysql::connection_options::ssl_ca is needed for ssl_mode verify_ca and verify_identity",
    "mysql::connection_options::ssl_mode disabled contradicts ssl_ca, ssl_cert and ssl_key",
    "mysql::connection_options::connect_timeout must be positive and at most one year",
    "mysql::connection_options::cancel_timeout must be positive and at most one year",
    "mysql::connection_options::read_timeout must be between N and one year",
    "mysql::connection_options::write_timeout must be between N and one year",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const std::string_view text = as_text(data, size);
  my::connection_options options;
  my::detail::mysql_target t;
  try {
    t = my::detail::parse_mysql_url(text, options);
  } catch (const kysera::infra::database_error& e) {
    std::string message = e.what();
    KYSERA_FUZZ_CHECK(e.condition() == kysera::infra::errc::invalid_url, message);
    if (auto q = message.find("unknown parameter '"); q != std::string::npos) {
      auto begin = q + 19;
      auto end = message.find('\'', begin);
      KYSERA_FUZZ_CHECK(end != std::string::npos &&
                            my::detail::quotable_name(message.substr(begin, end - begin)),
                        message);
      message.replace(begin, end - begin, "P");
    }
    KYSERA_FUZZ_CHECK(
        kysera::fuzz::matches_a_template(message, "invalid connection URL: ", templates), message);
    return 0;
  }
  const std::string described = my::detail::describe(t);
  my::connection_options again;
  my::detail::mysql_target back;
  try {
    back = my::detail::parse_mysql_url(described, again);
  } catch (const kysera::infra::database_error& e) {
    KYSERA_FUZZ_CHECK(false, described + " -> " + e.what());
  }
  KYSERA_FUZZ_CHECK(back.scheme == t.scheme && back.user == t.user && back.host == t.host &&
                        back.port == t.port && back.schema == t.schema && back.socket == t.socket &&
                        back.password.empty(),
                    described);
  if (!t.password.empty() && t.password.find('*') == std::string::npos) {
    std::string masked = kysera::infra::detail::redact("x " + t.password + " y", t.secrets);
    KYSERA_FUZZ_CHECK(masked.find(t.password) == std::string::npos, "password survived");
  }
  return 0;
}
