#pragma once
/// \file
/// The metrics layer: what the library measures, below the health module that reports it.
/// Query recording (`with_debug`), query samples and durations per period, query statistics;
/// and the export side: `histogram`, `registry`, `instrument`, the `visitor` and the Prometheus /
/// OpenMetrics exposition (docs/observability.md).

#include "metrics/histogram.hpp"
#include "metrics/instrument.hpp"
#include "metrics/operation_duration.hpp"
#include "metrics/prometheus.hpp"
#include "metrics/query_metrics.hpp"
#include "metrics/query_ring.hpp"
#include "metrics/query_sample.hpp"
#include "metrics/query_stats.hpp"
#include "metrics/registry.hpp"
#include "metrics/visitor.hpp"
