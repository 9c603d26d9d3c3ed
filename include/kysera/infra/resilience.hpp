#pragma once
/// \file
/// The resilience module (namespace kysera::infra::resilience): retry with capped, jittered
/// exponential backoff, transient-error classification, a circuit breaker, and whole-transaction
/// retry.
///
///     #include <kysera/infra/resilience.hpp>
///     namespace res = kysera::infra::resilience;
///     res::circuit_breaker breaker({.threshold = 5, .reset_time = 30s});
///     auto rows = res::with_retry([&] { return breaker.execute([&] { return db.execute(sql); }); });

#include "database.hpp"
#include "error.hpp"
#include "logger.hpp"

#include "resilience/backoff.hpp"
#include "resilience/circuit_breaker.hpp"
#include "resilience/retry.hpp"
#include "resilience/transaction_retry.hpp"
#include "resilience/transient.hpp"
