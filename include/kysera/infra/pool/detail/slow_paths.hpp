#pragma once
/// \file
/// The parts of `pool_core<Clock>` that block or open connections: an acquire that found no idle
/// connection (it queues, or opens one), and the housekeeping pass. Included by pool_core.hpp.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>

#include "../../detail/time.hpp"
#include "../../error.hpp"
#include "../../logger.hpp"
#include "pool_core.hpp"

namespace kysera::infra::pool::detail {

template <class Clock>
auto pool_core<Clock>::acquire_slow(std::chrono::milliseconds timeout, bool throw_if_exhausted)
    -> slot_type* {
  caller_guard inside(*this);  // destroyed last
  wait_recorder<Clock> recorder(counters_);
  const auto deadline = infra::detail::saturating_add(recorder.start(), timeout);
  std::unique_lock lock(mutex_);
  inside.count();
  for (;;) {
    if (flags_.load(std::memory_order_relaxed) & closed_bit) throw_closed();
    slot_type* s = nullptr;
    bool create = false;
    if (queue_.empty()) {  // nobody queued: take what there is
      s = claim_idle();
      if (!s) {
        connect_verdict verdict;
        s = claim_connect_locked(verdict);
        create = s != nullptr;
        if (verdict == connect_verdict::fail) {
          counters_.count_throttled();
          throw throttle_.throttled_error(Clock::now());
        }
      }
    }
    if (!s) {
      if (timeout.count() == 0 || Clock::now() >= deadline) {
        if (!throw_if_exhausted) return nullptr;
        recorder.finish();
        counters_.count_timed_out();
        auto message = exhausted_message(timeout, metrics_locked(), get_statistics());
        lock.unlock();
        throw database_error(errc::pool_exhausted, message, "pool");
      }
      if (options_.max_waiters != 0 && queue_.size() >= options_.max_waiters) {
        if (!throw_if_exhausted) return nullptr;
        counters_.count_rejected();
        auto message = rejected_message(metrics_locked());
        lock.unlock();
        throw pool_rejected_error(errc::pool_exhausted, message, "pool");
      }
      recorder.count();
      if (throttle_.connecting() > 0 && any_empty()) counters_.count_connect_limited();
      waiter w;
      enqueue_locked(w);
      dispatch_locked();
      while (!w.done) {
        if (Clock::now() >= deadline) break;
        wait_step(lock, w.cv, deadline);
      }
      if (!w.done) {
        auto m = metrics_locked();  // still counts this caller as waiting
        unlink_locked(w);
        recorder.finish();
        counters_.count_timed_out();
        auto message = exhausted_message(timeout, m, get_statistics());
        lock.unlock();
        throw database_error(errc::pool_exhausted, message, "pool");
      }
      if (w.closed) throw_closed();
      if (w.throttled) {
        counters_.count_throttled();
        throw throttle_.throttled_error(Clock::now());
      }
      s = &slots_[w.granted];
      create = w.create;
    }
    lock.unlock();
    if (create) {
      recorder.count();
      return create_into(*s);
    }
    if (check_out(*s)) return s;
    lock.lock();
  }
}

// `s` is reserved (creating) for the caller. Opens a connection into it and leases it.
// Under the lock. Queued callers, grants and slow-path transitions are frozen by the lock; the
// gate bit sends new fast-path acquires to the (locked) slow path, so after at most one
// in-flight change per thread two successive reads of every slot agree: that state existed at
// one instant, and it is what we count.
template <class Clock>
pool_metrics pool_core<Clock>::metrics_locked() const noexcept {
  flags_.fetch_or(gate_bit, std::memory_order_seq_cst);
  std::uint64_t* a = scratch_.get();
  std::uint64_t* b = a + size_;
  for (std::size_t i = 0; i < size_; ++i) a[i] = slots_[i].state.load(std::memory_order_seq_cst);
  for (;;) {
    bool same = true;
    for (std::size_t i = 0; i < size_; ++i) {
      b[i] = slots_[i].state.load(std::memory_order_seq_cst);
      same = same && b[i] == a[i];
    }
    if (same) break;
    std::swap(a, b);
  }
  flags_.fetch_and(~gate_bit, std::memory_order_seq_cst);
  pool_metrics m;
  for (std::size_t i = 0; i < size_; ++i) {
    switch (tag_of(b[i])) {
      case slot_tag::idle:
      case slot_tag::reserved:
        ++m.idle;
        break;
      case slot_tag::in_use:
        ++m.active;
        break;
      default:
        break;
    }
  }
  m.total = m.idle + m.active;
  m.waiting = queue_.size();
  m.max = size_;
  return m;
}

template <class Clock>
auto pool_core<Clock>::create_into(slot_type& s) -> slot_type* {
  void* c = nullptr;
  try {
    c = make_connection();
  } catch (...) {
    abandon_creating(s, connect_error::current());
    throw;
  }
  connect_succeeded();
  install(s, c);
  if (is_closed()) {
    discard(s, close_reason::pool_closed);
    throw_closed();
  }
  s.count_acquired();
  const auto st = s.state.load(std::memory_order_relaxed);
  s.state.store(next_state(st, slot_tag::in_use), std::memory_order_release);
  return &s;
}

// A new connection from the factory (never null), counted, and timed when the pool records
// timings (create_time takes failures too).
template <class Clock>
void* pool_core<Clock>::make_connection() {
  const auto start = timings_ ? Clock::now() : typename Clock::time_point{};
  try {
    void* c = open_connection();
    if (!c)
      throw database_error(errc::backend_error,
                           "connection pool: the factory returned no connection", "pool");
    if (timings_) timings_->record_create(Clock::now() - start);
    counters_.count_created();
    return c;
  } catch (...) {
    if (timings_) timings_->record_create(Clock::now() - start);
    counters_.count_create_failed();
    throw;
  }
}

// `s` is reserved (creating) for the caller: puts `c` in it, with its expiry.
template <class Clock>
void pool_core<Clock>::install(slot_type& s, void* c) noexcept {
  const auto now = Clock::now();
  s.connection = c;
  s.set_last_checkout(now);
  s.proven = true;
  if (options_.max_lifetime.count() == 0 || max_lifetime_ == Clock::duration::max()) {
    s.expires_at = Clock::time_point::max();  // never; a lifetime beyond the clock is never too
  } else {
    auto life = max_lifetime_;
    if (options_.max_lifetime_jitter > 0) {
      auto cut =
          static_cast<double>(life.count()) * options_.max_lifetime_jitter * jitter_.next_unit();
      life -= typename Clock::duration(static_cast<typename Clock::rep>(cut));
    }
    s.expires_at = infra::detail::saturating_add(now, life);
  }
}

template <class Clock>
void pool_core<Clock>::warm_up(std::chrono::milliseconds timeout) {
  caller_guard inside(*this);  // destroyed last
  const auto deadline = infra::detail::saturating_add(Clock::now(), timeout);
  const std::size_t want = std::max<std::size_t>(options_.min_idle, 1);
  std::condition_variable pause;  // nobody notifies it: waits are steps to the next look
  std::unique_lock lock(mutex_);
  inside.count();
  for (;;) {
    if (flags_.load(std::memory_order_relaxed) & closed_bit) throw_closed();
    if (open_count() >= want) return;
    connect_verdict verdict;
    if (slot_type* s = claim_connect_locked(verdict)) {
      lock.unlock();
      void* c = nullptr;
      try {
        c = make_connection();
      } catch (...) {
        abandon_creating(*s, connect_error::current());
        if (Clock::now() >= deadline) throw;
        lock.lock();
        continue;
      }
      connect_succeeded();
      install(*s, c);
      if (is_closed()) {
        discard(*s, close_reason::pool_closed);
        throw_closed();
      }
      publish_idle(*s);
      lock.lock();
      continue;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      if (throttle_.has_failed()) throw throttle_.last_error();
      throw database_error(errc::pool_exhausted,
                           "connection pool: warm_up could not open " + std::to_string(want) +
                               " connections within " + std::to_string(timeout.count()) + " ms",
                           "pool");
    }
    // In a backoff window: sleep to its end; else (connects in flight, or no room) look again
    // shortly.
    auto until = verdict == connect_verdict::fail
                     ? throttle_.window_end()
                     : infra::detail::saturating_add(now, std::chrono::milliseconds(5));
    if (deadline < until) until = deadline;
    wait_step(lock, pause, until);
  }
}

template <class Clock>
bool pool_core<Clock>::close_for(std::chrono::milliseconds timeout) noexcept {
  close();
  const auto deadline = infra::detail::saturating_add(Clock::now(), timeout);
  std::unique_lock lock(mutex_);
  for (;;) {
    if (all_empty()) return true;
    if (Clock::now() >= deadline) return false;
    wait_step(lock, drained_cv_, deadline);
  }
}

template <class Clock>
void pool_core<Clock>::report_leaks(typename Clock::time_point now) noexcept {
  for (std::size_t i = 0; i < size_; ++i) {
    const auto st = slots_[i].state.load(std::memory_order_acquire);
    if (tag_of(st) != slot_tag::in_use) continue;
    try {
      std::string warning = leaks_.scan(i, st, now, slots_[i]);
      if (warning.empty()) continue;
      counters_.count_leaked();
      log(log_level::warn, warning);
    } catch (...) {
      // No memory for the message: the next pass tries again.
    }
  }
}

template <class Clock>
void pool_core<Clock>::maintain() noexcept {
  std::lock_guard maintaining(maintain_mutex_);
  if (is_closed()) return;
  const auto now = Clock::now();
  if (leaks_.enabled()) report_leaks(now);
  std::size_t idle = 0;
  for (std::size_t i = 0; i < size_; ++i) {
    if (tag_of(slots_[i].state.load(std::memory_order_relaxed)) == slot_tag::idle) ++idle;
  }
  for (std::size_t i = 0; i < size_ && !is_closed(); ++i) {
    slot_type& s = slots_[i];
    auto st = s.state.load(std::memory_order_relaxed);
    if (tag_of(st) != slot_tag::idle) continue;
    // Versions only grow, so an unchanged word means nobody leased it since the last pass.
    const bool seen_before = seen_[i].state == st;
    const auto reserved = next_state(st, slot_tag::reserved);
    if (!s.state.compare_exchange_strong(st, reserved, std::memory_order_acquire,
                                         std::memory_order_relaxed))
      continue;
    if (now >= s.expires_at) {
      discard(s, close_reason::lifetime);
      if (idle > 0) --idle;
    } else if (options_.idle_timeout.count() > 0 && seen_before &&
               now - seen_[i].since >= idle_timeout_ && idle > options_.min_idle) {
      discard(s, close_reason::idle);
      --idle;
    } else {
      if (!seen_before) seen_[i].since = now;
      seen_[i].state = next_state(reserved, slot_tag::idle);
      publish_idle(s);
    }
  }
  // Top up min_idle, one connection at a time, never past max_size.
  while (!is_closed()) {
    slot_type* s = nullptr;
    {
      std::lock_guard lock(mutex_);
      std::size_t idle_now = 0;
      for (std::size_t i = 0; i < size_; ++i) {
        auto t = tag_of(slots_[i].state.load(std::memory_order_relaxed));
        if (t == slot_tag::idle || t == slot_tag::reserved) ++idle_now;
      }
      if (idle_now >= options_.min_idle || is_closed()) break;
      connect_verdict verdict;
      s = claim_connect_locked(verdict);  // not in a backoff window, nor past max_connecting
    }
    if (!s) break;
    void* c = nullptr;
    try {
      c = make_connection();
    } catch (...) {
      auto error = connect_error::current();
      log(log_level::warn,
          "connection pool: could not open a connection for min_idle: " + error.message);
      abandon_creating(*s, std::move(error));
      break;
    }
    connect_succeeded();
    install(*s, c);
    if (is_closed()) {
      discard(*s, close_reason::pool_closed);
      break;
    }
    publish_idle(*s);
  }
}

}  // namespace kysera::infra::pool::detail
