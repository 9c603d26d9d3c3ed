// ODR check, part 2 (see odr_a.cpp).
#include <kysera/infra.hpp>

#include <string>

namespace infra = kysera::infra;

const std::error_category* odr_category_b() { return &infra::error_category(); }
infra::logger* odr_console_b() { return &infra::console_logger(); }
std::string odr_breaker_state_b() {
  infra::resilience::circuit_breaker breaker;
  return std::string(infra::resilience::to_string(breaker.get_state().state));
}
