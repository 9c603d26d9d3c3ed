#pragma once
/// \file
/// `query_stats`: count, mean, extremes and exact nearest-rank percentiles of a period's query
/// durations, as `get_metrics` reports them. Value type and pure functions.

#include <algorithm>
#include <cstddef>
#include <vector>

#include "../detail/format.hpp"
#include "query_sample.hpp"

namespace kysera::infra::metrics {

/// Query (or transaction) figures over the period, failed ones included. Durations are ms,
/// rounded to 2 decimals; percentiles are nearest-rank.
struct query_stats {
  std::size_t total = 0;
  double avg_duration = 0.0;
  double min_duration = 0.0;
  double max_duration = 0.0;
  double p95_duration = 0.0;
  double p99_duration = 0.0;
  std::size_t slow_count = 0;   ///< durations strictly above the threshold
  std::size_t error_count = 0;  ///< queries whose `execute` threw
};

namespace detail {

/// Nearest rank: the element at ceil(p/100 * n) - 1 of the sorted values (exact arithmetic).
constexpr std::size_t nearest_rank_index(std::size_t n, unsigned percent) noexcept {
  if (n == 0) return 0;
  const std::size_t rank = (static_cast<std::size_t>(percent) * n + 99) / 100;
  return rank == 0 ? 0 : rank - 1;
}

/// Statistics over the durations of `set` (reordered in place); `average` gets the unrounded
/// mean. `set.ms` must not be empty. Percentiles are exact nearest-rank values.
inline query_stats compute_query_stats(period_durations::set& set, double slow_threshold_ms, double& average) {
  std::vector<double>& ms = set.ms;
  query_stats s;
  s.total = ms.size();
  s.error_count = set.failed;
  double sum = 0.0;
  double lo = ms.front();
  double hi = lo;
  std::size_t slow = 0;
  for (double d : ms) {
    sum += d;
    lo = std::min(lo, d);
    hi = std::max(hi, d);
    slow += d > slow_threshold_ms ? 1 : 0;
  }
  s.slow_count = slow;
  const std::size_t i95 = nearest_rank_index(ms.size(), 95);
  const std::size_t i99 = nearest_rank_index(ms.size(), 99);
  // One selection over everything for p95; everything after it is >= p95, so p99 is a selection
  // within that last ~5 % only.
  const auto at = [&](std::size_t i) { return ms.begin() + static_cast<std::ptrdiff_t>(i); };
  std::nth_element(ms.begin(), at(i95), ms.end());
  const double p95 = ms[i95];
  if (i99 > i95) std::nth_element(at(i95 + 1), at(i99), ms.end());
  const double p99 = ms[i99];
  average = sum / static_cast<double>(ms.size());
  s.avg_duration = infra::detail::round2(average);
  s.min_duration = infra::detail::round2(lo);
  s.max_duration = infra::detail::round2(hi);
  s.p95_duration = infra::detail::round2(p95);
  s.p99_duration = infra::detail::round2(p99);
  return s;
}

}  // namespace detail

}  // namespace kysera::infra::metrics
