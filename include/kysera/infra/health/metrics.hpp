#pragma once
/// \file
/// `get_metrics`: query statistics from a `with_debug` wrapper, pool figures, recommendations.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "../detail/format.hpp"
#include "../detail/time.hpp"
#include "../metrics/query_metrics.hpp"
#include "../metrics/query_stats.hpp"
#include "../pool/metrics.hpp"
#include "debug.hpp"
#include "result.hpp"

namespace kysera::infra::health {

using metrics::query_stats;

/// Options of `get_metrics`. Invalid values throw `std::invalid_argument` naming the field.
struct get_metrics_options {
  /// The window of entries to consider, counted back from now: a positive whole number and a
  /// unit, one of "ms", "s", "m", "h", "d" ("500ms", "30s", "5m", "1h", "1d").
  std::string period = "1h";
  std::optional<pool::metrics_pool> pool{};  ///< adds `connections` (and its recommendation)
  std::chrono::milliseconds slow_query_threshold{100};  ///< >= 0; slow means strictly above it
  /// The latest health check, e.g. `monitor.get_last_check()`. An unhealthy one means a busy
  /// pool is waiting for the database: the pool advice then names the database instead.
  std::optional<health_check_result> health_check{};
};

/// What a recommendation is about; stable names for alerting and dashboards.
enum class recommendation_code {
  slow_queries,           ///< more than 10 % of the queries were slow
  slow_average,           ///< the average duration is above half the slow-query threshold
  pool_utilization_high,  ///< active/total above 80 %, and the database answers: the pool is small
  database_bottleneck,    ///< active/total above 80 % while the database times out or is unhealthy
};

/// "slow_queries", "slow_average", "pool_utilization_high", "database_bottleneck".
constexpr std::string_view to_string(recommendation_code code) noexcept {
  switch (code) {
    case recommendation_code::slow_queries: return "slow_queries";
    case recommendation_code::slow_average: return "slow_average";
    case recommendation_code::pool_utilization_high: return "pool_utilization_high";
    case recommendation_code::database_bottleneck: return "database_bottleneck";
  }
  return "unknown";
}

/// One recommendation: a machine-readable code and the text also found in `recommendations`.
struct recommendation {
  recommendation_code code = recommendation_code::slow_queries;
  std::string message{};
  friend bool operator==(const recommendation&, const recommendation&) = default;
};

/// Pool figures in `metrics_result`: the pool's own `pool_metrics` (`total`, `idle`, `active`,
/// `waiting`, and `max`, the configured maximum), under the name API.md gives them here.
using connection_stats = pool::pool_metrics;

/// What `get_metrics` reports. A value type.
struct metrics_result {
  std::string period;     ///< the requested period, as given
  std::string timestamp;  ///< ISO 8601 UTC with milliseconds, e.g. "2025-01-31T12:00:00.000Z"
  std::optional<connection_stats> connections;  ///< when a pool was given
  std::optional<query_stats> queries;           ///< statements; absent when none falls in the period
  std::vector<std::string> recommendations;  ///< the texts, in the order of `recommendation_details`
  /// Every recommendation with its code, in the same order as `recommendations`.
  std::vector<recommendation> recommendation_details;
  /// Whole `transaction(fn)` calls (BEGIN to COMMIT/ROLLBACK), apart from their statements, which
  /// `queries` counts; absent when none falls in the period.
  std::optional<query_stats> transactions;
};

/// Parses a period such as "30s", "5m", "1h", "1d" or "500ms"; throws `std::invalid_argument`
/// naming `period` for anything else (empty, no unit, zero, negative, fractions, spaces).
///
///     parse_period("5m") == std::chrono::minutes(5)
inline std::chrono::milliseconds parse_period(std::string_view text) {
  auto fail = [&](const char* why) -> std::chrono::milliseconds {
    throw std::invalid_argument("kysera::infra::health: period \"" + std::string(text) + "\" is invalid (" +
                                why + "); expected a positive whole number and ms, s, m, h or d, e.g. \"1h\"");
  };
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0) return fail("no number");
  if (digits > 18) return fail("number too large");
  std::int64_t value = 0;
  for (std::size_t i = 0; i < digits; ++i) value = value * 10 + (text[i] - '0');
  const std::string_view unit = text.substr(digits);
  std::int64_t unit_ms = 0;
  if (unit == "ms") {
    unit_ms = 1;
  } else if (unit == "s") {
    unit_ms = 1000;
  } else if (unit == "m") {
    unit_ms = 60'000;
  } else if (unit == "h") {
    unit_ms = 3'600'000;
  } else if (unit == "d") {
    unit_ms = 86'400'000;
  } else {
    return fail(unit.empty() ? "no unit" : "unknown unit");
  }
  if (value == 0) return fail("zero");
  if (value > std::numeric_limits<std::int64_t>::max() / unit_ms) return fail("number too large");
  return std::chrono::milliseconds(value * unit_ms);
}

