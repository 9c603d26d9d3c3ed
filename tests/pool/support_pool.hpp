#pragma once
// Test helpers for the pool: a fake connection with per-connection counters and scriptable
// failures, and the backend that makes them (the pool's factory). Thread-safe.

#include "support/eventually.hpp"
#include "support/manual_clock.hpp"
#include <kysera/infra/database.hpp>
#include <kysera/infra/error.hpp>
#include <kysera/infra/pool.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace kysera::test::pool {

namespace infra = kysera::infra;

/// What one fake connection did; outlives the connection so tests can look after it is gone.
struct connection_record {
  int id = 0;
  std::atomic<int> executes{0};
  std::atomic<int> pings{0};
  std::atomic<int> close_calls{0};
  std::atomic<bool> fail_ping{false};       // ping throws connection_lost
  std::atomic<bool> fail_execute{false};    // execute throws `execute_error`
  std::atomic<infra::errc> execute_error{infra::errc::connection_lost};
  std::atomic<bool> destroyed{false};
};

class fake_backend;

/// A `database` with ping, server_version and transaction; every call is counted.
class fake_connection {
 public:
  fake_connection(std::shared_ptr<connection_record> record, std::shared_ptr<std::atomic<int>> live)
      : record_(std::move(record)), live_(std::move(live)) {
    live_->fetch_add(1);
  }
  ~fake_connection() {
    record_->destroyed = true;
    live_->fetch_sub(1);
  }
  fake_connection(const fake_connection&) = delete;
  fake_connection& operator=(const fake_connection&) = delete;

  int id() const { return record_->id; }
  connection_record& record() { return *record_; }

  void execute(std::string_view) {
    record_->executes.fetch_add(1);
    if (record_->close_calls.load() > 0) throw infra::database_error(infra::errc::closed, "fake: closed", "fake");
    if (record_->fail_execute.load()) throw infra::database_error(record_->execute_error.load(), "fake: failure", "fake");
  }
  void ping() {
    record_->pings.fetch_add(1);
    if (record_->fail_ping.load()) throw infra::database_error(infra::errc::connection_lost, "fake: ping failed", "fake");
  }
  void close() { record_->close_calls.fetch_add(1); }
  std::string server_version() { return "fake 2.0"; }

  template <class F>
  decltype(auto) transaction(F&& fn) {
    execute("BEGIN");
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<F&, fake_connection&>>) {
        fn(*this);
        execute("COMMIT");
      } else {
        auto result = fn(*this);
        execute("COMMIT");
        return result;
      }
    } catch (...) {
      execute("ROLLBACK");
      throw;
    }
  }

 private:
  std::shared_ptr<connection_record> record_;
  std::shared_ptr<std::atomic<int>> live_;
};

static_assert(infra::database<fake_connection>);
static_assert(infra::database_with_ping<fake_connection>);
static_assert(infra::database_with_transaction<fake_connection>);

/// Makes fake connections, numbered from 1. Can be told to fail (server down) or to block in the
/// factory until released (a slow connect).
class fake_backend : public std::enable_shared_from_this<fake_backend> {
 public:
  static std::shared_ptr<fake_backend> make() { return std::shared_ptr<fake_backend>(new fake_backend); }

  /// The pool's factory.
  std::function<std::unique_ptr<fake_connection>()> factory() {
    return [self = shared_from_this()] { return self->connect(); };
  }

  std::unique_ptr<fake_connection> connect() {
    {
      std::unique_lock lock(mutex_);
      ++in_factory_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return !block_; });
      --in_factory_;
      if (down_) {
        ++refused_;
        throw infra::database_error(infra::errc::connection_refused, "fake: connection refused", "fake");
      }
    }
    if (fail_hook_ && fail_hook_()) {
      std::lock_guard lock(mutex_);
      ++refused_;
      throw infra::database_error(infra::errc::connection_refused, "fake: connection refused", "fake");
    }
    auto record = std::make_shared<connection_record>();
    {
      std::lock_guard lock(mutex_);
      record->id = static_cast<int>(records_.size()) + 1;
      records_.push_back(record);
    }
    return std::make_unique<fake_connection>(record, live_);
  }

  void set_down(bool down) {
    std::lock_guard lock(mutex_);
    down_ = down;
  }
  /// Called (from the connecting thread) before each connection; true makes it fail.
  void set_fail_hook(std::function<bool()> hook) { fail_hook_ = std::move(hook); }

  /// Connects block until unblock_connects().
  void block_connects() {
    std::lock_guard lock(mutex_);
    block_ = true;
  }
  void unblock_connects() {
    {
      std::lock_guard lock(mutex_);
      block_ = false;
    }
    cv_.notify_all();
  }
  /// Waits until `n` threads are inside the factory.
  void wait_in_factory(int n) {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return in_factory_ >= n; });
  }

  std::shared_ptr<connection_record> record(int id) {
    std::lock_guard lock(mutex_);
    return records_.at(static_cast<std::size_t>(id - 1));
  }
  std::vector<std::shared_ptr<connection_record>> records() {
    std::lock_guard lock(mutex_);
    return records_;
  }
  int created() {
    std::lock_guard lock(mutex_);
    return static_cast<int>(records_.size());
  }
  int refused() {
    std::lock_guard lock(mutex_);
    return refused_;
  }
  /// Threads inside the factory right now (blocked or not).
  int in_factory() {
    std::lock_guard lock(mutex_);
    return in_factory_;
  }
  /// Factory calls that have ended: connections made plus connects refused.
  int attempts() {
    std::lock_guard lock(mutex_);
    return static_cast<int>(records_.size()) + refused_;
  }
  /// Connections constructed and not yet destroyed.
  int live() const { return live_->load(); }
  /// Connections made and not closed.
  int open() {
    int n = 0;
    for (auto& r : records()) n += r->close_calls.load() == 0 ? 1 : 0;
    return n;
  }

 private:
  fake_backend() = default;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<connection_record>> records_;
  std::shared_ptr<std::atomic<int>> live_ = std::make_shared<std::atomic<int>>(0);
  std::function<bool()> fail_hook_;
  bool down_ = false;
  bool block_ = false;
  int in_factory_ = 0;
  int refused_ = 0;
};

