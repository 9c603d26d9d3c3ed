#pragma once
/// \file
/// Number formatting shared by the modules: 2-decimal rounding and fixed-point text.

#include <charconv>
#include <cmath>
#include <string>
#include <system_error>

namespace kysera::infra::detail {

/// Rounds to 2 decimals, halves away from zero (like JavaScript's Math.round for positives).
inline double round2(double value) noexcept { return std::round(value * 100.0) / 100.0; }

/// "12.34" for 12.34.
inline std::string format_fixed2(double value) {
  char buffer[64];
  auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::fixed, 2);
  if (ec != std::errc()) return "?";
  return std::string(buffer, end);
}

}  // namespace kysera::infra::detail
