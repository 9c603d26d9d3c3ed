#pragma once
// Helpers shared by the health tests: a gate database without cancel, a timed database for the
// manual clock, a pool with traits, a capturing logger and a wait-with-deadline helper.

#include "support/catch.hpp"
#include "support/eventually.hpp"
#include "support/manual_clock.hpp"

#include <kysera/infra/error.hpp>
#include <kysera/infra/logger.hpp>
#include <kysera/infra/pool/metrics.hpp>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace kysera::test::health_support {

using kysera::test::eventually;

/// A database with no cancel(): execute() blocks while the gate is held. Counts statements in
/// flight and the most seen at once. Thread-safe.
class gate_database {
 public:
  void hold() {
    std::lock_guard lock(mutex_);
    held_ = true;
  }
  void let_go() {
    {
      std::lock_guard lock(mutex_);
      held_ = false;
    }
    cv_.notify_all();
  }
  void execute(std::string_view) {
    std::unique_lock lock(mutex_);
    ++in_flight_;
    ++executed_;
    max_in_flight_ = std::max(max_in_flight_, in_flight_);
    cv_.notify_all();
    cv_.wait(lock, [&] { return !held_; });
    --in_flight_;
    cv_.notify_all();
  }
  void close() {}
  int in_flight() const {
    std::lock_guard lock(mutex_);
    return in_flight_;
  }
  int max_in_flight() const {
    std::lock_guard lock(mutex_);
    return max_in_flight_;
  }
  int executed() const {
    std::lock_guard lock(mutex_);
    return executed_;
  }
  void wait_for_in_flight(int n) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return in_flight_ == n; });
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool held_ = false;
  int in_flight_ = 0;
  int max_in_flight_ = 0;
  int executed_ = 0;
};

/// Each execute() advances the manual clock by the next scripted duration (0 when none is
/// left), or throws when the script says so. For one thread at a time.
class timed_database {
 public:
  struct step {
    std::chrono::nanoseconds duration{0};
    bool fail = false;
  };
  void script(std::chrono::nanoseconds d, bool fail = false) { steps_.push_back(step{d, fail}); }
  void execute(std::string_view) {
    step s;
    if (!steps_.empty()) {
      s = steps_.front();
      steps_.pop_front();
    }
    manual_clock::advance(s.duration);
    if (s.fail) throw infra::database_error(infra::errc::query_failed, "scripted failure", "fake");
  }
  void close() {}

 private:
  std::deque<step> steps_;
};

/// A pool as a user would have one; reported through a pool_traits specialisation.
struct fake_pool {
  infra::pool::pool_metrics metrics{};
  bool closed = false;
  bool throw_on_metrics = false;
};

/// Records every message, debug and trace included. Thread-safe through the base class.
class capture_logger final : public infra::logger {
 public:
  capture_logger() { set_level(infra::log_level::trace); }
  std::vector<std::pair<infra::log_level, std::string>> entries() const {
    std::lock_guard lock(mutex_);
    return entries_;
  }
  int count(infra::log_level level, std::string_view needle) const {
    std::lock_guard lock(mutex_);
    int n = 0;
    for (const auto& [l, m] : entries_) {
      if (l == level && m.find(needle) != std::string::npos) ++n;
    }
    return n;
  }

 protected:
  void write(infra::log_level level, std::string_view message) override {
    std::lock_guard lock(mutex_);
    entries_.emplace_back(level, std::string(message));
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<infra::log_level, std::string>> entries_;
};

}  // namespace kysera::test::health_support

template <>
struct kysera::infra::pool::pool_traits<kysera::test::health_support::fake_pool> {
  static pool_metrics get_metrics(kysera::test::health_support::fake_pool& p) {
    if (p.throw_on_metrics) throw std::runtime_error("pool metrics unavailable");
    return p.metrics;
  }
  static void close(kysera::test::health_support::fake_pool& p) { p.closed = true; }
};
