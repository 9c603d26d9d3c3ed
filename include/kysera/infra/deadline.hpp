#pragma once
/// \file
/// The ambient deadline: a point in time (steady_clock) that bounds every statement, pool wait and
/// retry the calling thread runs while it is set. `deadline_scope` sets it for a block,
/// `with_deadline` for one call, `current_deadline()` reads it. Adapters run each statement under
/// min(ambient deadline, now + `statement_deadline`); `with_retry` starts no attempt and sleeps no
/// backoff past it; `connection_pool::acquire` waits at most until it. The model (what bounds
/// what): docs/deadlines.md.

#include <chrono>
#include <optional>
#include <type_traits>
#include <utility>

#include "detail/time.hpp"

namespace kysera::infra {

/// The clock of every deadline.
using deadline_clock = std::chrono::steady_clock;

namespace detail {

/// The calling thread's ambient deadline; `time_point::max()` when none is set.
inline deadline_clock::time_point& ambient_deadline() noexcept {
  thread_local deadline_clock::time_point at = deadline_clock::time_point::max();
  return at;
}

}  // namespace detail

/// A value type (an empty tag) for `deadline_scope`: lifts the ambient deadline for a block
/// (cleanup that must run to the end, e.g. writing an audit row after a cut statement).
struct no_deadline_t {
  explicit constexpr no_deadline_t() = default;
};
inline constexpr no_deadline_t no_deadline{};

/// The calling thread's ambient deadline, if one is set. Cheap (one thread-local read).
///
///     if (auto d = kysera::infra::current_deadline()) log("time left", *d - std::chrono::steady_clock::now());
inline std::optional<deadline_clock::time_point> current_deadline() noexcept {
  const auto at = detail::ambient_deadline();
  if (at == deadline_clock::time_point::max()) return std::nullopt;
  return at;
}

/// Not thread-safe: a scope belongs to the thread that made it, and scopes end in reverse order
/// of their making (as block scopes do). Sets the calling thread's ambient deadline for its
/// lifetime and restores the previous one when it ends. A nested scope never extends the
/// deadline: the earlier of its own and the enclosing one holds (except `no_deadline`, which
/// lifts it on purpose). A duration counts from now and saturates (hours::max() is no deadline).
///
///     kysera::infra::deadline_scope scope(300ms);
///     db.execute("update t set n = n + 1");      // errc::timeout if not done within 300 ms
///     pool.with_connection([](auto& c) { ... });  // the pool wait counts against the same 300 ms
class deadline_scope {
 public:
  explicit deadline_scope(deadline_clock::time_point at) noexcept : previous_(detail::ambient_deadline()) {
    if (at < previous_) detail::ambient_deadline() = at;
  }
  template <class Rep, class Period>
  explicit deadline_scope(std::chrono::duration<Rep, Period> within) noexcept
      : deadline_scope(infra::detail::saturating_add(
            deadline_clock::now(), infra::detail::saturating_duration_cast<deadline_clock::duration>(within))) {}
  explicit deadline_scope(no_deadline_t) noexcept : previous_(detail::ambient_deadline()) {
    detail::ambient_deadline() = deadline_clock::time_point::max();
  }
  ~deadline_scope() { detail::ambient_deadline() = previous_; }
  deadline_scope(const deadline_scope&) = delete;
  deadline_scope& operator=(const deadline_scope&) = delete;

 private:
  deadline_clock::time_point previous_;
};

/// Runs `fn()` under a `deadline_scope(at)` and returns what it returns. `at` is a
/// steady_clock time point, a duration (from now) or `no_deadline`.
///
///     auto rows = kysera::infra::with_deadline(300ms, [&] {
///       return kysera::infra::resilience::with_retry([&] { return db.execute("select 1"); });
///     });
template <class At, class F>
  requires std::is_constructible_v<deadline_scope, At> && std::is_invocable_v<F&>
std::invoke_result_t<F&> with_deadline(At at, F&& fn) {
  deadline_scope scope(at);
  return fn();
}

namespace detail {

/// The deadline for one statement: the ambient one, or `now + statement_deadline` when that is
/// earlier (`statement_deadline` 0: off). `time_point::max()` when neither bounds it. Reads the
/// clock only when `statement_deadline` is on.
inline deadline_clock::time_point statement_deadline_from(deadline_clock::duration statement_deadline) noexcept {
  const auto ambient = ambient_deadline();
  if (statement_deadline == deadline_clock::duration::zero()) return ambient;
  const auto own = saturating_add(deadline_clock::now(), statement_deadline);
  return own < ambient ? own : ambient;
}

}  // namespace detail
}  // namespace kysera::infra
