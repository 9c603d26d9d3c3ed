// ODR check, part 2 (see odr_a.cpp).
#include <kysera/infra.hpp>

#include <chrono>
#include <string>

namespace infra = kysera::infra;

const std::error_category* odr_category_b() { return &infra::error_category(); }
infra::logger* odr_console_b() { return &infra::console_logger(); }
std::string odr_breaker_state_b() {
  infra::resilience::circuit_breaker breaker;
  return std::string(infra::resilience::to_string(breaker.get_state().state));
}

// Every module's names through the umbrella namespace, and every options struct through
// designated initialisers (which GCC's -Wextra checks for fields without initialisers).
namespace {
using namespace std::chrono_literals;
[[maybe_unused]] void designated_initialisers_compile() {
  [[maybe_unused]] infra::retry_options retry{.max_attempts = 5};
  [[maybe_unused]] infra::transaction_retry_options tx{.max_attempts = 2};
  [[maybe_unused]] infra::circuit_breaker_options breaker{.threshold = 3};
  [[maybe_unused]] infra::pool_options pool{.max_size = 4};
  [[maybe_unused]] infra::health_check_options check{.verbose = true};
  [[maybe_unused]] infra::health_monitor_options monitor{.interval = 1s};
  [[maybe_unused]] infra::debug_options debug{.max_metrics = 10};
  [[maybe_unused]] infra::get_metrics_options metrics{.period = "5m"};
  [[maybe_unused]] infra::shutdown_options shutdown{.timeout = 5s};
  [[maybe_unused]] infra::register_shutdown_options signals{.timeout = 5s};
  [[maybe_unused]] infra::health_check_result result{.status = infra::health_status::healthy};
  [[maybe_unused]] infra::circuit_breaker_state state{.failures = 1};
  static_assert(infra::to_string(infra::health_status::degraded) == "degraded");
  static_assert(infra::to_string(infra::circuit_state::half_open) == "half-open");
  static_assert(infra::to_string(infra::errc::timeout) == "timeout");
}
}  // namespace
