#pragma once
/// \file
/// What a health check reports: `health_status`, `health_check`, `health_metrics`,
/// `health_check_result`, and the options of `perform_health_check`. Value types.

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "../detail/format.hpp"
#include "../logger.hpp"
#include "../pool/metrics.hpp"

namespace kysera::infra::health {

/// The outcome of a health check, from best to worst.
enum class health_status { healthy, degraded, unhealthy };

/// "healthy", "degraded" or "unhealthy".
constexpr std::string_view to_string(health_status status) noexcept {
  switch (status) {
    case health_status::healthy: return "healthy";
    case health_status::degraded: return "degraded";
    case health_status::unhealthy: return "unhealthy";
  }
  return "unknown";
}

/// One named check inside a result (today always "Database Connection").
struct health_check {
  std::string name{};
  health_status status = health_status::unhealthy;
  std::string message{};
};

/// Figures gathered by a check.
struct health_metrics {
  std::optional<double> check_latency{};            ///< ms, 2 decimals; absent on failure
  std::optional<pool::pool_metrics> pool_metrics{}; ///< when a pool was given (success and failure)
  std::optional<std::string> database_version{};    ///< verbose checks of databases that can tell
};

/// What a health check found. A value type.
struct health_check_result {
  health_status status = health_status::unhealthy;
  std::vector<health_check> checks{};
  std::vector<std::string> errors{};///< the failure message on failure, else empty
  health_metrics metrics{};
  std::chrono::system_clock::time_point timestamp{};///< when the check finished (wall clock)
};

/// Options of `perform_health_check`. Invalid values throw `std::invalid_argument` naming the field.
struct health_check_options {
  std::optional<pool::metrics_pool> pool{};  ///< pool metrics to add to the result
  bool verbose = false;                     ///< also ask the server for its version
  infra::logger* logger = nullptr;          ///< null: `default_logger()`
  std::chrono::milliseconds timeout{5000};  ///< > 0; the check returns by then (plus scheduling);
                                            ///< huge values (milliseconds::max()) mean no limit
  std::chrono::milliseconds degraded_threshold{100};   ///< >= 0; latency from here on: degraded
  std::chrono::milliseconds unhealthy_threshold{500};  ///< >= degraded_threshold; from here: unhealthy
};

/// The latency class: healthy below `degraded`, degraded below `unhealthy`, else unhealthy.
///
///     classify_latency(99.99, 100ms, 500ms) == health_status::healthy
constexpr health_status classify_latency(double latency_ms, std::chrono::milliseconds degraded,
                                         std::chrono::milliseconds unhealthy) noexcept {
  if (latency_ms < static_cast<double>(degraded.count())) return health_status::healthy;
  if (latency_ms < static_cast<double>(unhealthy.count())) return health_status::degraded;
  return health_status::unhealthy;
}
namespace detail {

using infra::detail::format_fixed2;
using infra::detail::round2;

inline constexpr std::string_view check_name = "Database Connection";

inline void validate(const health_check_options& o) {
  if (o.timeout <= std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("kysera::infra::health: timeout must be greater than zero");
  }
  if (o.degraded_threshold < std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("kysera::infra::health: degraded_threshold must not be negative");
  }
  if (o.unhealthy_threshold < o.degraded_threshold) {
    throw std::invalid_argument(
        "kysera::infra::health: unhealthy_threshold must not be below degraded_threshold");
  }
}
}  // namespace detail

}  // namespace kysera::infra::health
