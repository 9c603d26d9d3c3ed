#pragma once
/// \file
/// `with_retry`, `create_retry_wrapper` and their options.

#include <atomic>
#include <chrono>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

#include "../deadline.hpp"
#include "backoff.hpp"
#include "circuit_breaker.hpp"
#include "transient.hpp"

namespace kysera::infra::resilience {

/// Thread-safe (relaxed atomics): outcomes of the retries that were given it in
/// `retry_options::counters`, as resilience4j counts them. Not copyable; `get()` takes a copy.
struct retry_counters {
  struct values {
    std::uint64_t successful_without_retry = 0;
    std::uint64_t successful_with_retry = 0;
    std::uint64_t failed_without_retry = 0;
    std::uint64_t failed_with_retry = 0;
    friend bool operator==(const values&, const values&) = default;
  };
  std::atomic<std::uint64_t> successful_without_retry{0};
  std::atomic<std::uint64_t> successful_with_retry{0};
  std::atomic<std::uint64_t> failed_without_retry{0};
  std::atomic<std::uint64_t> failed_with_retry{0};

  values get() const noexcept {
    return {successful_without_retry.load(std::memory_order_relaxed),
            successful_with_retry.load(std::memory_order_relaxed),
            failed_without_retry.load(std::memory_order_relaxed),
            failed_with_retry.load(std::memory_order_relaxed)};
  }
};

/// How `with_retry` retries. Every field has a default; checked when the retry starts (invalid
/// values throw `std::invalid_argument` naming the field).
struct retry_options {
  /// Attempts in total, the first included (>= 1).
  int max_attempts = 3;
  /// Wait after the first failed attempt (>= 0).
  std::chrono::milliseconds delay{1000};
  /// No wait is ever longer, jitter included (>= delay).
  std::chrono::milliseconds max_delay{30000};
  /// Double the wait after each failure; false waits `delay` every time, without jitter.
  bool backoff = true;
  /// Spread of each wait, as a fraction of it: 0.25 draws from [0.75 w, min(1.25 w, max_delay)].
  double jitter = 0.25;
  /// Whether an error is worth another attempt; empty means `is_transient_error`. Called on the
  /// calling thread, never after the last attempt. If it throws, retrying stops and the
  /// original error propagates.
  std::function<bool(const std::exception&)> should_retry{};
  /// Called on the calling thread before each wait with the 1-based number of the attempt that
  /// just failed. If it throws, retrying stops and the original error propagates.
  std::function<void(int attempt, const std::exception&)> on_retry{};
  /// How to wait; empty means `std::this_thread::sleep_for`. Tests pass a recorder or a manual
  /// clock. An exception from it propagates (a way to abandon the retry, e.g. at shutdown).
  std::function<void(std::chrono::milliseconds)> sleep{};
  /// Opt-in, for a breaker inside the retry (the recommended nesting): a `circuit_breaker_error`
  /// is retried while attempts remain (without asking `should_retry`), after waiting its
  /// `retry_after()` (the backoff wait when that is zero, i.e. a probe is running), capped at
  /// `max_delay`. Each rejection counts as an attempt. Off: a rejection ends the retry at once.
  bool wait_for_circuit = false;
  /// Called once, on the calling thread, when the retry gives up: with the number of attempts
  /// made and the error about to be rethrown (attempts ran out, or the error was not worth a
  /// retry). Together with `on_retry` it sees every failed attempt. Not called on success, nor for
  /// non-`std::exception` throws, nor when `sleep` throws. If it throws, that is ignored and the
  /// original error propagates.
  std::function<void(int attempts, const std::exception&)> on_give_up{};
  /// Where each retry's outcome is counted (it must outlive the calls); null counts nothing.
  retry_counters* counters = nullptr;
};

namespace detail {

/// Counts one retry's outcome in `o.counters` where the options type has them.
template <class Options>
void count_retry(const Options& o, int attempts, bool succeeded) noexcept {
  if constexpr (requires { o.counters; }) {
    if (o.counters == nullptr) return;
    auto& c = succeeded ? (attempts == 1 ? o.counters->successful_without_retry : o.counters->successful_with_retry)
                        : (attempts == 1 ? o.counters->failed_without_retry : o.counters->failed_with_retry);
    c.fetch_add(1, std::memory_order_relaxed);
  }
}

/// Counts a success when the attempt it guards returns (not when it throws).
template <class Options>
class success_counter {
 public:
  success_counter(const Options& o, int attempt) noexcept
      : o_(o), attempt_(attempt), uncaught_(has_counters() ? std::uncaught_exceptions() : 0) {}
  success_counter(const success_counter&) = delete;
  success_counter& operator=(const success_counter&) = delete;
  ~success_counter() {
    if (has_counters() && std::uncaught_exceptions() == uncaught_) count_retry(o_, attempt_, true);
  }

