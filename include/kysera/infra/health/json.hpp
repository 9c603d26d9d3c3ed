#pragma once
/// \file
/// `to_json(health_check_result)`: the one JSON writer for health results, in the
/// `application/health+json` shape (`kysera-check --json` and the HTTP endpoint's `/healthz` use it).
///
/// Naming rule for our own fields (beside the health+json ones): the TypeScript package's name in snake_case (`checkLatency` ->
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

/// `pass`, `warn`, `fail`: the `application/health+json` name of `s`.
constexpr std::string_view to_health_json_status(health_status s) noexcept {
  switch (s) {
    case health_status::healthy:
      return "pass";
    case health_status::degraded:
      return "warn";
    case health_status::unhealthy:
      break;
  }
  return "fail";
}

/// The media type `to_json` writes, for a `Content-Type` header.
inline constexpr std::string_view health_json_media_type = "application/health+json";

/// One line of JSON (no trailing newline) for `r`, in the `application/health+json` shape
/// (draft-inadarei-api-health-check) followed by our own fields:
///
///     {"status":"pass",
///      "checks":{"database:responseTime":[{"componentId":"Database Connection",
///                 "componentType":"datastore","status":"pass","observedValue":0.42,
///                 "observedUnit":"ms","time":"2025-01-31T12:00:00.000Z"}],
///                "pool:connections":[{"componentType":"component","observedValue":2,
///                 "observedUnit":"connections","time":"2025-01-31T12:00:00.000Z"}]},
///      "errors":[],
///      "metrics":{"check_latency":0.42,
///                 "pool_metrics":{"total_connections":2,"active_connections":1,"idle_connections":1,
///                                 "waiting_requests":0,"max_connections":8},
///                 "database_version":"PostgreSQL 15.8 ..."},
///      "timestamp":"2025-01-31T12:00:00.000Z"}
///
/// - `status`: healthy -> `pass`, degraded -> `warn`, unhealthy -> `fail`. A failed result adds
///   `output` (its first error) after it.
/// - `checks`: one entry per `health_check`; the library's own database check is keyed
///   `database:responseTime` and carries the latency (ms) as `observedValue`; any other check is
///   keyed by its name. Each entry has `output` (the check's message) unless it passed. The pool,
///   when the result has its metrics, is `pool:connections` (observedValue: open connections),
///   an observation with no status of its own.
/// - Our fields, named after the TypeScript package's in snake_case: `errors` (always present),
///   `metrics` (`check_latency` in ms with 2 decimals, `pool_metrics`, `database_version`, each
///   only when the result has it) and `timestamp` (ISO 8601 UTC with milliseconds, like
///   JavaScript's `Date.toJSON()`; `time` in the checks is the same instant).
/// Absent figures are left out, never written as null. Strings are escaped; bytes that are not
/// valid UTF-8 become U+FFFD, so the output always parses.
///
///     std::puts(kysera::infra::health::to_json(perform_health_check(db)).c_str());
inline std::string to_json(const health_check_result& r) {
  std::string out;
  out.reserve(512);
  const std::string time = detail::iso8601(r.timestamp);
  out += "{\"status\":";
  detail::append_json_string(out, to_health_json_status(r.status));
  if (r.status == health_status::unhealthy && !r.errors.empty()) {
    out += ",\"output\":";
    detail::append_json_string(out, r.errors.front());
  }
  out += ",\"checks\":{";
  bool first_key = true;
  // Checks that share a key go into one array (JSON objects must not repeat a key).
  auto key_of = [](const health_check& c) -> std::string_view {
    return c.name == detail::check_name ? std::string_view("database:responseTime") : std::string_view(c.name);
  };
  for (std::size_t i = 0; i < r.checks.size(); ++i) {
    const std::string_view key = key_of(r.checks[i]);
    bool seen = false;
    for (std::size_t k = 0; k < i && !seen; ++k) seen = key_of(r.checks[k]) == key;
    if (seen) continue;
    if (!first_key) out += ',';
    first_key = false;
    detail::append_json_string(out, key);
    out += ":[";
    bool first_entry = true;
    for (std::size_t k = i; k < r.checks.size(); ++k) {
      const health_check& c = r.checks[k];
      if (key_of(c) != key) continue;
      const bool own = c.name == detail::check_name;
      if (!first_entry) out += ',';
      first_entry = false;
      out += "{\"componentId\":";
      detail::append_json_string(out, c.name);
      if (own) out += ",\"componentType\":\"datastore\"";
      out += ",\"status\":";
      detail::append_json_string(out, to_health_json_status(c.status));
      if (own && r.metrics.check_latency) {
        out += ",\"observedValue\":";
        out += detail::format_fixed2(*r.metrics.check_latency);
        out += ",\"observedUnit\":\"ms\"";
      }
      if (c.status != health_status::healthy) {
        out += ",\"output\":";
        detail::append_json_string(out, c.message);
      }
      out += ",\"time\":";
      detail::append_json_string(out, time);
      out += '}';
    }
    out += ']';
  }
  if (r.metrics.pool_metrics) {
    if (!first_key) out += ',';
    out += "\"pool:connections\":[{\"componentType\":\"component\",\"observedValue\":";
    out += std::to_string(r.metrics.pool_metrics->total);
    out += ",\"observedUnit\":\"connections\",\"time\":";
    detail::append_json_string(out, time);
    out += "}]";
  }
  out += "},\"errors\":[";
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
  detail::append_json_string(out, time);
  out += '}';
  return out;
}

}  // namespace kysera::infra::health
