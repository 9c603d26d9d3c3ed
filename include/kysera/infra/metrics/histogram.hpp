#pragma once
/// \file
/// `histogram`: a lock-free, fixed-bucket histogram of durations in seconds, and its snapshot.

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <stdexcept>
#include <vector>

namespace kysera::infra::metrics {

/// OpenTelemetry's advised bucket boundaries for `db.client.operation.duration` (seconds).
inline constexpr std::array<double, 9> operation_duration_buckets{0.001, 0.005, 0.01, 0.05, 0.1,
                                                                   0.5,   1.0,   5.0,  10.0};

/// A value type: what a `histogram` held at one moment. `counts[i]` counts the values in
/// (bounds[i-1], bounds[i]]; the last entry (index `bounds.size()`) those above every bound.
/// `count` is the sum of `counts`, so the +Inf bucket always equals it.
struct histogram_snapshot {
  std::vector<double> bounds;
  std::vector<std::uint64_t> counts;
  std::uint64_t count = 0;
  double sum = 0.0;  ///< seconds

  /// Cumulative count of values <= bounds[i] (i == bounds.size(): all of them), as Prometheus
  /// buckets show it.
  std::uint64_t cumulative(std::size_t i) const noexcept {
    std::uint64_t c = 0;
    for (std::size_t k = 0; k <= i && k < counts.size(); ++k) c += counts[k];
    return c;
  }
};

/// Thread-safe and lock-free: `record` may run on any number of threads while `snapshot` reads.
/// Fixed memory (at most `max_bounds` + 1 buckets, set at construction). Recording is two
/// relaxed atomic additions after a scan of the bounds; the count is the sum of the buckets, so
/// a snapshot is never torn between buckets and count (the sum may lag by records in flight).
///
///     kysera::infra::metrics::histogram h;  // the OTel database-duration buckets
///     h.record(std::chrono::microseconds(350));
///     auto s = h.snapshot();  // s.counts[0] == 1, s.count == 1
class histogram {
 public:
  static constexpr std::size_t max_bounds = 15;

  /// Buckets of `operation_duration_buckets`.
  histogram() noexcept : histogram(operation_duration_buckets.size(), operation_duration_buckets.data()) {}

  /// Throws `std::invalid_argument` unless `bounds` are finite, strictly increasing and at most
  /// `max_bounds` of them.
  explicit histogram(std::span<const double> bounds) : histogram(checked(bounds), bounds.data()) {}
  histogram(std::initializer_list<double> bounds)
      : histogram(std::span<const double>(bounds.begin(), bounds.size())) {}

  histogram(const histogram&) = delete;
  histogram& operator=(const histogram&) = delete;

  /// Records one value in seconds. Negative values and NaN count in the first bucket and add 0.
  void record(double seconds) noexcept {
    std::size_t i = 0;
    while (i < n_ && seconds > bounds_[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    if (seconds > 0.0) {
      const double ns = seconds * 1e9;
      sum_ns_.fetch_add(ns < 1.8e19 ? static_cast<std::uint64_t>(ns) : 0, std::memory_order_relaxed);
    }
  }

  /// Records a duration; compares in nanoseconds, so no floating point on this path.
  template <class Rep, class Period>
  void record(std::chrono::duration<Rep, Period> d) noexcept {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    std::size_t i = 0;
    while (i < n_ && ns > bounds_ns_[i]) ++i;
    buckets_[i].fetch_add(1, std::memory_order_relaxed);
    if (ns > 0) sum_ns_.fetch_add(static_cast<std::uint64_t>(ns), std::memory_order_relaxed);
  }

  std::span<const double> bounds() const noexcept { return {bounds_.data(), n_}; }

  histogram_snapshot snapshot() const {
    histogram_snapshot s;
    s.bounds.assign(bounds_.begin(), bounds_.begin() + static_cast<std::ptrdiff_t>(n_));
    s.counts.resize(n_ + 1);
    for (std::size_t i = 0; i <= n_; ++i) {
      s.counts[i] = buckets_[i].load(std::memory_order_relaxed);
      s.count += s.counts[i];
    }
    s.sum = static_cast<double>(sum_ns_.load(std::memory_order_relaxed)) / 1e9;
    return s;
  }

 private:
  histogram(std::size_t n, const double* bounds) noexcept : n_(n) {
    for (std::size_t i = 0; i < n; ++i) {
      bounds_[i] = bounds[i];
      bounds_ns_[i] = std::llround(bounds[i] * 1e9);  // the bound to the nearest nanosecond
    }
  }

  static std::size_t checked(std::span<const double> bounds) {
    if (bounds.size() > max_bounds) {
      throw std::invalid_argument("histogram: at most 15 bucket bounds");
    }
    for (std::size_t i = 0; i < bounds.size(); ++i) {
      if (!std::isfinite(bounds[i]) || std::fabs(bounds[i]) > 9e9) {
        throw std::invalid_argument("histogram: bucket bounds must be finite seconds (|b| <= 9e9)");
      }
      if (i > 0 && !(bounds[i - 1] < bounds[i])) {
        throw std::invalid_argument("histogram: bucket bounds must be strictly increasing");
      }
    }
    return bounds.size();
  }

  std::size_t n_;
  std::array<double, max_bounds> bounds_{};
  std::array<std::int64_t, max_bounds> bounds_ns_{};
  std::array<std::atomic<std::uint64_t>, max_bounds + 1> buckets_{};
  std::atomic<std::uint64_t> sum_ns_{0};
};

}  // namespace kysera::infra::metrics
