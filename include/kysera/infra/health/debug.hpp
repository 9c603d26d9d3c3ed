#pragma once
/// \file
/// `with_debug` and its types under their `health::` names (API.md). They live in the metrics
/// layer, `<kysera/infra/metrics/query_metrics.hpp>`.

#include "../metrics/query_metrics.hpp"
#include "period_durations.hpp"

namespace kysera::infra::health {

using metrics::basic_query_metric;
using metrics::database_with_metrics;
using metrics::debug_database;
using metrics::debug_options;
using metrics::debug_session;
using metrics::has_database_metrics;
using metrics::query_metric;
using metrics::with_debug;

}  // namespace kysera::infra::health
