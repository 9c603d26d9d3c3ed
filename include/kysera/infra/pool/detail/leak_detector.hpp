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
#include <thread>

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
struct alignas(64) lease_record {
  std::atomic<std::uint64_t> stamp{0};  // the slot's state word of the lease recorded
  site_cell<> where;
  std::atomic<std::thread::id> thread{};
};

/// Thread-safe: this thread's id, read once (then a thread-local load, not a library call).
inline std::thread::id this_thread_id() noexcept {
  static thread_local const std::thread::id id = std::this_thread::get_id();
  return id;
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
  /// last_checkout was set, before this call). Three plain stores and a compiler-only fence on
  /// x86.
  void note(std::size_t index, std::uint64_t state,
            const infra::detail::source_location& where) noexcept {
    lease_record& r = records_[index];
    // Orders the state change before the stores below: a reader that sees any of them sees the
    // new state word too, so it cannot take them for the previous lease's.
    std::atomic_thread_fence(std::memory_order_release);
    r.where.store(where);
    r.thread.store(this_thread_id(), std::memory_order_relaxed);
    r.stamp.store(state, std::memory_order_release);
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
    if (r.stamp.load(std::memory_order_acquire) != state) return {};  // not noted yet
    const auto leased = s.last_checkout();
    const lease_site where = r.where.load();
    const auto thread = r.thread.load(std::memory_order_relaxed);
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
        << " (" << (function ? function : "?") << ") by thread " << thread
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