 private:
  bool has_counters() const noexcept {
    if constexpr (requires { o_.counters; }) {
      return o_.counters != nullptr;
    } else {
      return false;
    }
  }
  const Options& o_;
  int attempt_;
  int uncaught_;
};

/// Throws the `std::invalid_argument` naming the first bad field of `o`. Kept out of line and cold:
/// only `validate_retry_options`'s fast check, inlined into every retry, is on the success path.
template <class Options>
[[gnu::cold, gnu::noinline]] void throw_invalid_retry_options(const Options& o, const char* type) {
  auto fail = [type](const char* field, const std::string& rule) {
    throw std::invalid_argument(std::string(type) + "." + field + " " + rule);
  };
  if (o.max_attempts < 1) {
    fail("max_attempts", "must be at least 1 (got " + std::to_string(o.max_attempts) + ")");
  }
  if (o.delay.count() < 0) {
    fail("delay", "must not be negative (got " + std::to_string(o.delay.count()) + " ms)");
  }
  if (o.max_delay < o.delay) {
    fail("max_delay", "must not be less than delay (got " + std::to_string(o.max_delay.count()) +
                          " ms < " + std::to_string(o.delay.count()) + " ms)");
  }
  if (!(o.jitter >= 0.0 && o.jitter <= 1.0)) {  // also rejects NaN
    fail("jitter", "must be within [0, 1] (got " + std::to_string(o.jitter) + ")");
  }
}

/// Checks `o` (four comparisons, inline); throws `std::invalid_argument` naming the bad field.
template <class Options>
inline void validate_retry_options(const Options& o, const char* type) {
  if (o.max_attempts >= 1 && o.delay.count() >= 0 && o.max_delay >= o.delay && o.jitter >= 0.0 &&
      o.jitter <= 1.0) [[likely]] {
    return;
  }
  throw_invalid_retry_options(o, type);
}

using error_predicate = bool (*)(const std::exception&) noexcept;

/// After attempt `attempt` failed with `e`: the wait before the next attempt, or nothing when
/// `e` must propagate. Keeps the per-failure work out of the templates.
template <class Options>
std::optional<std::chrono::milliseconds> next_wait(const Options& o, error_predicate fallback,
                                                   int attempt, const std::exception& e) noexcept {
  if (attempt >= o.max_attempts) return std::nullopt;
  const auto* rejection = o.wait_for_circuit ? dynamic_cast<const circuit_breaker_error*>(&e) : nullptr;
  try {
    if (rejection == nullptr && !(o.should_retry ? o.should_retry(e) : fallback(e))) return std::nullopt;
  } catch (...) {
    return std::nullopt;  // a failing callback never replaces the caller's error
  }
  const double unit = o.backoff && o.jitter > 0.0 ? thread_unit_random() : 0.0;
  auto pause = backoff_delay(o.delay, o.max_delay, o.backoff, o.jitter, attempt, unit);
  if (rejection != nullptr && rejection->retry_after() > std::chrono::milliseconds::zero()) {
    pause = std::min(rejection->retry_after(), o.max_delay);
  }
  // Under an ambient deadline, no wait runs into it and no attempt starts at or after it.
  if (const auto deadline = infra::current_deadline();
      deadline && infra::detail::saturating_add(deadline_clock::now(), pause) >= *deadline) {
    return std::nullopt;
  }
  try {
    if (o.on_retry) o.on_retry(attempt, e);
  } catch (...) {
    return std::nullopt;
  }
  return pause;
}

/// Tells `on_give_up` (if any) about the error that ends the retry; never throws.
template <class Options>
void give_up(const Options& o, int attempts, const std::exception& e) noexcept {
  if (!o.on_give_up) return;
  try {
    o.on_give_up(attempts, e);
  } catch (...) {
    // The caller gets the original error, not the hook's.
  }
}

template <class Options>
void wait(const Options& o, std::chrono::milliseconds d) {
  if (o.sleep) {
    o.sleep(d);
  } else {
    std::this_thread::sleep_for(d);
  }
}

/// The retry loop on already validated options. `call(final_attempt)` runs one attempt.
template <class Result, class Options, class Call>
Result retry_loop(const Options& o, error_predicate fallback, Call&& call) {
  for (int attempt = 1;; ++attempt) {
    std::chrono::milliseconds pause{};
    try {
      const success_counter<Options> counted(o, attempt);
      return call(attempt == o.max_attempts);
    } catch (const std::exception& e) {
      auto next = next_wait(o, fallback, attempt, e);
      if (!next) {
        count_retry(o, attempt, false);
        give_up(o, attempt, e);
        throw;  // unchanged: same object, same dynamic type
      }
      pause = *next;
    }
    // Non-std exceptions are not caught above, so they propagate at once.
    wait(o, pause);
  }
}

}  // namespace detail

/// Runs `fn()` until it succeeds, an error is not worth retrying, `max_attempts` ran out, or the
/// next attempt would start at or after the ambient deadline (`deadline_scope`: no backoff wait
/// runs into it); returns what `fn()` returns and rethrows the last error unchanged. Thread-safe as far as `fn`
/// is: nothing is shared between calls.
///
///     auto rows = with_retry([&] { return db.execute("SELECT 1"); }, {.max_attempts = 5});
template <class F>
  requires std::invocable<F&>
std::invoke_result_t<F&> with_retry(F&& fn, const retry_options& options = {}) {
  detail::validate_retry_options(options, "retry_options");
  return detail::retry_loop<std::invoke_result_t<F&>>(
      options, &is_transient_error, [&fn](bool) -> decltype(auto) { return std::invoke(fn); });
}

/// Thread-safe to call when `F` is (the option callbacks then run concurrently on the calling
/// threads). A callable that runs a function through `with_retry` with fixed options; made by
/// `create_retry_wrapper`.
///
/// Arguments: every attempt but the last gets them as lvalues (a retry must still see them), the
/// last attempt gets them perfectly forwarded. So references stay references, by-value
/// parameters are copied per retried attempt, and a function that can only take an argument by
/// moving it (a `std::unique_ptr` by value, a `T&&` parameter) does not compile: it could not be
/// called a second time.
template <class F>
class retry_wrapper {
 public:
  retry_wrapper(F fn, retry_options options) : fn_(std::move(fn)), options_(std::move(options)) {
    detail::validate_retry_options(options_, "retry_options");
  }

