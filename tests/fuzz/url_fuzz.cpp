// Fuzzes the shared URL helpers. Properties: percent_decode(percent_encode(x)) == x for any
// bytes; percent_encode's output is made of unreserved characters and escapes only; parse_url
// and percent_decode throw nothing but database_error(errc::invalid_url).
#include "fuzz_check.hpp"

#include <kysera/infra/detail/url.hpp>

#include <string>

namespace d = kysera::infra::detail;

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const auto text = kysera::fuzz::as_text(data, size);
  const std::string encoded = d::percent_encode(text);
  for (char c : encoded) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '%';
    KYSERA_FUZZ_CHECK(ok, encoded);
  }
  KYSERA_FUZZ_CHECK(d::percent_decode(encoded, "fuzz") == text, encoded);
  try {
    (void)d::percent_decode(text, "fuzz");
  } catch (const kysera::infra::database_error& e) {
    KYSERA_FUZZ_CHECK(e.condition() == kysera::infra::errc::invalid_url, e.what());
  }
  try {
    auto u = d::parse_url(text, "fuzz");
    KYSERA_FUZZ_CHECK(!u.scheme.empty(), "empty scheme accepted");
    KYSERA_FUZZ_CHECK(d::percent_decode(u.raw_password, "fuzz") == u.password, "raw password");
  } catch (const kysera::infra::database_error& e) {
    KYSERA_FUZZ_CHECK(e.condition() == kysera::infra::errc::invalid_url, e.what());
  }
  return 0;
}
