#pragma once
/// \file
/// The metrics layer: what the library measures, below the health module that reports it.
/// Query recording (`with_debug`), query samples and durations per period, and query statistics.

#include "metrics/query_metrics.hpp"
#include "metrics/query_ring.hpp"
#include "metrics/query_sample.hpp"
#include "metrics/query_stats.hpp"
