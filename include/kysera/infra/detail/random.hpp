#pragma once
/// \file
/// splitmix64 (Steele, Lea and Flood's generator), the one random mechanism every module uses:
/// lifetime jitter in the pool, retry jitter in resilience. Small, fast and good enough for
/// spreading timers apart; not for anything secret.

#include <atomic>
#include <cstdint>

namespace kysera::infra::detail {

/// The generator's increment (2^64 / golden ratio, odd).
inline constexpr std::uint64_t splitmix64_gamma = 0x9e3779b97f4a7c15ULL;

/// splitmix64's output function: mixes one state value into a well-spread 64-bit word.
constexpr std::uint64_t splitmix64_mix(std::uint64_t z) noexcept {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// Advances `state` and returns the next word. Not thread-safe: one `state` per thread.
constexpr std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  return splitmix64_mix(state += splitmix64_gamma);
}

/// The top 53 bits of `bits` as a double, uniform in [0, 1).
constexpr double unit_interval(std::uint64_t bits) noexcept {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

/// Thread-safe: splitmix64 over an atomic state, so any thread may draw from one shared generator
/// without a lock (each draw is one relaxed fetch_add).
class shared_splitmix64 {
 public:
  explicit shared_splitmix64(std::uint64_t seed) noexcept : state_(seed) {}

  /// The next word.
  std::uint64_t next() noexcept {
    return splitmix64_mix(state_.fetch_add(splitmix64_gamma, std::memory_order_relaxed) +
                          splitmix64_gamma);
  }
  /// Uniform in [0, 1).
  double next_unit() noexcept { return unit_interval(next()); }

 private:
  std::atomic<std::uint64_t> state_;
};

}  // namespace kysera::infra::detail