  template <class... Args>
    requires std::invocable<F&, Args...>
  std::invoke_result_t<F&, Args...> operator()(Args&&... args) {
    return call(fn_, options_, std::forward<Args>(args)...);
  }

  template <class... Args>
    requires std::invocable<const F&, Args...>
  std::invoke_result_t<const F&, Args...> operator()(Args&&... args) const {
    return call(fn_, options_, std::forward<Args>(args)...);
  }

  const retry_options& options() const noexcept { return options_; }

 private:
  template <class G, class... Args>
  static std::invoke_result_t<G&, Args...> call(G& fn, const retry_options& o, Args&&... args) {
    using result = std::invoke_result_t<G&, Args...>;
    static_assert(std::is_invocable_v<G&, Args&...>,
                  "create_retry_wrapper: every argument must be usable more than once (an "
                  "attempt that moved it away would leave nothing for the retry)");
    static_assert(std::is_same_v<std::invoke_result_t<G&, Args&...>, result>,
                  "create_retry_wrapper: the function must return the same type for lvalue and "
                  "forwarded arguments");
    return detail::retry_loop<result>(o, &is_transient_error,
                                      [&](bool final_attempt) -> result {
                                        if (final_attempt) {
                                          return std::invoke(fn, std::forward<Args>(args)...);
                                        }
                                        return std::invoke(fn, args...);
                                      });
  }

  F fn_;
  retry_options options_;
};

/// Wraps `fn` so that each call runs it through `with_retry` with `options` (checked here, once).
/// The wrapper takes `fn`'s arguments and returns what `fn` returns.
///
///     auto insert = create_retry_wrapper(
///         [&](std::string_view sql) { return db.execute(sql); }, {.max_attempts = 4});
///     insert("INSERT INTO t VALUES (1)");
template <class F>
retry_wrapper<std::decay_t<F>> create_retry_wrapper(F&& fn, retry_options options = {}) {
  return retry_wrapper<std::decay_t<F>>(std::forward<F>(fn), std::move(options));
}

}  // namespace kysera::infra::resilience
