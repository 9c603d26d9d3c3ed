// detail::parse_port: the one reading of a port number that URLs, libpq strings, server-reported
// client addresses and listen addresses share.
#include "support/catch.hpp"

#include <kysera/infra/detail/port.hpp>

using kysera::infra::detail::parse_port;
using status = kysera::infra::detail::port_number::status;

TEST_CASE("parse_port reads one to five digits up to 65535", "[core][port]") {
  CHECK(parse_port("5432").result == status::ok);
  CHECK(parse_port("5432").value == 5432);
  CHECK(parse_port("65535").value == 65535);
  CHECK(parse_port("0").result == status::ok);  // callers that need a real port reject 0
  CHECK(parse_port("00080").value == 80);
}

TEST_CASE("parse_port rejects what is not a port", "[core][port]") {
  for (const char* text : {"", "-1", "+1", " 1", "1 ", "12a", "0x10", "123456", "1.5"}) {
    INFO(text);
    CHECK(parse_port(text).result == status::malformed);
  }
  CHECK(parse_port("65536").result == status::out_of_range);
  CHECK(parse_port("99999").result == status::out_of_range);
}

static_assert(parse_port("3306").value == 3306, "usable in constant expressions");
