#pragma once
/// \file
/// Everything: the core, the four modules, and each backend adapter whose CMake component the
/// consumer linked (`kysera::infra-postgres` defines `KYSERA_INFRA_HAS_POSTGRES`, and so on).
///
///     #include <kysera/infra.hpp>
///     namespace infra = kysera::infra;

#include "infra/database.hpp"
#include "infra/deadline.hpp"
#include "infra/error.hpp"
#include "infra/logger.hpp"

#include "infra/health.hpp"
#include "infra/metrics.hpp"
#include "infra/pool.hpp"
#include "infra/resilience.hpp"
#include "infra/shutdown.hpp"
#include "infra/cluster.hpp"

#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include "infra/adapters/postgres.hpp"
#endif
#if defined(KYSERA_INFRA_HAS_MYSQL)
#include "infra/adapters/mysql.hpp"
#endif
#if defined(KYSERA_INFRA_HAS_SQLITE)
#include "infra/adapters/sqlite.hpp"
#endif

// Every public name of the four modules is also reachable as kysera::infra::NAME. These are
// using-declarations, not using-directives, so the modules' internal `detail` namespaces stay
// apart and `kysera::infra::to_string(x)` finds every module's overload.
namespace kysera::infra {
using resilience::backoff_delay;
using resilience::basic_circuit_breaker;
using resilience::circuit_breaker;
using resilience::circuit_breaker_calls;
using resilience::circuit_breaker_error;
using resilience::circuit_breaker_options;
using resilience::circuit_breaker_state;
using resilience::circuit_state;
using resilience::create_retry_wrapper;
using resilience::is_replay_safe_error;
using resilience::is_retryable_before_commit;
using resilience::is_serialization_error;
using resilience::is_transient_error;
using resilience::outage_retry_options;
using resilience::retry_counters;
using resilience::retry_options;
using resilience::retry_wrapper;
using resilience::to_string;
using resilience::transaction_retry_options;
using resilience::with_retry;
using resilience::with_transaction_retry;

using pool::connection_pool;
using pool::create_metrics_pool;
using pool::is_metrics_pool;
using pool::metrics_pool;
using pool::pool_metrics;
using pool::pool_options;
using pool::pool_statistics;
using pool::pool_traits;
using pool::pool_with_metrics;

using health::basic_query_metric;
using health::check_database_health;
using health::classify_latency;
using health::connection_stats;
using health::database_with_metrics;
using health::debug_database;
using health::debug_options;
using health::debug_session;
using health::get_metrics;
using health::get_metrics_options;
using health::has_database_metrics;
using health::health_check;
using health::health_check_callback;
using health::health_check_options;
using health::health_check_result;
using health::health_metrics;
using health::health_monitor;
using health::health_monitor_options;
using health::health_status;
using health::metrics_result;
using health::parse_period;
using health::period_durations;
using health::perform_health_check;
using health::probe_options;
using health::probe_result;
using health::probes;
using health::query_metric;
using health::query_sample;
using health::query_stats;
using health::recommendation;
using health::recommendation_code;
using health::health_json_media_type;
using health::to_health_json_status;
using health::to_json;
using health::to_string;
using health::with_debug;

using shutdown::graceful_shutdown;
using shutdown::register_shutdown_options;
using shutdown::shutdown_database;
using shutdown::shutdown_error;
using shutdown::shutdown_options;
using shutdown::shutdown_stage;
using shutdown::to_string;
#if defined(__unix__) || defined(__APPLE__)
using shutdown::create_shutdown_controller;
using shutdown::register_shutdown_handlers;
using shutdown::shutdown_controller;
#endif
}  // namespace kysera::infra
