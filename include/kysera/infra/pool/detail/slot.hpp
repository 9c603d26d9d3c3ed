#pragma once
/// \file
/// A pool slot: one place for a connection, with a lock-free state word that says who owns it.

#include <atomic>
#include <cstdint>

namespace kysera::infra::pool::detail {

/// A slot's state word: a version (bumped on every change, so a double collect of all slots
/// detects any change in between) and a tag.
enum class slot_tag : std::uint64_t {
  empty = 0,     ///< no connection: free capacity
  creating = 1,  ///< reserved for a connection the factory is making
  idle = 2,      ///< open, free to lease
  reserved = 3,  ///< open and not leased, held by the housekeeper for a check (counts as idle)
  in_use = 4,    ///< leased (or being validated / handed over)
  closing = 5,   ///< being closed; still occupies capacity until close() returns
};

constexpr std::uint64_t slot_tag_mask = 7;

constexpr slot_tag tag_of(std::uint64_t state) noexcept {
  return static_cast<slot_tag>(state & slot_tag_mask);
}

/// The word after `state` with tag `tag`: the version goes up by one.
constexpr std::uint64_t next_state(std::uint64_t state, slot_tag tag) noexcept {
  return (state & ~slot_tag_mask) + (slot_tag_mask + 1) + static_cast<std::uint64_t>(tag);
}

/// Not thread-safe by itself: `state` is the only field anyone but the owner touches (with
/// atomics); the rest belongs to whoever claimed the slot (creating / in_use / reserved /
/// closing) and passes to the next owner by the release store of `state` and the acquire CAS
/// that claims it. One cache line, so threads working on neighbouring slots do not share one.
///
/// The connection is held as `void*` so the slot (and all the pool logic over slots) does not
/// depend on the connection type; `connection_pool<Connection>` alone creates, casts and
/// deletes it.
template <class Clock>
struct alignas(64) slot {
  std::atomic<std::uint64_t> state{0};
  void* connection = nullptr;                  // a Connection*, owned by the pool
  // When last handed out (or opened), in Clock ticks: written by the owner with a release store
  // after it claimed the slot, so leak detection can read it back (see lease_record).
  std::atomic<typename Clock::rep> checkout_ticks{0};
  typename Clock::time_point expires_at{};
  typename Clock::time_point leased_at{};      // when handed out, kept only with record_timings
  bool proven = false;  // opened or pinged by the acquire that handed it out
  // Written only by the owner (plain load + store, no RMW); read by get_statistics.
  std::atomic<std::uint64_t> acquired{0};

  /// By the owner: when it was last handed out (or opened).
  typename Clock::time_point last_checkout() const noexcept {
    return typename Clock::time_point(
        typename Clock::duration(checkout_ticks.load(std::memory_order_relaxed)));
  }
  /// By the owner, after claiming the slot: handed out (or opened) at `t`. A release store (a
  /// plain store on x86): whoever reads `t` back and then fences sees the claim too.
  void set_last_checkout(typename Clock::time_point t) noexcept {
    checkout_ticks.store(t.time_since_epoch().count(), std::memory_order_release);
  }

  /// By the owner: one more lease handed out.
  void count_acquired() noexcept {
    acquired.store(acquired.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

/// Not thread-safe: what the housekeeper saw of a slot on its last pass (under its own mutex).
template <class Clock>
struct seen_idle {
  std::uint64_t state = ~std::uint64_t{0};
  typename Clock::time_point since{};
};

}  // namespace kysera::infra::pool::detail
