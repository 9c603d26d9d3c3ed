#pragma once
/// \file
/// `to_json(health_check_result)`: the one JSON writer for health results (`kysera-check --json`
/// uses it).
///
/// Naming rule for every field: the TypeScript package's name in snake_case (`checkLatency` ->
/// `check_latency`, `poolMetrics.totalConnections` -> `pool_metrics.total_connections`), with the
/// TypeScript unit (milliseconds, no unit suffix in the name). Fields the TypeScript package does
/// not have are named by the same pattern (`max_connections`). Absent optional figures are left
/// out, never written as null.

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "check.hpp"
#include "metrics.hpp"

namespace kysera::infra::health {

namespace detail {

/// Appends `text` as a JSON string literal. Valid UTF-8 passes through; control characters are
/// escaped; bytes that are not valid UTF-8 become U+FFFD, so the output is always valid JSON.
inline void append_json_string(std::string& out, std::string_view text) {
  out += '"';
  std::size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        default:
          if (c < 0x20 || c == 0x7f) {
            char buffer[8];
            std::snprintf(buffer, sizeof buffer, "\\u%04x", static_cast<unsigned>(c));
            out += buffer;
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // A multi-byte sequence: check its length, continuation bytes, overlongs and surrogates.
    std::size_t len = 0;
    std::uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
      cp = c & 0x1Fu;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      cp = c & 0x0Fu;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      cp = c & 0x07u;
    }
    bool valid = len != 0 && i + len <= text.size();
    for (std::size_t k = 1; valid && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(text[i + k]);
      if ((cc & 0xC0u) != 0x80u) valid = false;
      cp = (cp << 6) | (cc & 0x3Fu);
    }
    if (valid) {
      valid = !(len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) &&
              !(len == 4 && (cp < 0x10000 || cp > 0x10FFFF));
    }
    if (valid) {
      out.append(text.data() + i, len);
      i += len;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
}

inline void append_json_count(std::string& out, std::string_view name, std::size_t value,
                              bool comma) {
  if (comma) out += ',';
  append_json_string(out, name);
  out += ':';
  out += std::to_string(value);
}

}  // namespace detail

/// One line of JSON (no trailing newline) for `r`, fields in the TypeScript order:
///
///     {"status":"healthy",
///      "checks":[{"name":"Database Connection","status":"healthy","message":"Connected
///      successfully (0.42 ms)"}], "errors":[], "metrics":{"check_latency":0.42,
///                 "pool_metrics":{"total_connections":2,"active_connections":1,"idle_connections":1,
///                                 "waiting_requests":0,"max_connections":8},
///                 "database_version":"PostgreSQL 15.8 ..."},
///      "timestamp":"2025-01-31T12:00:00.000Z"}
///
/// `check_latency` (ms, 2 decimals), `pool_metrics` and `database_version` appear only when the
/// result has them; `timestamp` is ISO 8601 UTC with milliseconds, like JavaScript's
/// `Date.toJSON()`. Strings are escaped; invalid UTF-8 becomes U+FFFD.
///
///     std::puts(kysera::infra::health::to_json(perform_health_check(db)).c_str());
inline std::string to_json(const health_check_result& r) {
  std::string out;
  out.reserve(256);
  out += "{\"status\":";
  detail::append_json_string(out, to_string(r.status));
  out += ",\"checks\":[";
  for (std::size_t i = 0; i < r.checks.size(); ++i) {
    const health_check& c = r.checks[i];
    if (i) out += ',';
    out += "{\"name\":";
    detail::append_json_string(out, c.name);
    out += ",\"status\":";
    detail::append_json_string(out, to_string(c.status));
    out += ",\"message\":";
    detail::append_json_string(out, c.message);
    out += '}';
  }
  out += "],\"errors\":[";
  for (std::size_t i = 0; i < r.errors.size(); ++i) {
    if (i) out += ',';
    detail::append_json_string(out, r.errors[i]);
  }
  out += "],\"metrics\":{";
  bool comma = false;
  if (r.metrics.check_latency) {
    out += "\"check_latency\":";
    out += detail::format_fixed2(*r.metrics.check_latency);
    comma = true;
  }
  if (r.metrics.pool_metrics) {
    const pool::pool_metrics& p = *r.metrics.pool_metrics;
    if (comma) out += ',';
    out += "\"pool_metrics\":{";
    detail::append_json_count(out, "total_connections", p.total, false);
    detail::append_json_count(out, "active_connections", p.active, true);
    detail::append_json_count(out, "idle_connections", p.idle, true);
    detail::append_json_count(out, "waiting_requests", p.waiting, true);
    detail::append_json_count(out, "max_connections", p.max, true);
    out += '}';
    comma = true;
  }
  if (r.metrics.database_version) {
    if (comma) out += ',';
    out += "\"database_version\":";
    detail::append_json_string(out, *r.metrics.database_version);
  }
  out += "},\"timestamp\":";
  detail::append_json_string(out, detail::iso8601(r.timestamp));
  out += '}';
  return out;
}

}  // namespace kysera::infra::health
