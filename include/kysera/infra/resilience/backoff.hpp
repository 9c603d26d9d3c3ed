#pragma once
/// \file
/// Backoff arithmetic for retries, and the per-thread random source for jitter.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <thread>

#include "../detail/random.hpp"

namespace kysera::infra::resilience {

/// The wait before the attempt that follows failed attempt `attempt` (1-based).
///
/// With `exponential`: base = min(delay * 2^(attempt-1), max_delay); the result is drawn
/// uniformly from [base * (1 - jitter), min(base * (1 + jitter), max_delay)] by `unit` in [0, 1),
/// so the cap holds after jitter. Without: `delay`, no jitter. Expects valid inputs (0 <= delay
/// <= max_delay, jitter in [0, 1], attempt >= 1); `with_retry` checks them first.
///
///     backoff_delay(100ms, 500ms, true, 0.0, 3, 0.5);  // 400ms
inline std::chrono::milliseconds backoff_delay(std::chrono::milliseconds delay,
                                               std::chrono::milliseconds max_delay,
                                               bool exponential, double jitter, int attempt,
                                               double unit) noexcept {
  if (!exponential) return delay;
  const double cap = static_cast<double>(max_delay.count());
  // ldexp saturates to infinity for huge attempts; min() then picks the cap.
  const double base = std::min(static_cast<double>(delay.count()) * std::ldexp(1.0, attempt - 1), cap);
  const double low = base * (1.0 - jitter);
  const double high = std::min(base * (1.0 + jitter), cap);
  const double value = low + (high - low) * unit;
  const auto ms = static_cast<std::chrono::milliseconds::rep>(std::llround(value));
  return std::chrono::milliseconds(std::clamp<std::chrono::milliseconds::rep>(ms, 0, max_delay.count()));
}

namespace detail {

inline std::uint64_t thread_seed() noexcept {
  static std::atomic<std::uint64_t> threads{0};
  std::uint64_t seed =
      static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  seed ^= static_cast<std::uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id())) *
          0xff51afd7ed558ccdULL;
  seed ^= threads.fetch_add(1, std::memory_order_relaxed) * 0xc4ceb9fe1a85ec53ULL;
  return seed;
}

/// A uniform draw in [0, 1) from this thread's own generator: no lock, nothing shared.
inline double thread_unit_random() noexcept {
  thread_local std::uint64_t state = thread_seed();
  return infra::detail::unit_interval(infra::detail::splitmix64(state));
}

}  // namespace detail
}  // namespace kysera::infra::resilience
