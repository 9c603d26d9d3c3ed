// ODR check, part 1: this file and odr_b.cpp both include everything and use inline functions,
// templates and function-local statics; linking them into one program must succeed and they
// must share one instance of each singleton.
#include <kysera/infra.hpp>

#include "support/catch.hpp"

namespace infra = kysera::infra;

const std::error_category* odr_category_b();
infra::logger* odr_console_b();
std::string odr_breaker_state_b();

TEST_CASE("two translation units including everything link into one program", "[package]") {
  CHECK(&infra::error_category() == odr_category_b());
  CHECK(&infra::console_logger() == odr_console_b());
  CHECK(odr_breaker_state_b() == std::string(infra::resilience::to_string(infra::resilience::circuit_state::closed)));
}
