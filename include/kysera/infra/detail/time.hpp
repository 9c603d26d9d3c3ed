#pragma once
/// \file
/// Saturating time arithmetic shared by every module. The rule: a duration or deadline too large
/// for the clock that measures it means "practically forever". Conversions and additions stop at
/// the type's `max()` (or `min()`) instead of wrapping around, so `milliseconds::max()` as a
/// timeout, interval or reset time waits as long as the clock can count, never "at once".
/// Condition-variable waits go through `wait_until_capped`, which sleeps at most
/// `max_single_wait` per call: the standard library converts a deadline to other clocks and
/// units internally, and a deadline near `time_point::max()` can overflow there.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <limits>
#include <mutex>
#include <ratio>
#include <type_traits>
#include <utility>

namespace kysera::infra::detail {

/// Conversions decided in floating point saturate this close to the limit already.
inline constexpr long double saturation_margin = 1.0L - 1.0L / 1099511627776.0L;  // 1 - 2^-40

/// `d` converted to `To`, truncating toward zero like `duration_cast`, but saturating at
/// `To::max()` / `To::min()` where `duration_cast` would overflow.
///
///     saturating_duration_cast<std::chrono::nanoseconds>(std::chrono::milliseconds::max())
///         == std::chrono::nanoseconds::max()
template <class To, class Rep, class Period>
constexpr To saturating_duration_cast(std::chrono::duration<Rep, Period> d) noexcept {
  using to_rep = typename To::rep;
  if constexpr (std::is_floating_point_v<to_rep>) {
    return std::chrono::duration_cast<To>(d);  // a floating-point target does not wrap
  } else if constexpr (!std::is_integral_v<Rep>) {
    // A floating-point source: decide in long double with a safety margin, so a value within
    // rounding distance of the limit saturates rather than overflows.
    using ratio = std::ratio_divide<Period, typename To::period>;
    const long double v = static_cast<long double>(d.count()) * ratio::num / ratio::den;
    if (v != v) return To::zero();  // NaN
    if (v >= static_cast<long double>(std::numeric_limits<to_rep>::max()) * saturation_margin) return To::max();
    if (v <= static_cast<long double>(std::numeric_limits<to_rep>::min()) * saturation_margin) return To::min();
    return std::chrono::duration_cast<To>(d);
  } else {
    using ratio = std::ratio_divide<Period, typename To::period>;
    using wide = std::common_type_t<to_rep, Rep, std::intmax_t>;
    constexpr wide to_max = static_cast<wide>(std::numeric_limits<to_rep>::max());
    constexpr wide to_min = static_cast<wide>(std::numeric_limits<to_rep>::min());
    const wide count = static_cast<wide>(d.count());
    if constexpr (ratio::den == 1) {
      // Multiplies by num: the largest counts that survive it.
      constexpr wide num = static_cast<wide>(ratio::num);
      if (count > to_max / num) return To::max();
      if (count < to_min / num) return To::min();
      return To(static_cast<to_rep>(count * num));
    } else if constexpr (ratio::num == 1) {
      // Divides by den: only a narrower target rep can overflow.
      const wide q = count / static_cast<wide>(ratio::den);
      if (q > to_max) return To::max();
      if (q < to_min) return To::min();
      return To(static_cast<to_rep>(q));
    } else {
      // Both (an unusual clock period): decide in long double with a safety margin, so a value
      // within rounding distance of the limit saturates rather than overflows; then convert in
      // two steps that cannot overflow on the way (count = q * den + r).
      const long double v = static_cast<long double>(count) * ratio::num / ratio::den;
      if (v >= static_cast<long double>(to_max) * saturation_margin) return To::max();
      if (v <= static_cast<long double>(to_min) * saturation_margin) return To::min();
      constexpr wide num = static_cast<wide>(ratio::num);
      constexpr wide den = static_cast<wide>(ratio::den);
      return To(static_cast<to_rep>((count / den) * num + (count % den) * num / den));
    }
  }
}

/// `d` in `To`, rounded up (like `std::chrono::ceil`) and saturating.
///
///     saturating_ceil<std::chrono::milliseconds>(std::chrono::microseconds(1500)) == 2ms
template <class To, class Rep, class Period>
constexpr To saturating_ceil(std::chrono::duration<Rep, Period> d) noexcept {
  using from = std::chrono::duration<Rep, Period>;
  To t = saturating_duration_cast<To>(d);
  if (t != To::max() && saturating_duration_cast<from>(t) < d) t += To(1);
  return t;
}

/// `a + b`, saturating at the duration's limits.
template <class Rep, class Period>
constexpr std::chrono::duration<Rep, Period> saturating_add(std::chrono::duration<Rep, Period> a,
                                                            std::chrono::duration<Rep, Period> b) noexcept {
  using dur = std::chrono::duration<Rep, Period>;
  if constexpr (std::is_integral_v<Rep>) {
    if (b > dur::zero() && a > dur::max() - b) return dur::max();
    if (b < dur::zero() && a < dur::min() - b) return dur::min();
  }
  return a + b;
}

/// `a - b`, saturating at the duration's limits.
template <class Rep, class Period>
constexpr std::chrono::duration<Rep, Period> saturating_sub(std::chrono::duration<Rep, Period> a,
                                                            std::chrono::duration<Rep, Period> b) noexcept {
  using dur = std::chrono::duration<Rep, Period>;
  if constexpr (std::is_integral_v<Rep>) {
    if (b < dur::zero() && a > dur::max() + b) return dur::max();
    if (b > dur::zero() && a < dur::min() + b) return dur::min();
  }
  return a - b;
}

/// `t + d` for any duration `d`, saturating at `time_point::max()` (and `min()` for a negative
/// `d`): a deadline that does not fit means "never". A `d` that reaches the limits of the
/// clock's duration counts as infinite, whatever `t` is.
///
///     saturating_add(steady_clock::now(), milliseconds::max()) == steady_clock::time_point::max()
template <class Clock, class Duration, class Rep, class Period>
constexpr std::chrono::time_point<Clock, Duration> saturating_add(std::chrono::time_point<Clock, Duration> t,
                                                                  std::chrono::duration<Rep, Period> d) noexcept {
  using time_point = std::chrono::time_point<Clock, Duration>;
  const Duration step = saturating_duration_cast<Duration>(d);
  if (step == Duration::max()) return time_point::max();
  if (step == Duration::min()) return time_point::min();
  return time_point(saturating_add(t.time_since_epoch(), step));
}

/// `t - d`, saturating at `time_point::min()` (and `max()` for a negative `d`); a `d` that
/// reaches the limits of the clock's duration counts as infinite.
///
///     saturating_sub(now, milliseconds::max()) == time_point::min()  // "since the beginning"
template <class Clock, class Duration, class Rep, class Period>
constexpr std::chrono::time_point<Clock, Duration> saturating_sub(std::chrono::time_point<Clock, Duration> t,
                                                                  std::chrono::duration<Rep, Period> d) noexcept {
  using time_point = std::chrono::time_point<Clock, Duration>;
  const Duration step = saturating_duration_cast<Duration>(d);
  if (step == Duration::max()) return time_point::min();
  if (step == Duration::min()) return time_point::max();
  return time_point(saturating_sub(t.time_since_epoch(), step));
}

/// `a - b` between two time points of one clock, saturating at the duration's limits.
template <class Clock, class Duration>
constexpr Duration saturating_sub(std::chrono::time_point<Clock, Duration> a,
                                  std::chrono::time_point<Clock, Duration> b) noexcept {
  return saturating_sub(a.time_since_epoch(), b.time_since_epoch());
}

/// `Clock::now() + d`, saturating: the deadline of a timeout that starts now.
///
///     const auto deadline = saturating_deadline<std::chrono::steady_clock>(options.timeout);
template <class Clock, class Rep, class Period>
typename Clock::time_point saturating_deadline(std::chrono::duration<Rep, Period> d) {
  return saturating_add(Clock::now(), d);
}

/// The longest a single condition-variable wait sleeps. Waits for later deadlines wake up once a
/// year and go back to sleep, which keeps the standard library's own deadline arithmetic (other
/// clocks, timespec conversion) far away from overflow.
inline constexpr std::chrono::hours max_single_wait{24 * 365};

/// One wait on `cv` until `deadline`, a notification or a spurious wake-up, but never longer
/// than `max_single_wait`. For `steady_clock`/`system_clock` time points; callers loop.
template <class Clock, class Duration>
void wait_until_capped(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                       std::chrono::time_point<Clock, Duration> deadline) {
  static_assert(std::is_same_v<Duration, typename Clock::duration>, "use the clock's own time_point");
  const auto cap = saturating_add(Clock::now(), max_single_wait);
  cv.wait_until(lock, deadline < cap ? deadline : cap);
}

/// True for the clocks a condition variable can wait on directly.
template <class Clock>
inline constexpr bool is_standard_clock =
    std::is_same_v<Clock, std::chrono::steady_clock> || std::is_same_v<Clock, std::chrono::system_clock>;

/// One wait on `cv` until notified, a spurious wake-up, or `deadline` on `Clock` (callers loop and
/// re-check). A standard clock's deadline is waited for directly (capped as in
/// `wait_until_capped`); any other clock (a hand-stepped test clock) cannot wake a condition
/// variable, so it is re-read after at most `poll` of real time and moving it forward ends the
/// wait promptly. The one place where code depends on which clock it runs on.
template <class Clock>
void wait_step(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, typename Clock::time_point deadline,
               std::chrono::nanoseconds poll = std::chrono::milliseconds(1)) {
  if constexpr (is_standard_clock<Clock>) {
    wait_until_capped(cv, lock, deadline);
  } else {
    const auto left = saturating_duration_cast<std::chrono::nanoseconds>(saturating_sub(deadline, Clock::now()));
    cv.wait_for(lock, left < std::chrono::nanoseconds::zero() ? std::chrono::nanoseconds::zero()
                                                               : (left < poll ? left : poll));
  }
}

/// Waits on `cv` until `ready()` holds or `deadline` passes (however far away, even
/// `time_point::max()`); returns `ready()`, like `condition_variable::wait_until` with a
/// predicate.
///
///     bool done = wait_until_capped(cv, lock, deadline, [&] { return done_; });
template <class Clock, class Duration, class Ready>
bool wait_until_capped(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                       std::chrono::time_point<Clock, Duration> deadline, Ready&& ready) {
  static_assert(std::is_same_v<Duration, typename Clock::duration>, "use the clock's own time_point");
  while (!ready()) {
    if (Clock::now() >= deadline) return ready();
    wait_until_capped(cv, lock, deadline);
  }
  return true;
}

/// `wait_until_capped` for a relative timeout, which may be as large as `milliseconds::max()`.
///
///     wait_for_capped(cv, lock, options.interval, [&] { return stopping_; });
template <class Rep, class Period, class Ready>
bool wait_for_capped(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                     std::chrono::duration<Rep, Period> timeout, Ready&& ready) {
  return wait_until_capped(cv, lock, saturating_deadline<std::chrono::steady_clock>(timeout),
                           std::forward<Ready>(ready));
}

}  // namespace kysera::infra::detail
