#pragma once
/// \file
/// One reading of a decimal port number, for every place that parses one (URLs, libpq
/// keyword/value strings, server-reported client addresses, listen addresses).

#include <cstdint>
#include <string_view>

namespace kysera::infra::detail {

/// What `parse_port` found. A value type.
struct port_number {
  enum class status { ok, malformed, out_of_range };
  status result = status::malformed;
  std::uint16_t value = 0;  ///< set when `result` is ok (0 included: callers decide about it)
};

/// Reads `text` as a port: one to five ASCII digits (malformed otherwise: empty, a sign, a
/// space, a sixth digit), at most 65535 (out_of_range otherwise).
///
///     parse_port("5432").value == 5432;  parse_port("70000").result == port_number::status::out_of_range
constexpr port_number parse_port(std::string_view text) noexcept {
  if (text.empty() || text.size() > 5) return {};
  std::uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return {};
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (value > 65535) return {port_number::status::out_of_range, 0};
  return {port_number::status::ok, static_cast<std::uint16_t>(value)};
}

}  // namespace kysera::infra::detail
