#pragma once
/// \file
/// `with_transaction_retry`: rerun a whole transaction after a serialization failure or deadlock.

#include <chrono>
#include <concepts>
#include <exception>
#include <functional>
#include <type_traits>
#include <utility>

#include "../database.hpp"
#include "retry.hpp"
#include "transient.hpp"

namespace kysera::infra::resilience {

/// `retry_options` with the defaults `with_transaction_retry` uses: the same fields, but a
/// 100 ms first delay, and an empty `should_retry` means `is_serialization_error`. It exists so
/// that `with_transaction_retry(db, fn, {.max_attempts = 5})` keeps the 100 ms default; passing a
/// `retry_options` object works too: its values are used as given (an empty `should_retry` still
/// means `is_serialization_error`).
struct transaction_retry_options {
  int max_attempts = 3;
  std::chrono::milliseconds delay{100};
  std::chrono::milliseconds max_delay{30000};
  bool backoff = true;
  double jitter = 0.25;
  std::function<bool(const std::exception&)> should_retry{};
  std::function<void(int attempt, const std::exception&)> on_retry{};
  std::function<void(std::chrono::milliseconds)> sleep{};
  bool wait_for_circuit = false;  ///< as in `retry_options`
  std::function<void(int attempts, const std::exception&)> on_give_up{};  ///< as in `retry_options`
};

/// The preset for transactions that must ride out a database restart or failover: reruns the
/// whole transaction after the errors `is_retryable_before_commit` accepts, up to 6 attempts,
/// waiting 250 ms, 500 ms, 1 s, 2 s, 4 s (+-25 % jitter, capped at 5 s; about 7.75 s in all,
/// enough for a typical restart). `wait_for_circuit` is on, so a breaker inside the retry makes
/// it wait for the breaker's next probe instead of giving up. Change any field after the call.
///
///     auto o = outage_retry_options();
///     o.on_give_up = [](int attempts, const std::exception& e) { count_failed_order(attempts, e); };
///     with_transaction_retry(db, [&](auto& tx) { insert_order(tx); }, o);
inline transaction_retry_options outage_retry_options() {
  transaction_retry_options o;
  o.max_attempts = 6;
  o.delay = std::chrono::milliseconds(250);
  o.max_delay = std::chrono::milliseconds(5000);
  o.should_retry = is_retryable_before_commit;
  o.wait_for_circuit = true;
  return o;
}

/// Runs `db.transaction(fn)` (BEGIN, `fn(session&)`, COMMIT; ROLLBACK when it throws) and reruns
/// the WHOLE transaction when it failed with a serialization failure or a deadlock (unless
/// `options.should_retry` says otherwise); returns what `fn` returns. `fn` may run several times,
/// so it must not have effects outside the transaction that cannot be repeated. An
/// `errc::outcome_unknown` (the COMMIT may have happened) is never retried by default.
/// Thread-safe as far as `db` and `fn` are.
///
///     int balance = with_transaction_retry(db, [](auto& tx) {
///       tx.execute("UPDATE account SET balance = balance - 10 WHERE id = 1");
///       return 42;
///     });
template <database_with_transaction Db, class F, class Options = transaction_retry_options>
  requires(std::same_as<Options, transaction_retry_options> ||
           std::same_as<Options, retry_options>)
decltype(auto) with_transaction_retry(Db& db, F&& fn, const Options& options = {}) {
  using result = decltype(db.transaction(fn));
  detail::validate_retry_options(options, std::same_as<Options, retry_options>
                                              ? "retry_options"
                                              : "transaction_retry_options");
  return detail::retry_loop<result>(options, &is_serialization_error,
                                    [&](bool) -> result { return db.transaction(fn); });
}

}  // namespace kysera::infra::resilience
