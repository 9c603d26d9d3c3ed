#pragma once
/// \file
/// `manual_clock`: a hand-stepped clock for tests. It models the standard Clock requirements
/// (static now()), so it can be passed wherever a module takes a Clock template parameter; time
/// moves only by advance(). One clock per process (static state): reset() at the start of each
/// test. Thread-safe.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>

namespace kysera::infra::testing {

/// Thread-safe: a process-wide hand-stepped clock (see the file comment).
struct manual_clock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<manual_clock>;
  static constexpr bool is_steady = true;

  static time_point now() noexcept { return time_point(duration(ticks().load())); }

  /// Moves time forward and wakes anyone blocked in wait_until_at_least().
  static void advance(duration d) noexcept {
    {
      std::lock_guard lock(mutex());
      ticks().fetch_add(d.count());
    }
    cv().notify_all();
  }

  /// Back to the epoch; call at the start of a test.
  static void reset() noexcept {
    {
      std::lock_guard lock(mutex());
      ticks().store(1'000'000'000'000);  // not zero, so "never" and "now" differ
    }
    cv().notify_all();
  }

  /// Blocks the calling thread until the clock reaches `t` (used by fake sleepers).
  static void wait_until_at_least(time_point t) {
    std::unique_lock lock(mutex());
    cv().wait(lock, [&] { return now() >= t; });
  }

 private:
  static std::atomic<rep>& ticks() noexcept {
    static std::atomic<rep> value{1'000'000'000'000};
    return value;
  }
  static std::mutex& mutex() noexcept {
    static std::mutex m;
    return m;
  }
  static std::condition_variable& cv() noexcept {
    static std::condition_variable c;
    return c;
  }
};

}  // namespace kysera::infra::testing
