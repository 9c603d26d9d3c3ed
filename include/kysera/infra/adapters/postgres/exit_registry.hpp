#pragma once
/// \file
/// `connect_helpers`: the detached threads that open PostgreSQL sessions in the background (a
/// reconnect under a deadline that gave up waiting), counted so that a normal process exit waits
/// for them instead of running libpq's OpenSSL clean-up under their feet.

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

namespace kysera::infra::postgres::detail {

/// Thread-safe (one mutex). A helper counts from before its thread starts until its job returns.
/// `std::exit` (returning from main included) waits for the count to reach zero, at most 30 s:
/// each helper is bounded by connect_timeout. The wait is an `atexit` handler, so it must be
/// registered after OpenSSL's (handlers run in reverse order): it is registered when the first
/// helper starts, which is after OpenSSL's initialisation whenever a session was opened before,
/// and once more when a helper starts after one has finished (by then the first one has
/// initialised it). `std::_Exit`, which signal-driven shutdown uses, waits for nothing.
class connect_helpers {
 public:
  /// Runs `job` (which must not throw) on a detached thread, counted.
  static void start(std::function<void()> job) {
    connect_helpers& self = instance();
    self.enter();
    try {
      std::thread([&self, job = std::move(job)]() mutable {
        job();
        job = nullptr;  // what it holds (a session nobody took) is closed before the count drops
        self.leave();
      }).detach();
    } catch (...) {
      self.leave();
      throw;
    }
  }

  /// Helpers running now.
  static int running() {
    connect_helpers& self = instance();
    std::lock_guard lock(self.mutex_);
    return self.count_;
  }

 private:
  static connect_helpers& instance() {
    static connect_helpers* const self = new connect_helpers();  // never destroyed: used at exit
    return *self;
  }

  void enter() {
    std::lock_guard lock(mutex_);
    ++count_;
    if (registered_ == 0 || (registered_ == 1 && finished_ > 0)) {
      if (std::atexit(&wait_at_exit) == 0) ++registered_;
    }
  }

  void leave() {
    std::lock_guard lock(mutex_);
    ++finished_;
    if (--count_ == 0) idle_.notify_all();
  }

  static void wait_at_exit() {
    connect_helpers& self = instance();
    std::unique_lock lock(self.mutex_);
    self.idle_.wait_for(lock, std::chrono::seconds(30), [&] { return self.count_ == 0; });
  }

  std::mutex mutex_;
  std::condition_variable idle_;
  int count_ = 0;
  int registered_ = 0;
  long finished_ = 0;
};

}  // namespace kysera::infra::postgres::detail
