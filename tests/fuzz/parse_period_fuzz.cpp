// Fuzzes health::parse_period. Properties: it returns a positive duration or throws
// std::invalid_argument, nothing else; what it returns, written back as a number and the same
// unit, parses to the same duration.
#include "fuzz_check.hpp"

#include <kysera/infra/health/metrics.hpp>

#include <stdexcept>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  const auto text = kysera::fuzz::as_text(data, size);
  std::chrono::milliseconds period{};
  try {
    period = kysera::infra::health::parse_period(text);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  KYSERA_FUZZ_CHECK(period.count() > 0, std::string(text));
  std::size_t digits = text.find_first_not_of("0123456789");
  KYSERA_FUZZ_CHECK(digits != std::string_view::npos && digits > 0, std::string(text));
  const std::string unit(text.substr(digits));
  const long long per_unit = unit == "ms" ? 1 : unit == "s" ? 1000 : unit == "m" ? 60000
                             : unit == "h" ? 3600000 : 86400000;
  KYSERA_FUZZ_CHECK(period.count() % per_unit == 0, std::string(text));
  const std::string again = std::to_string(period.count() / per_unit) + unit;
  KYSERA_FUZZ_CHECK(kysera::infra::health::parse_period(again) == period, again);
  return 0;
}
