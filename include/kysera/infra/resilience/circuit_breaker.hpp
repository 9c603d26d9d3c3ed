#pragma once
/// \file
/// `circuit_breaker`: stop calling a failing dependency for a while, then probe it once.

#include <array>
#include <atomic>
#include <chrono>
#include <climits>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

#include "../detail/time.hpp"
#include "../error.hpp"
#include "../logger.hpp"

namespace kysera::infra::resilience {

enum class circuit_state { closed, open, half_open };

/// "closed", "open" or "half-open".
constexpr std::string_view to_string(circuit_state s) noexcept {
  switch (s) {
    case circuit_state::closed: return "closed";
    case circuit_state::open: return "open";
    case circuit_state::half_open: return "half-open";
  }
  return "unknown";
}

struct circuit_breaker_options {
  /// Consecutive failures that open the circuit (>= 1).
  int threshold = 5;
  /// How long the circuit stays open before one probe call may test recovery (>= 0). A value too
  /// large for the clock (milliseconds::max()) keeps it open until `reset()`.
  std::chrono::milliseconds reset_time{60000};
  /// Reported once per transition, in the order the transitions happened, never concurrently
  /// with itself and never under the breaker's lock. Called on a thread that is inside a breaker
  /// call (usually the one that caused the transition, or one that caused a later one while this
  /// one was being reported). Exceptions from it are logged and dropped: they never reach the
  /// caller.
  std::function<void(circuit_state new_state, circuit_state previous)> on_state_change{};
  /// Where exceptions thrown by `on_state_change` are logged; null means `default_logger()`.
  infra::logger* logger = nullptr;
};

/// A snapshot from `get_state()`.
struct circuit_breaker_state {
  circuit_state state = circuit_state::closed;
  /// Consecutive failures counted so far (threshold after `force_open()`).
  int failures = 0;
  /// Wall-clock time of the last counted failure; empty after construction and `reset()`.
  std::optional<std::chrono::system_clock::time_point> last_failure_time{};
};

/// A value type: calls a breaker has seen since it was made, as resilience4j counts them.
struct circuit_breaker_calls {
  std::uint64_t successful = 0;     ///< admitted calls that returned
  std::uint64_t failed = 0;         ///< admitted calls that threw
  std::uint64_t not_permitted = 0;  ///< calls rejected with `circuit_breaker_error`
  friend bool operator==(const circuit_breaker_calls&, const circuit_breaker_calls&) = default;
};

/// Immutable, safe to share between threads. Thrown instead of running the call when the
/// circuit is open or a probe is running. `code() == errc::circuit_open`.
///
///     catch (const circuit_breaker_error& e) { reply_503(e.retry_after()); }
class circuit_breaker_error : public std::system_error {
 public:
  /// `state`: open or half_open (a probe is running); `retry_after`: when the next probe is
  /// allowed (zero while one runs).
  circuit_breaker_error(circuit_state state, std::chrono::milliseconds retry_after)
      : std::system_error(make_error_code(errc::circuit_open)),
        message_(std::make_shared<const std::string>(make_message(state, retry_after))),
        state_(state),
        retry_after_(retry_after) {}

  /// "Circuit breaker is open; next probe in N ms" or "Circuit breaker is testing recovery
  /// (half-open); call rejected".
  const char* what() const noexcept override { return message_->c_str(); }
  circuit_state state() const noexcept { return state_; }
  std::chrono::milliseconds retry_after() const noexcept { return retry_after_; }

 private:
  static std::string make_message(circuit_state state, std::chrono::milliseconds retry_after) {
    if (state == circuit_state::half_open) {
      return "Circuit breaker is testing recovery (half-open); call rejected";
    }
    return "Circuit breaker is open; next probe in " + std::to_string(retry_after.count()) + " ms";
  }

  std::shared_ptr<const std::string> message_;  // shared: copying an exception must not throw
  circuit_state state_;
  std::chrono::milliseconds retry_after_;
};

namespace detail {

/// A value type (the breaker keeps one in an atomic). The breaker's lock-free word: bits 0-1 the state, bit 2 "closed with failures counted",
/// bits 3-63 the epoch, which every transition (and reset/force_open) advances. A call carries
/// the word it was admitted with, so its outcome counts only if the epoch is still the same.
struct breaker_word {
  static constexpr std::uint64_t state_mask = 3;
  static constexpr std::uint64_t failures_bit = 4;

