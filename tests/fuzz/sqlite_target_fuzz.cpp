// Fuzzes the SQLite adapter's connection-string reading. Properties: a rejected string gives
// errc::invalid_url; an accepted one is described in a form that reads back as the same target.
#include "fuzz_check.hpp"

#include <kysera/infra/adapters/sqlite/connection_string.hpp>

#include <string>

namespace sq = kysera::infra::sqlite::detail;

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  sq::open_target t;
  try {
    t = sq::parse_target(kysera::fuzz::as_text(data, size));
  } catch (const kysera::infra::database_error& e) {
    KYSERA_FUZZ_CHECK(e.condition() == kysera::infra::errc::invalid_url, e.what());
    return 0;
  }
  for (bool read_only : {false, true}) {
    const std::string described = sq::describe(t, read_only);
    sq::open_target back;
    try {
      back = sq::parse_target(described);
    } catch (const kysera::infra::database_error& e) {
      KYSERA_FUZZ_CHECK(false, described + " -> " + e.what());
    }
    KYSERA_FUZZ_CHECK(back.filename == t.filename && back.memory == t.memory && back.uri == t.uri,
                      described);
    if (read_only && !t.uri) KYSERA_FUZZ_CHECK(back.mode == "ro", described);
  }
  return 0;
}