/// Polls `pred` without pausing (the pool's hand-offs take microseconds) until it holds or
/// `limit` (real time) passes; returns whether it held.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  return kysera::test::eventually(pred, limit, std::chrono::milliseconds(0));
}

/// Checks that `pred` keeps holding for `span` of real time (for "still waiting" checks).
template <class Pred>
bool holds_for(Pred pred, std::chrono::milliseconds span) {
  auto deadline = std::chrono::steady_clock::now() + span;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!pred()) return false;
    std::this_thread::yield();
  }
  return pred();
}

/// Options for unit tests on a manual clock: no housekeeping thread (tests call maintain()), no
/// lifetime jitter, nothing logged.
inline infra::pool::pool_options quiet(std::size_t max_size) {
  infra::pool::pool_options o;
  o.max_size = max_size;
  o.housekeeping_interval = std::chrono::milliseconds(0);
  o.max_lifetime_jitter = 0;
  o.logger = &infra::silent_logger();
  return o;
}

/// A test on the manual clock: resets it, and makes a fresh backend.
struct fixture {
  fixture() { kysera::test::manual_clock::reset(); }
  std::shared_ptr<fake_backend> backend = fake_backend::make();
};

/// The `database_error` `fn` throws (the test fails when it throws none).
template <class Fn>
infra::database_error catch_database_error(Fn&& fn) {
  try {
    fn();
  } catch (const infra::database_error& e) {
    return e;
  }
  FAIL("no database_error was thrown");
  throw std::logic_error("unreachable");
}

inline bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The most connect attempts an outage of `span` can cause (the bound docs/pool.md states): the
// connects begun before the first window opens (connect_backoff_after - 1 that failed one after
// another, then at most max_connecting, or max_size, in flight), then one probe per window, each
// window at least (1 - jitter) of its nominal length (less 1 ms for rounding).
inline int attempt_bound(const infra::pool::pool_options& o, std::chrono::milliseconds span) {
  const std::size_t in_flight =
      o.max_connecting != 0 ? std::min(o.max_connecting, o.max_size) : o.max_size;
  int n = static_cast<int>(o.connect_backoff_after - 1 + in_flight);
  double elapsed = 0;
  for (int k = 1;; ++k) {
    const double nominal =
        std::min(static_cast<double>(o.connect_backoff_initial.count()) * std::ldexp(1.0, k - 1),
                 static_cast<double>(o.connect_backoff_max.count()));
    elapsed += nominal * (1 - o.connect_backoff_jitter) - 1;
    if (elapsed > static_cast<double>(span.count())) return n;
    ++n;
  }
}

/// Not thread-safe: on leaving the scope, sets `stop` and joins `threads`, so that whatever
/// throws (a failed REQUIRE) is reported instead of ending the process with threads joinable.
struct stop_and_join {
  std::atomic<bool>& stop;
  std::vector<std::thread>& threads;
  ~stop_and_join() {
    stop = true;
    for (auto& t : threads) {
      if (t.joinable()) t.join();
    }
  }
};

inline infra::pool::pool_metrics metrics(std::size_t total, std::size_t idle, std::size_t active,
                                         std::size_t waiting, std::size_t max) {
  return infra::pool::pool_metrics{total, idle, active, waiting, max};
}

}  // namespace kysera::test::pool

namespace Catch {
template <>
struct StringMaker<kysera::infra::pool::pool_metrics> {
  static std::string convert(const kysera::infra::pool::pool_metrics& m) {
    return "{total " + std::to_string(m.total) + ", idle " + std::to_string(m.idle) + ", active " +
           std::to_string(m.active) + ", waiting " + std::to_string(m.waiting) + ", max " + std::to_string(m.max) +
           "}";
  }
};
}  // namespace Catch