namespace detail {

/// Like JavaScript's Date.prototype.toISOString.
inline std::string iso8601(std::chrono::system_clock::time_point tp) {
  using namespace std::chrono;
  const auto ms = floor<milliseconds>(tp);
  const auto day = floor<days>(ms);
  const year_month_day ymd{day};
  const hh_mm_ss<milliseconds> hms{ms - day};
  char buffer[48];
  int n = std::snprintf(buffer, sizeof buffer, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                        static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                        static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                        static_cast<int>(hms.seconds().count()), static_cast<int>(hms.subseconds().count()));
  return std::string(buffer, n > 0 ? static_cast<std::size_t>(n) : 0);
}

inline void recommend(metrics_result& r, recommendation_code code, std::string message) {
  r.recommendations.push_back(message);
  r.recommendation_details.push_back(recommendation{code, std::move(message)});
}

/// The earliest time point inside a window of length `period` ending at `now`; saturates at
/// `time_point::min()` (a period longer than the clock can count covers everything).
template <class Clock>
typename Clock::time_point window_start(typename Clock::time_point now, std::chrono::milliseconds period) {
  return infra::detail::saturating_sub(now, period);
}

}  // namespace detail

/// Statistics of the queries `db` recorded within `options.period` (entries that ended at or
/// after now - period), the pool's figures, and recommendations:
///  1. more than 10 % of the queries slow;
///  2. average duration above half the slow-query threshold;
///  3. pool utilisation active/total above 80 % (not given for a pool with total 0): advice to
///     grow the pool (`pool_utilization_high`), unless in the period a query failed because the
///     database did not answer in time or dropped, refused or locked it (timeout,
///     connection_lost, connection_refused, too_many_connections, lock_timeout, busy, cancelled)
///     or `options.health_check` is unhealthy: then the waits are the database's, and the advice
///     says so instead (`database_bottleneck`).
/// Each recommendation has a code (`recommendation_details`).
/// Does not compile for a database without metrics (see `database_with_metrics`). Invalid
/// options throw `std::invalid_argument` naming the field; a failing pool's exception propagates.
///
///     auto dbg = with_debug(db);
///     ...
///     auto m = get_metrics(dbg, {.period = "5m", .slow_query_threshold = 50ms});
///     if (m.queries) std::cout << m.queries->p95_duration << " ms\n";
template <database_with_metrics Db>
metrics_result get_metrics(const Db& db, const get_metrics_options& options = {}) {
  const std::chrono::milliseconds period = parse_period(options.period);
  if (options.slow_query_threshold < std::chrono::milliseconds::zero()) {
    throw std::invalid_argument("kysera::infra::health: slow_query_threshold must not be negative");
  }
  using clock = typename Db::clock;
  const auto since = detail::window_start<clock>(clock::now(), period);

  metrics_result result;
  result.period = options.period;
  result.timestamp = detail::iso8601(std::chrono::system_clock::now());

  if (options.pool) {
    result.connections = options.pool->get_metrics();
  }

  // Whole transactions are reported apart: counting them with their own statements would count
  // the same work twice.
  period_durations entries;
  if constexpr (requires { { db.query_durations(since) } -> std::same_as<period_durations>; }) {
    entries = db.query_durations(since);
  } else if constexpr (requires { { db.query_samples(since) } -> std::same_as<std::vector<query_sample>>; }) {
    for (const auto& q : db.query_samples(since)) entries.add(q);
  } else {
    for (const auto& m : db.query_metrics()) {
      if (m.timestamp >= since) entries.add(m.duration, m.failed, m.transaction, m.error);
    }
  }

  const double threshold = static_cast<double>(options.slow_query_threshold.count());
  if (!entries.transactions.ms.empty()) {
    double unused = 0.0;
    result.transactions = metrics::detail::compute_query_stats(entries.transactions, threshold, unused);
  }
  if (!entries.statements.ms.empty()) {
    double avg = 0.0;
    result.queries = metrics::detail::compute_query_stats(entries.statements, threshold, avg);
    const query_stats& q = *result.queries;
    if (q.slow_count * 10 > q.total) {
      detail::recommend(result, recommendation_code::slow_queries,
                        "High number of slow queries detected (" + std::to_string(q.slow_count) + "/" +
                            std::to_string(q.total) + "). Consider query optimization or indexing.");
    }
    if (avg > threshold * 0.5) {
      detail::recommend(result, recommendation_code::slow_average,
                        "Average query duration (" + infra::detail::format_fixed2(avg) +
                            " ms) is approaching the slow query threshold (" +
                            std::to_string(options.slow_query_threshold.count()) + " ms). Monitor performance closely.");
    }
  }
  if (result.connections && result.connections->total > 0) {
    const auto& c = *result.connections;
    if (c.active * 10 > c.total * 8) {
      char percent[32];
      std::snprintf(percent, sizeof percent, "%.1f",
                    100.0 * static_cast<double>(c.active) / static_cast<double>(c.total));
      const std::size_t waits = entries.statements.database_waits + entries.transactions.database_waits;
      const bool unhealthy = options.health_check && options.health_check->status == health_status::unhealthy;
      if (waits == 0 && !unhealthy) {
        detail::recommend(result, recommendation_code::pool_utilization_high,
                          std::string("Connection pool utilization is high (") + percent +
                              "%). Consider increasing the pool size.");
      } else {
        std::string why;
        if (waits > 0) {
          why = std::to_string(waits) + (waits == 1 ? " query" : " queries") +
                " timed out or lost the database in this period";
        }
        if (unhealthy) why += std::string(why.empty() ? "" : " and ") + "the last health check was unhealthy";
        detail::recommend(result, recommendation_code::database_bottleneck,
                          std::string("Connection pool utilization is high (") + percent + "%), but " + why +
                              ": the connections are waiting for the database. Investigate the database; a "
                              "larger pool would not help.");
      }
    }
  }
  return result;
}

}  // namespace kysera::infra::health
