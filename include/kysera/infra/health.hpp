#pragma once
/// \file
/// The health module (namespace kysera::infra::health): one-off checks
/// (`check_database_health`, `perform_health_check`), the periodic `health_monitor`, the
/// query-recording `with_debug` wrapper and `get_metrics`, `to_json` for results, and
/// `probes` (liveness, readiness, startup).
///
///     #include <kysera/infra/health.hpp>
///     namespace health = kysera::infra::health;
///     auto r = health::check_database_health(db);

#include "database.hpp"
#include "error.hpp"
#include "logger.hpp"
#include "pool/metrics.hpp"

#include "health/check.hpp"
#include "health/debug.hpp"
#include "health/json.hpp"
#include "health/metrics.hpp"
#include "health/monitor.hpp"
#include "health/probes.hpp"
