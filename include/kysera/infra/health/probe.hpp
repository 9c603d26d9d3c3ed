#pragma once
/// \file
/// The probe machinery of `perform_health_check` (internal): a probe's shared state, the
/// process-wide cache of probe threads, and the abortable wait for a probe's answer.

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>
#include "../database.hpp"
#include "../detail/time.hpp"
#include "../logger.hpp"
#include "../detail/process_wide.hpp"
#include "result.hpp"

namespace kysera::infra::health::detail {

/// Copies an exception's message without letting a failed allocation escape a noexcept path.
inline void store_message(std::string& out, const char* text) noexcept {
  try {
    out = (text && *text) ? text : "unknown error";
  } catch (...) {
    out.clear();
  }
}

/// A pause hint for spin loops.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/// Spins until `ready()` or until `budget` has passed, yielding now and then; returns `ready()`.
/// Both sides of the probe hand-off spin briefly before they sleep: a thread that is put to
/// sleep and woken again costs ~5-20 us per hop, as much as a loopback `SELECT 1`.
template <class Ready>
bool spin_until(Ready&& ready, std::chrono::nanoseconds budget) noexcept {
  const auto end = std::chrono::steady_clock::now() + budget;
  for (unsigned i = 1;; ++i) {
    if (ready()) return true;
    if (i % 64 == 0) {
      if (std::chrono::steady_clock::now() >= end) return ready();
      std::this_thread::yield();
    } else {
      cpu_relax();
    }
  }
}

/// The longest a caller spins for its probe's answer before it sleeps: a loopback round trip.
/// The caller spins only about twice the recent probe time (`recent_probe_ns`), so checks of a
/// remote database, which take longer than this anyway, do not spin at all.
inline constexpr std::chrono::microseconds caller_spin{200};
/// How long an idle worker spins for the next probe before it sleeps.
inline constexpr std::chrono::microseconds worker_spin{100};

/// A moving average of recent probe times (ns) across all databases; only steers spinning.
inline std::atomic<std::int64_t>& recent_probe_ns() noexcept {
  static std::atomic<std::int64_t> value{0};
  return value;
}

/// How long a caller should spin now.
inline std::chrono::nanoseconds caller_spin_budget() noexcept {
  const std::int64_t recent = recent_probe_ns().load(std::memory_order_relaxed);
  const std::chrono::nanoseconds limit = caller_spin;
  if (recent >= limit.count()) return std::chrono::nanoseconds::zero();
  return std::min(limit, std::chrono::nanoseconds(2 * recent + 20'000));
}

/// Folds one probe time into the average (racy read-modify-write is fine for a hint).
inline void note_probe_time(std::chrono::nanoseconds t) noexcept {
  auto& avg = recent_probe_ns();
  const std::int64_t sample = std::min<std::int64_t>(t.count(), 1'000'000);  // a stall must not linger
  const std::int64_t old = avg.load(std::memory_order_relaxed);
  avg.store(old + (sample - old) / 4, std::memory_order_relaxed);
}

/// Thread-safe: shared between the caller that waits for it and the worker that runs it (the
/// caller may give up and return while the worker still holds it). One probe.
struct probe_state {
  std::mutex mutex;
  std::condition_variable cv;
  bool done = false;  // the worker finished (guarded by mutex)
  std::atomic<bool> finished{false};  // the same, readable without the mutex (spinning)

  // Set before submission, read by the worker.
  void (*run)(probe_state&) noexcept = nullptr;
  void* db = nullptr;
  const void* key = nullptr;
  bool want_version = false;

  // Written by the worker before `done`; read by the caller only after seeing `done`.
  bool ok = false;
  double latency_ms = 0.0;
  std::string error;
  std::optional<std::string> version;
  std::string version_error;

  void finish() noexcept {
    {
      std::lock_guard lock(mutex);
      done = true;
    }
    finished.store(true, std::memory_order_release);  // after `done`: a spinner that sees it finds `done`
    cv.notify_all();
  }
};

/// The probe body for a database type: ping, time it with `Clock`, then the version if asked.
template <class Clock, class Db>
void run_probe(probe_state& p) noexcept {
  Db& db = *static_cast<Db*>(p.db);
  const auto start = Clock::now();
  try {
    infra::ping(db);
    p.ok = true;
  } catch (const std::exception& e) {
    store_message(p.error, e.what());
  } catch (...) {
    store_message(p.error, "unknown error (a non-standard exception was thrown)");
  }
  p.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (p.ok && p.want_version) {
    try {
      p.version = infra::server_version(db);
    } catch (const std::exception& e) {
      store_message(p.version_error, e.what());
    } catch (...) {
      store_message(p.version_error, "unknown error");
    }
  }
}

/// Thread-safe. A process-wide cache of probe threads. Never destroyed (a worker may still be
/// blocked in a probe of a hung server when static destructors run), so it is leaked on purpose.
class probe_executor {
 public:
  // Shared across shared libraries (process_wide.hpp): a private copy would work, at the cost of
  // one more thread cache per library.
  KYSERA_INFRA_PROCESS_WIDE static probe_executor& instance() {
    static probe_executor* const executor = new probe_executor();
    return *executor;
  }

  /// Runs `job` on an idle worker, or on a new one when all are busy. Throws `std::system_error`
  /// when no thread can be started.
  void submit(const std::shared_ptr<probe_state>& job) {
    std::shared_ptr<worker> w;
    {
      std::lock_guard lock(mutex_);
      if (!idle_.empty()) {
        w = std::move(idle_.back());
        idle_.pop_back();
        w->job = job;
        w->has_job.store(true, std::memory_order_release);
      }
    }
    if (w) {
      w->cv.notify_one();
      return;
    }
    auto fresh = std::make_shared<worker>();
    fresh->job = job;
    fresh->has_job.store(true, std::memory_order_relaxed);
    std::thread([this, fresh] { work(fresh); }).detach();
  }

  /// The abandoned probe of `key` that has not returned yet, if any.
  std::shared_ptr<probe_state> stuck_probe(const void* key) {
    std::lock_guard lock(mutex_);
    auto it = stuck_.find(key);
    return it == stuck_.end() ? nullptr : it->second;
  }

  /// The caller gives up on `job`: remembers it as stuck unless it finished meanwhile.
  /// Returns false when it had finished (the caller can use its result after all).
  bool abandon(const std::shared_ptr<probe_state>& job) {
    std::scoped_lock lock(mutex_, job->mutex);
    if (job->done) return false;
    stuck_[job->key] = job;
    return true;
  }

 private:
  struct worker {
    std::condition_variable cv;
    std::shared_ptr<probe_state> job;  // guarded by the executor's mutex
    std::atomic<bool> has_job{false};  // `job` is set; readable without the mutex (spinning)
  };

  static constexpr std::size_t max_idle = 8;
  static constexpr std::chrono::seconds idle_timeout{60};

  probe_executor() = default;

  void work(const std::shared_ptr<worker>& self) noexcept {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (!self->job) {
        try {
          idle_.push_back(self);
        } catch (...) {
          return;
        }
        lock.unlock();
        spin_until([&] { return self->has_job.load(std::memory_order_acquire); }, worker_spin);
        lock.lock();
        bool got_job = self->cv.wait_for(lock, idle_timeout, [&] { return self->job != nullptr; });
        if (!got_job) {
          idle_.erase(std::remove(idle_.begin(), idle_.end(), self), idle_.end());
          return;
        }
      }
      std::shared_ptr<probe_state> job = std::move(self->job);
      self->job = nullptr;
      self->has_job.store(false, std::memory_order_relaxed);
      lock.unlock();
      const auto started = std::chrono::steady_clock::now();
      job->run(*job);
      note_probe_time(std::chrono::steady_clock::now() - started);
      job->finish();
      lock.lock();
      if (auto it = stuck_.find(job->key); it != stuck_.end() && it->second == job) stuck_.erase(it);
      job.reset();
      if (idle_.size() >= max_idle) return;
    }
  }

  std::mutex mutex_;
  std::vector<std::shared_ptr<worker>> idle_;  // most recently idle last
  std::unordered_map<const void*, std::shared_ptr<probe_state>> stuck_;
};

/// Thread-safe. Lets another thread stop a check's wait early (the monitor's `stop()`).
class abort_source {
 public:
  /// Called by `stop()`: the check in flight (and any later one) stops waiting at once.
  void abort() noexcept {
    aborted_.store(true);
    std::lock_guard lock(mutex_);
    if (current_) {
      // Taking the probe's mutex orders the flag before the waiter's predicate check, so the
      // wake-up cannot be lost.
      { std::lock_guard probe_lock(current_->mutex); }
      current_->cv.notify_all();
    }
  }
  /// Clears the flag for the next run.
  void reset() noexcept {
    std::lock_guard lock(mutex_);
    aborted_.store(false);
    current_.reset();
  }
  bool aborted() const noexcept { return aborted_.load(); }
  void attach(const std::shared_ptr<probe_state>& p) noexcept {
    std::lock_guard lock(mutex_);
    current_ = p;
  }
  void detach() noexcept {
    std::lock_guard lock(mutex_);
    current_.reset();
  }

 private:
  std::atomic<bool> aborted_{false};
  std::mutex mutex_;
  std::shared_ptr<probe_state> current_;
};

/// Waits for `p` until `deadline` or an abort; true when it finished.
inline bool wait_for_probe(const std::shared_ptr<probe_state>& p,
                           std::chrono::steady_clock::time_point deadline, abort_source* abort) {
  if (abort) abort->attach(p);
  if (!p->finished.load(std::memory_order_acquire)) {
    spin_until([&] { return p->finished.load(std::memory_order_acquire) || (abort && abort->aborted()); },
               std::min<std::chrono::nanoseconds>(caller_spin_budget(), deadline - std::chrono::steady_clock::now()));
  }
  bool finished;
  {
    std::unique_lock lock(p->mutex);
    infra::detail::wait_until_capped(p->cv, lock, deadline, [&] { return p->done || (abort && abort->aborted()); });
    finished = p->done;
  }
  if (abort) abort->detach();
  return finished;
}

}  // namespace kysera::infra::health::detail
