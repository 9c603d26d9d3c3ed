#pragma once
/// \file
/// The pool module (namespace kysera::infra::pool): `connection_pool`, its options and
/// statistics, and pool metrics (`pool_metrics`, `pool_traits`, `metrics_pool`,
/// `create_metrics_pool`, `is_metrics_pool`).
///
///     #include <kysera/infra/pool.hpp>
///     kysera::infra::pool::connection_pool<my_connection> pool(make_connection, {.max_size = 8});
///     auto handle = kysera::infra::pool::create_metrics_pool(pool);

#include "database.hpp"
#include "error.hpp"
#include "logger.hpp"
#include "pool/connection_pool.hpp"
#include "pool/metrics.hpp"
#include "pool/options.hpp"
#include "pool/timings.hpp"