  static constexpr circuit_state state(std::uint64_t w) noexcept {
    return static_cast<circuit_state>(w & state_mask);
  }
  static constexpr std::uint64_t epoch(std::uint64_t w) noexcept { return w >> 3; }
  /// The next epoch in state `s`, no failures counted.
  static constexpr std::uint64_t advance(std::uint64_t w, circuit_state s) noexcept {
    return ((w | 7) + 1) | static_cast<std::uint64_t>(s);
  }
};

/// Call counts spread over cache lines by thread, so threads sharing a breaker do not write the
/// same line on every call. Each count is a relaxed atomic addition; reads sum the shards.
class call_counts {
 public:
  static constexpr std::size_t shards = 8;

  void count(bool succeeded) noexcept {
    auto& s = shards_[shard()];
    (succeeded ? s.successful : s.failed).fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t successful() const noexcept { return sum(&shard_counts::successful); }
  std::uint64_t failed() const noexcept { return sum(&shard_counts::failed); }

 private:
  struct alignas(64) shard_counts {
    std::atomic<std::uint64_t> successful{0};
    std::atomic<std::uint64_t> failed{0};
  };
  static std::size_t shard() noexcept {
    // The address of a thread-local object differs per thread and costs no call to compute.
    static thread_local const char marker = 0;
    const auto a = reinterpret_cast<std::uintptr_t>(&marker);
    return static_cast<std::size_t>((a >> 6) ^ (a >> 12) ^ (a >> 20)) % shards;
  }
  std::uint64_t sum(std::atomic<std::uint64_t> shard_counts::*m) const noexcept {
    std::uint64_t n = 0;
    for (const auto& s : shards_) n += (s.*m).load(std::memory_order_relaxed);
    return n;
  }
  std::array<shard_counts, shards> shards_{};
};

inline void validate_breaker(int threshold, std::chrono::milliseconds reset_time) {
  if (threshold < 1) {
    throw std::invalid_argument("circuit_breaker_options.threshold must be at least 1 (got " +
                                std::to_string(threshold) + ")");
  }
  if (reset_time.count() < 0) {
    throw std::invalid_argument("circuit_breaker_options.reset_time must not be negative (got " +
                                std::to_string(reset_time.count()) + " ms)");
  }
}

}  // namespace detail

/// Thread-safe: every member may be called from any thread. Counts consecutive failures of the
/// calls it runs; at `threshold` it opens and rejects calls at once with `circuit_breaker_error`.
/// After `reset_time` exactly one caller runs as the half-open probe while all others are
/// rejected; the probe's success closes the circuit, its failure reopens it. Only calls admitted
/// in the current state count: a call that began before the circuit opened cannot reopen it or
/// disturb the probe, and rejected calls never count. The closed-state success path reads one
/// atomic word, adds one relaxed count (`get_calls()`, on a cache line chosen by thread), and
/// takes no lock.
///
/// `Clock` (steady by default) times `reset_time`; tests pass a manual clock.
/// `last_failure_time` always comes from `std::chrono::system_clock`.
///
///     kysera::infra::resilience::circuit_breaker breaker({.threshold = 3, .reset_time = 10s});
///     auto rows = breaker.execute([&] { return db.execute("SELECT 1"); });
template <class Clock = std::chrono::steady_clock>
class basic_circuit_breaker {
  static_assert(std::is_integral_v<typename Clock::rep>, "Clock needs an integral rep");
  using word = detail::breaker_word;

 public:
  using clock = Clock;

  /// Throws `std::invalid_argument` for threshold < 1 or a negative reset_time.
  explicit basic_circuit_breaker(circuit_breaker_options options = {})
      : threshold_((detail::validate_breaker(options.threshold, options.reset_time), options.threshold)),
        reset_time_(infra::detail::saturating_duration_cast<typename Clock::duration>(options.reset_time)),
        on_state_change_(std::move(options.on_state_change)),
        logger_(options.logger) {}

  /// Same as the options form without a callback.
  ///
  ///     circuit_breaker breaker(5, 30s);
  basic_circuit_breaker(int threshold, std::chrono::milliseconds reset_time)
      : basic_circuit_breaker(circuit_breaker_options{threshold, reset_time, {}, nullptr}) {}

  basic_circuit_breaker(const basic_circuit_breaker&) = delete;
  basic_circuit_breaker& operator=(const basic_circuit_breaker&) = delete;

