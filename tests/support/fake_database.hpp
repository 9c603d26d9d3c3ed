#pragma once
// A scriptable in-memory `database` for unit tests, and the template for a user's own type.
//
// - execute(sql) records the statement, then follows the script: the next queued outcome if
//   any (throw a database_error with a code, or block until released), else succeeds.
// - block_next(): the next execute waits until release() or cancel() (cancel throws errc::cancelled).
// - close() counts calls; execute after close throws errc::closed.
// Thread-safe.

#include <kysera/infra/database.hpp>
#include <kysera/infra/error.hpp>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace kysera::test {

class fake_database {
 public:
  /// Queue a failure for the next execute().
  void fail_next(infra::errc code, std::string message = "scripted failure") {
    std::lock_guard lock(mutex_);
    script_.push_back([code, message] { throw infra::database_error(code, message, "fake"); });
  }
  /// Queue any action (may throw anything, may block) for the next execute().
  void on_next(std::function<void()> action) {
    std::lock_guard lock(mutex_);
    script_.push_back(std::move(action));
  }
  /// Make every execute() fail with `code` until clear_failures().
  void fail_always(infra::errc code) {
    std::lock_guard lock(mutex_);
    always_fail_ = true;
    always_code_ = code;
  }
  void clear_failures() {
    std::lock_guard lock(mutex_);
    always_fail_ = false;
    script_.clear();
  }
  /// The next execute() blocks until release() or cancel().
  void block_next() {
    std::lock_guard lock(mutex_);
    block_next_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      released_ = true;
    }
    cv_.notify_all();
  }

  void execute(std::string_view sql) {
    std::function<void()> action;
    bool block = false;
    {
      std::lock_guard lock(mutex_);
      executed_.emplace_back(sql);
      if (closed_) throw infra::database_error(infra::errc::closed, "fake database is closed", "fake");
      if (always_fail_) throw infra::database_error(always_code_, "scripted failure", "fake");
      if (!script_.empty()) {
        action = std::move(script_.front());
        script_.pop_front();
      }
      block = block_next_;
      block_next_ = false;
    }
    if (block) {
      std::unique_lock lock(mutex_);
      ++blocked_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_ || cancelled_; });
      --blocked_;
      bool was_cancelled = cancelled_;
      released_ = false;
      cancelled_ = false;
      if (was_cancelled) throw infra::database_error(infra::errc::cancelled, "cancelled", "fake");
    }
    if (action) action();
  }

  void close() {
    std::lock_guard lock(mutex_);
    ++close_calls_;
    closed_ = true;
    released_ = true;
    cv_.notify_all();
  }

  void cancel() {
    {
      std::lock_guard lock(mutex_);
      ++cancel_calls_;
      if (blocked_ > 0) cancelled_ = true;
    }
    cv_.notify_all();
  }

  std::string server_version() { return "fake 1.0"; }

  /// Waits until an execute() is blocked (for tests that need "a statement is running now").
  void wait_until_blocked() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return blocked_ > 0; });
  }

  std::vector<std::string> executed() const {
    std::lock_guard lock(mutex_);
    return executed_;
  }
  std::size_t execute_count() const {
    std::lock_guard lock(mutex_);
    return executed_.size();
  }
  int close_calls() const {
    std::lock_guard lock(mutex_);
    return close_calls_;
  }
  int cancel_calls() const {
    std::lock_guard lock(mutex_);
    return cancel_calls_;
  }
  bool is_closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> script_;
  std::vector<std::string> executed_;
  bool always_fail_ = false;
  infra::errc always_code_ = infra::errc::connection_lost;
  bool block_next_ = false;
  bool released_ = false;
  bool cancelled_ = false;
  int blocked_ = 0;
  int close_calls_ = 0;
  int cancel_calls_ = 0;
  bool closed_ = false;
};

/// The smallest possible `database`: proves the concept asks for nothing more.
struct minimal_database {
  int executes = 0;
  bool closed = false;
  void execute(std::string_view) { ++executes; }
  void close() { closed = true; }
};

static_assert(infra::database<fake_database>);
static_assert(infra::database_with_cancel<fake_database>);
static_assert(infra::database<minimal_database>);
static_assert(!infra::database_with_cancel<minimal_database>);

}  // namespace kysera::test
