#pragma once
/// \file
/// `query_sample` and `period_durations` under their `health::` names; they live in the metrics
/// layer, `<kysera/infra/metrics/query_sample.hpp>`.

#include "../metrics/query_sample.hpp"

namespace kysera::infra::health {

using metrics::period_durations;
using metrics::query_sample;

}  // namespace kysera::infra::health