  /// Runs `fn()` unless the circuit rejects the call (`circuit_breaker_error`); returns what it
  /// returns. Any exception from `fn` counts as a failure and propagates unchanged.
  template <class F>
    requires std::invocable<F>
  std::invoke_result_t<F> execute(F&& fn) {
    outcome call(*this, admit());
    try {
      return std::invoke(std::forward<F>(fn));
    } catch (...) {
      call.failed();
      throw;
    }
  }

  /// Closes the circuit and forgets failures; calls still running from before no longer count.
  void reset() {
    {
      std::lock_guard lock(mutex_);
      failures_ = 0;
      last_failure_time_.reset();
      transition_locked(word_.load(std::memory_order_relaxed), circuit_state::closed);
    }
    report_transitions();
  }

  /// Opens the circuit now with failures = threshold; it half-opens after `reset_time` as usual.
  void force_open() {
    {
      std::lock_guard lock(mutex_);
      failures_ = threshold_;
      open_locked(word_.load(std::memory_order_relaxed));
    }
    report_transitions();
  }

  /// A consistent snapshot. Reports half-open once `reset_time` has passed even before a call
  /// arrived to probe (the transition itself, and its report, happen on that call).
  circuit_breaker_state get_state() const {
    std::lock_guard lock(mutex_);
    const auto w = word_.load(std::memory_order_relaxed);
    circuit_state s = word::state(w);
    if (s == circuit_state::open && open_remaining().count() <= 0) {
      s = circuit_state::half_open;
    }
    return {s, failures_, last_failure_time_};
  }

  /// Open and still rejecting every call (false once `reset_time` has passed).
  bool is_open() const noexcept {
    return word::state(word_.load(std::memory_order_acquire)) == circuit_state::open &&
           open_remaining().count() > 0;
  }
  bool is_closed() const noexcept {
    return word::state(word_.load(std::memory_order_acquire)) == circuit_state::closed;
  }

  /// The call counters (relaxed: each exact once the breaker is quiet). Never reset.
  circuit_breaker_calls get_calls() const noexcept {
    return {calls_.successful(), calls_.failed(), not_permitted_.load(std::memory_order_relaxed)};
  }

 private:
  /// Records the outcome of one admitted call when it ends.
  class outcome {
   public:
    outcome(basic_circuit_breaker& breaker, std::uint64_t ticket) noexcept
        : breaker_(breaker), ticket_(ticket) {}
    outcome(const outcome&) = delete;
    outcome& operator=(const outcome&) = delete;
    ~outcome() {
      if (!done_) {
        breaker_.calls_.count(true);
        breaker_.on_success(ticket_);
      }
    }
    void failed() noexcept {
      done_ = true;
      breaker_.calls_.count(false);
      breaker_.on_failure(ticket_);
    }

   private:
    basic_circuit_breaker& breaker_;
    std::uint64_t ticket_;
    bool done_ = false;
  };

  /// Returns the word the call is admitted with, or throws the rejection.
  std::uint64_t admit() {
    const auto w = word_.load(std::memory_order_acquire);
    if (word::state(w) == circuit_state::closed) [[likely]] {
      return w;
    }
    return admit_slow(w);
  }

  std::uint64_t admit_slow(std::uint64_t w) {
    if (word::state(w) == circuit_state::half_open) reject(circuit_state::half_open);
    if (open_remaining().count() > 0) reject(circuit_state::open);
    // reset_time has passed: the caller that flips open -> half-open under the lock holds the
    // only probe permit (the half-open word with its fresh epoch) until its outcome is recorded.
    std::uint64_t probe = 0;
    {
      std::lock_guard lock(mutex_);
      w = word_.load(std::memory_order_relaxed);
      switch (word::state(w)) {
        case circuit_state::closed: return w;  // reset() in between
        case circuit_state::half_open: break;
        case circuit_state::open:
          if (open_remaining().count() <= 0) {
            probe = transition_locked(w, circuit_state::half_open);
          }
          break;
      }
    }
    if (probe == 0) reject(word::state(w));
    report_transitions();
    return probe;
  }

  [[noreturn]] void reject(circuit_state s) const {
    not_permitted_.fetch_add(1, std::memory_order_relaxed);
    std::chrono::milliseconds after{0};
    if (s == circuit_state::open) {
      after = infra::detail::saturating_ceil<std::chrono::milliseconds>(open_remaining());
      if (after.count() < 0) after = std::chrono::milliseconds(0);
    }
    throw circuit_breaker_error(s, after);
  }

