#pragma once
/// \file
/// `leak_detector<Clock>`: where and by whom each lease was taken, written by the lease's owner
/// when `leak_detection_threshold` is set, and scanned by the housekeeper, which reports a lease
/// held past the threshold once.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sstream>
#include <string>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "../../detail/source_location.hpp"
#include "../../detail/time.hpp"
#include "../options.hpp"
#include "config.hpp"
#include "slot.hpp"

namespace kysera::infra::pool::detail {

/// Where a lease was taken, as the housekeeper reads it back.
struct lease_site {
  const char* file = nullptr;
  const char* function = nullptr;
  std::uint_least32_t line = 0;
};

/// Thread-safe (relaxed atomics): a `source_location` in one lock-free cell where it is a single
/// pointer (libstdc++, libc++), else in its three parts.
template <bool Whole = sizeof(infra::detail::source_location) == sizeof(void*)>
class site_cell {
 public:
  void store(const infra::detail::source_location& where) noexcept {
    where_.store(where, std::memory_order_relaxed);
  }
  lease_site load() const noexcept {
    const auto where = where_.load(std::memory_order_relaxed);
    return {where.file_name(), where.function_name(), where.line()};
  }

 private:
  std::atomic<infra::detail::source_location> where_{};
};

template <>
class site_cell<false> {
 public:
  void store(const infra::detail::source_location& where) noexcept {
    file_.store(where.file_name(), std::memory_order_relaxed);
    function_.store(where.function_name(), std::memory_order_relaxed);
    line_.store(where.line(), std::memory_order_relaxed);
  }
  lease_site load() const noexcept {
    return {file_.load(std::memory_order_relaxed), function_.load(std::memory_order_relaxed),
            line_.load(std::memory_order_relaxed)};
  }

 private:
  std::atomic<const char*> file_{nullptr};
  std::atomic<const char*> function_{nullptr};
  std::atomic<std::uint_least32_t> line_{0};
};

/// Thread-safe as used: one owner writes, the housekeeper reads, validating what it read
/// against `stamp` and the slot's state word (a seqlock whose sequence is the state word). Every
/// field is atomic, so a read that races a new lease is detected, never undefined. When the
/// lease began is not here: it is the slot's `last_checkout`, which the check-out already wrote.
/// The stamp holds the low half of the state word (its version changes with every lease, and
/// every lease rewrites the record, so the half never matches a record left from an earlier
/// lease) and, in the high half, the holding thread's number (`this_thread_number`).
struct alignas(64) lease_record {
  std::atomic<std::uint64_t> stamp{0};
  site_cell<> where;
};

/// Thread-safe. A number for the calling thread as operators see it: on Linux the kernel's thread
/// id (what `top -H`, gdb, /proc/PID/task and spdlog's `%t` show); elsewhere 1, 2, ... in the
/// order threads first ask. Read once per thread, then a thread-local load.
inline std::uint32_t this_thread_number() noexcept {
  static thread_local std::uint32_t number = 0;  // constant-initialised: no guard
  if (KYSERA_INFRA_POOL_UNLIKELY(number == 0)) {
#if defined(__linux__)
    number = static_cast<std::uint32_t>(::syscall(SYS_gettid));
#else
    static std::atomic<std::uint32_t> next{1};
    number = next.fetch_add(1, std::memory_order_relaxed);
#endif
  }
  return number;
}

/// The stamp of a lease with state word `state` taken by thread `thread`, and its parts.
constexpr std::uint64_t lease_stamp(std::uint64_t state, std::uint32_t thread) noexcept {
  return (state & 0xffffffffu) | (static_cast<std::uint64_t>(thread) << 32);
}
constexpr bool stamp_matches(std::uint64_t stamp, std::uint64_t state) noexcept {
  return ((stamp ^ state) & 0xffffffffu) == 0;
}
constexpr std::uint32_t stamp_thread(std::uint64_t stamp) noexcept {
  return static_cast<std::uint32_t>(stamp >> 32);
}

/// Thread-safe as the pool uses it: `note` by a lease's owner, `scan` under the pool's
/// maintain mutex. Allocates nothing when leak detection is off.
template <class Clock>
class leak_detector {
 public:
  leak_detector(std::size_t size, std::chrono::milliseconds threshold)
      : records_(threshold.count() > 0 ? new lease_record[size] : nullptr),
        reported_(threshold.count() > 0 ? new std::uint64_t[size]() : nullptr),
        threshold_ms_(threshold),
        threshold_(infra::detail::saturating_duration_cast<typename Clock::duration>(threshold)) {}

  bool enabled() const noexcept { return records_ != nullptr; }

  /// By the owner of slot `index`, just leased (the slot's state word changed to `state`, and its
  /// last_checkout was set, before this call). Two plain stores and a compiler-only fence on x86.
  void note(std::size_t index, std::uint64_t state,
            const infra::detail::source_location& where) noexcept {
    lease_record& r = records_[index];
    // Orders the state change before the stores below: a reader that sees any of them sees the
    // new state word too, so it cannot take them for the previous lease's.
    std::atomic_thread_fence(std::memory_order_release);
    r.where.store(where);
    r.stamp.store(lease_stamp(state, this_thread_number()), std::memory_order_release);
  }

  /// Under the maintain mutex: `s`, slot `index`, is leased with state word `state`. Returns the
  /// warning to log when that lease is older than the threshold at `now` and was not reported yet
  /// (then it never is again), else an empty string.
  std::string scan(std::size_t index, std::uint64_t state, typename Clock::time_point now,
                   const slot<Clock>& s) {
    if (reported_[index] == state) return {};
    const lease_record& r = records_[index];
    // The stamp (a release store after the check-out's) makes this lease's last_checkout visible;
    // a newer one read here instead is caught by the state word below (written before it, and
    // the acquire fence pairs with that release store).
    const auto stamp = r.stamp.load(std::memory_order_acquire);
    if (!stamp_matches(stamp, state)) return {};  // not noted yet
    const auto leased = s.last_checkout();
    const lease_site where = r.where.load();
    std::atomic_thread_fence(std::memory_order_acquire);
    // Leased anew meanwhile: what was read may be torn.
    if (s.state.load(std::memory_order_relaxed) != state) return {};
    const char* file = where.file;
    const char* function = where.function;
    const auto line = where.line;
    const auto held = infra::detail::saturating_sub(now, leased);
    if (held < threshold_) return {};
    reported_[index] = state;
    std::ostringstream msg;
    msg << "connection pool: a connection acquired at " << (file ? file : "?") << ':' << line
        << " (" << (function ? function : "?") << ") by thread " << stamp_thread(stamp)
        << " has been held for "
        << std::chrono::duration_cast<std::chrono::milliseconds>(held).count()
        << " ms, longer than leak_detection_threshold (" << threshold_ms_.count()
        << " ms): possible leak";
    return msg.str();
  }

 private:
  const std::unique_ptr<lease_record[]> records_;
  const std::unique_ptr<std::uint64_t[]> reported_;  // the state word last reported, per slot
  const std::chrono::milliseconds threshold_ms_;
  const typename Clock::duration threshold_;
};

}  // namespace kysera::infra::pool::detail
