#pragma once
/// \file
/// `metrics::visitor`: how a `registry` hands its metrics to an exporter (Prometheus text, or a
/// user's adapter for prometheus-cpp or opentelemetry-cpp) without depending on any of them.

#include <chrono>
#include <span>
#include <string>
#include <string_view>

#include "histogram.hpp"

namespace kysera::infra::metrics {

/// One attribute (Prometheus: label) of a series, as OpenTelemetry names it (`db.namespace`).
/// A view: valid only during the visitor call that received it.
struct attribute {
  std::string_view key;
  std::string_view value;
};

/// What a metric family is: its OpenTelemetry name (`db.client.connection.count`), its UCUM unit
/// (`s`, `{connection}`), and a one-line description.
struct descriptor {
  std::string_view name;
  std::string_view unit;
  std::string_view description;
};

/// Receives every series of one `registry::collect` call, on the collecting thread. Calls come
/// grouped by family: all series of one name follow each other, so an exporter may write a
/// family's header when the name changes. Values are read at the time of the call.
///
///     struct printer : kysera::infra::metrics::visitor {
///       void on_gauge(const descriptor& d, std::span<const attribute>, double v) override {
///         std::cout << d.name << ' ' << v << '\n';
///       }
///       ...
///     };
class visitor {
 public:
  using time_point = std::chrono::system_clock::time_point;

  virtual ~visitor() = default;
  /// A value that goes up and down (connections in use, a state as 0/1).
  virtual void on_gauge(const descriptor& d, std::span<const attribute> attributes, double value) = 0;
  /// A monotonic total; `created` is when it started counting (OpenMetrics `_created`).
  virtual void on_counter(const descriptor& d, std::span<const attribute> attributes, double value,
                          time_point created) = 0;
  /// A distribution in `d.unit`; `created` as for counters.
  virtual void on_histogram(const descriptor& d, std::span<const attribute> attributes,
                            const histogram_snapshot& value, time_point created) = 0;
};

}  // namespace kysera::infra::metrics