  /// Saturating, so a reset_time of `Clock::duration::max()` stays positive for good.
  typename Clock::duration open_remaining() const noexcept {
    const typename Clock::duration opened(opened_at_.load(std::memory_order_relaxed));
    const auto elapsed = infra::detail::saturating_sub(Clock::now().time_since_epoch(), opened);
    return infra::detail::saturating_sub(reset_time_, elapsed);
  }

  void on_success(std::uint64_t ticket) noexcept {
    // The common case: admitted closed, still the same epoch, no failures counted.
    if (word_.load(std::memory_order_acquire) == (ticket & ~word::failures_bit) &&
        word::state(ticket) == circuit_state::closed) {
      return;
    }
    bool changed = false;
    {
      std::lock_guard lock(mutex_);
      const auto w = word_.load(std::memory_order_relaxed);
      if (word::epoch(w) != word::epoch(ticket)) return;  // began in an earlier state: ignore
      failures_ = 0;
      if (word::state(w) == circuit_state::half_open) {
        transition_locked(w, circuit_state::closed);
        changed = true;
      } else {
        word_.store(w & ~word::failures_bit, std::memory_order_release);
      }
    }
    if (changed) report_transitions();
  }

  void on_failure(std::uint64_t ticket) noexcept {
    bool changed = false;
    {
      std::lock_guard lock(mutex_);
      const auto w = word_.load(std::memory_order_relaxed);
      if (word::epoch(w) != word::epoch(ticket)) return;  // stale: cannot touch the probe
      if (failures_ < INT_MAX) ++failures_;
      last_failure_time_ = std::chrono::system_clock::now();
      if (word::state(w) == circuit_state::half_open || failures_ >= threshold_) {
        open_locked(w);
        changed = true;
      } else {
        word_.store(w | word::failures_bit, std::memory_order_release);
      }
    }
    if (changed) report_transitions();
  }

  void open_locked(std::uint64_t w) noexcept {
    opened_at_.store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
    transition_locked(w, circuit_state::open);
  }

  /// Moves to a new epoch in state `next` and queues the report if the state changed.
  std::uint64_t transition_locked(std::uint64_t w, circuit_state next) noexcept {
    const auto nw = word::advance(w, next);
    word_.store(nw, std::memory_order_release);
    const circuit_state previous = word::state(w);
    if (on_state_change_ && previous != next) {
      try {
        pending_.emplace_back(next, previous);
      } catch (...) {
        // Out of memory: this one report is lost; the state itself is correct.
      }
    }
    return nw;
  }

  /// Delivers queued reports in order, outside the lock. Only one thread delivers at a time; a
  /// thread that finds another delivering leaves its reports to it, so a callback that calls
  /// back into the breaker cannot deadlock.
  void report_transitions() noexcept {
    if (!on_state_change_) return;
    std::unique_lock lock(mutex_);
    if (reporting_) return;
    reporting_ = true;
    while (!pending_.empty()) {
      const auto [next, previous] = pending_.front();
      pending_.pop_front();
      lock.unlock();
      try {
        on_state_change_(next, previous);
      } catch (const std::exception& e) {
        log_callback_error(e.what());
      } catch (...) {
        log_callback_error("a non-standard exception");
      }
      lock.lock();
    }
    reporting_ = false;
  }

  void log_callback_error(const char* what) noexcept {
    try {
      infra::detail::resolve(logger_).warn(
          std::string("circuit breaker: on_state_change threw (ignored): ") + what);
    } catch (...) {
    }
  }

  alignas(64) std::atomic<std::uint64_t> word_{static_cast<std::uint64_t>(circuit_state::closed)};
  std::atomic<typename Clock::rep> opened_at_{0};  // Clock ticks since epoch at the last opening

  detail::call_counts calls_;  // every admitted call adds one, on its thread's line
  mutable std::atomic<std::uint64_t> not_permitted_{0};  // the rejection path, already slow

  const int threshold_;
  const typename Clock::duration reset_time_;
  const std::function<void(circuit_state, circuit_state)> on_state_change_;
  infra::logger* const logger_;

  alignas(64) mutable std::mutex mutex_;
  int failures_ = 0;                                                        // guarded by mutex_
  std::optional<std::chrono::system_clock::time_point> last_failure_time_;  // guarded by mutex_
  std::deque<std::pair<circuit_state, circuit_state>> pending_;             // guarded by mutex_
  bool reporting_ = false;                                                  // guarded by mutex_
};

/// The circuit breaker on `std::chrono::steady_clock`.
using circuit_breaker = basic_circuit_breaker<>;

}  // namespace kysera::infra::resilience
