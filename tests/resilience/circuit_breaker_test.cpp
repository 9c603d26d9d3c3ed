// Unit tests for the circuit breaker, on a manual clock, plus a concurrency stress test that
// drives one breaker through many open / half-open / closed cycles from several threads.
#include "support/catch.hpp"
#include "support/manual_clock.hpp"

#include <kysera/infra/resilience.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace infra = kysera::infra;
namespace res = kysera::infra::resilience;
using infra::errc;
using kysera::test::manual_clock;
using res::circuit_state;
using namespace std::chrono_literals;

namespace {

using test_breaker = res::basic_circuit_breaker<manual_clock>;
using transition = std::pair<circuit_state, circuit_state>;  // (new, previous)

infra::database_error db_error(errc code) { return infra::database_error(code, "scripted", "fake"); }

/// Thread-safe record of on_state_change calls.
struct transitions {
  std::mutex mutex;
  std::vector<transition> list;
  std::function<void(circuit_state, circuit_state)> callback() {
    return [this](circuit_state next, circuit_state previous) {
      std::lock_guard lock(mutex);
      list.emplace_back(next, previous);
    };
  }
  std::vector<transition> get() {
    std::lock_guard lock(mutex);
    return list;
  }
};

/// A one-shot latch with a bool flag; open() may be called more than once.
class gate {
 public:
  void open() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool wait_for(std::chrono::seconds limit) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, limit, [&] { return open_; });
  }
  void wait() { wait_for(60s); }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool open_ = false;
};

template <class Breaker>
void fail_once(Breaker& b) {
  try {
    b.execute([] { throw db_error(errc::connection_lost); });
  } catch (const infra::database_error&) {
  }
}

/// The rejection `b.execute` throws, or nothing if it ran the call.
template <class Breaker>
std::optional<res::circuit_breaker_error> rejection(Breaker& b, bool* ran = nullptr) {
  try {
    b.execute([&] {
      if (ran) *ran = true;
    });
  } catch (const res::circuit_breaker_error& e) {
    return e;
  }
  return std::nullopt;
}

bool contains(const char* text, const char* part) {
  return std::string(text).find(part) != std::string::npos;
}

}  // namespace

TEST_CASE("to_string names the circuit states", "[resilience]") {
  CHECK(res::to_string(circuit_state::closed) == "closed");
  CHECK(res::to_string(circuit_state::open) == "open");
  CHECK(res::to_string(circuit_state::half_open) == "half-open");
}

TEST_CASE("circuit breaker options are validated at construction naming the field", "[resilience]") {
  auto message = [](auto make) -> std::string {
    try {
      make();
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  CHECK(contains(message([] { res::circuit_breaker b({.threshold = 0}); }).c_str(), "threshold"));
  CHECK(contains(message([] { res::circuit_breaker b(-2, 10ms); }).c_str(), "threshold"));
  CHECK(contains(message([] { res::circuit_breaker b({.reset_time = -1ms}); }).c_str(), "reset_time"));
  CHECK(contains(message([] { res::circuit_breaker b(1, -5ms); }).c_str(), "reset_time"));
  CHECK_NOTHROW(res::circuit_breaker(1, 0ms));
  const res::circuit_breaker_options defaults;
  CHECK(defaults.threshold == 5);
  CHECK(defaults.reset_time == 60000ms);
}

TEST_CASE("the breaker opens at exactly threshold consecutive failures", "[resilience]") {
  manual_clock::reset();
  transitions t;
  test_breaker b({.threshold = 3, .reset_time = 1s, .on_state_change = t.callback()});
  CHECK(b.is_closed());
  fail_once(b);
  fail_once(b);
  CHECK(b.is_closed());
  CHECK(b.get_state().failures == 2);
  CHECK(t.get().empty());
  fail_once(b);
  CHECK(b.is_open());
  CHECK_FALSE(b.is_closed());
  CHECK(b.get_state().state == circuit_state::open);
  CHECK(b.get_state().failures == 3);
  CHECK(t.get() == std::vector<transition>{{circuit_state::open, circuit_state::closed}});

  bool ran = false;
  auto e = rejection(b, &ran);
  REQUIRE(e);
  CHECK_FALSE(ran);
  CHECK(e->code() == errc::circuit_open);
  CHECK(e->state() == circuit_state::open);
  CHECK(e->retry_after() == 1000ms);
  CHECK(contains(e->what(), "Circuit breaker is open"));
}

TEST_CASE("a success while closed resets the consecutive failure count", "[resilience]") {
  manual_clock::reset();
  test_breaker b(3, 1s);
  fail_once(b);
  fail_once(b);
  CHECK(b.execute([] { return 1; }) == 1);
  CHECK(b.get_state().failures == 0);
  CHECK(b.get_state().last_failure_time.has_value());  // history is kept
  fail_once(b);
  fail_once(b);
  CHECK(b.is_closed());
  fail_once(b);
  CHECK(b.is_open());
}

TEST_CASE("last_failure_time is the wall clock time of the last counted failure", "[resilience]") {
  manual_clock::reset();
  test_breaker b(5, 1s);
  CHECK_FALSE(b.get_state().last_failure_time.has_value());
  const auto before = std::chrono::system_clock::now();
  fail_once(b);
  const auto after = std::chrono::system_clock::now();
  const auto t = b.get_state().last_failure_time;
  REQUIRE(t.has_value());
  CHECK(*t >= before);
  CHECK(*t <= after);
}

TEST_CASE("open becomes half-open lazily after reset_time and a probe success closes it", "[resilience]") {
  manual_clock::reset();
  transitions t;
  test_breaker b({.threshold = 1, .reset_time = 2s, .on_state_change = t.callback()});
  fail_once(b);
  manual_clock::advance(2s - 1ns);
  CHECK(b.is_open());
  CHECK(b.get_state().state == circuit_state::open);
  CHECK(rejection(b).has_value());
  manual_clock::advance(1ns);
  // Reported, but not yet a transition: no call has arrived to probe.
  CHECK(b.get_state().state == circuit_state::half_open);
  CHECK_FALSE(b.is_open());
  CHECK_FALSE(b.is_closed());
  CHECK(t.get().size() == 1);

  bool ran = false;
  CHECK_FALSE(rejection(b, &ran).has_value());
  CHECK(ran);
  CHECK(b.is_closed());
  CHECK(b.get_state().failures == 0);
  CHECK(t.get() == std::vector<transition>{{circuit_state::open, circuit_state::closed},
                                           {circuit_state::half_open, circuit_state::open},
                                           {circuit_state::closed, circuit_state::half_open}});
}

TEST_CASE("a failed probe reopens the circuit for another reset_time", "[resilience]") {
  manual_clock::reset();
  transitions t;
  test_breaker b({.threshold = 2, .reset_time = 1s, .on_state_change = t.callback()});
  fail_once(b);
  fail_once(b);
  manual_clock::advance(1s);
  fail_once(b);  // the probe
  CHECK(b.is_open());
  CHECK(b.get_state().failures == 3);
  auto e = rejection(b);
  REQUIRE(e);
  CHECK(e->retry_after() == 1000ms);  // the timer restarted at the probe's failure
  manual_clock::advance(999ms);
  CHECK(rejection(b).has_value());
  manual_clock::advance(1ms);
  CHECK_FALSE(rejection(b).has_value());
  CHECK(b.is_closed());
  CHECK(t.get() == std::vector<transition>{{circuit_state::open, circuit_state::closed},
                                           {circuit_state::half_open, circuit_state::open},
                                           {circuit_state::open, circuit_state::half_open},
                                           {circuit_state::half_open, circuit_state::open},
                                           {circuit_state::closed, circuit_state::half_open}});
}

TEST_CASE("rejected calls never count as failures nor restart the open timer", "[resilience]") {
  manual_clock::reset();
  test_breaker b(2, 1s);
  fail_once(b);
  fail_once(b);
  const auto failed_at = b.get_state().last_failure_time;
  manual_clock::advance(500ms);
  for (int i = 0; i < 10; ++i) CHECK(rejection(b).has_value());
  CHECK(b.get_state().failures == 2);
  CHECK(b.get_state().last_failure_time == failed_at);
  manual_clock::advance(500ms);
  CHECK_FALSE(rejection(b).has_value());  // a probe after exactly reset_time since opening
}

TEST_CASE("while the probe runs every other caller is rejected at once with testing recovery", "[resilience]") {
  manual_clock::reset();
  test_breaker b(1, 1s);
  fail_once(b);
  manual_clock::advance(1s);
  gate entered;
  gate release;
  auto probe = std::async(std::launch::async, [&] {
    return b.execute([&] {
      entered.open();
      release.wait();
      return 7;
    });
  });
  REQUIRE(entered.wait_for(30s));
  CHECK(b.get_state().state == circuit_state::half_open);
  std::atomic<int> ran{0};
  std::atomic<int> rejected{0};
  std::vector<std::thread> others;
  for (int i = 0; i < 8; ++i) {
    others.emplace_back([&] {
      try {
        b.execute([&] { ++ran; });
      } catch (const res::circuit_breaker_error& e) {
        if (e.state() == circuit_state::half_open && e.retry_after() == 0ms &&
            contains(e.what(), "testing recovery") && e.code() == errc::circuit_open) {
          ++rejected;
        }
      }
    });
  }
  for (auto& th : others) th.join();  // none of them waited for the probe
  CHECK(ran == 0);
  CHECK(rejected == 8);
  CHECK(b.get_state().failures == 1);  // rejections during half-open do not count either
  release.open();
  CHECK(probe.get() == 7);
  CHECK(b.is_closed());
}

namespace {
/// The manual clock, except that a thread can ask to be paused inside its next now() call: a
/// caller paused in the breaker's lock-free "has reset_time passed?" check is then overtaken by
/// another caller that takes the probe.
struct gated_clock {
  using duration = manual_clock::duration;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<gated_clock>;
  [[maybe_unused]] static constexpr bool is_steady = true;
  static inline thread_local gate* pause_next = nullptr;
  static inline std::atomic<int> paused{0};

  static time_point now() {
    if (gate* g = std::exchange(pause_next, nullptr)) {
      ++paused;
      g->wait();
    }
    return time_point(manual_clock::now().time_since_epoch());
  }
};
}  // namespace

TEST_CASE("a caller that saw the circuit open before the probe started cannot become a second probe", "[resilience]") {
  manual_clock::reset();
  res::basic_circuit_breaker<gated_clock> b(1, 1s);
  fail_once(b);
  manual_clock::advance(1s);
  gate late_release;
  auto late = std::async(std::launch::async, [&] {
    gated_clock::pause_next = &late_release;  // paused after reading "open", before any lock
    bool ran = false;
    const bool rejected = rejection(b, &ran).has_value();
    return std::make_pair(rejected, ran);
  });
  const auto deadline = std::chrono::steady_clock::now() + 30s;
  while (gated_clock::paused.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  REQUIRE(gated_clock::paused.load() == 1);

  gate probe_entered;
  gate probe_release;
  auto probe = std::async(std::launch::async, [&] {
    return b.execute([&] {
      probe_entered.open();
      probe_release.wait();
      return 1;
    });
  });
  REQUIRE(probe_entered.wait_for(30s));
  late_release.open();
  const auto [rejected, ran] = late.get();
  CHECK(rejected);
  CHECK_FALSE(ran);
  probe_release.open();
  CHECK(probe.get() == 1);
  CHECK(b.is_closed());
}

TEST_CASE("a stale failure from before the circuit opened cannot disturb the probe", "[resilience]") {
  manual_clock::reset();
  transitions t;
  test_breaker b({.threshold = 2, .reset_time = 1s, .on_state_change = t.callback()});
  gate stale_entered;
  gate stale_release;
  auto stale = std::async(std::launch::async, [&] {
    try {
      b.execute([&] {
        stale_entered.open();
        stale_release.wait();
        throw db_error(errc::timeout);
      });
    } catch (const infra::database_error& e) {
      return e.code() == errc::timeout;  // its own error, unchanged
    }
    return false;
  });
  REQUIRE(stale_entered.wait_for(30s));
  fail_once(b);
  fail_once(b);
  REQUIRE(b.is_open());
  manual_clock::advance(1s);

  gate probe_entered;
  gate probe_release;
  auto probe = std::async(std::launch::async, [&] {
    return b.execute([&] {
      probe_entered.open();
      probe_release.wait();
      return 5;
    });
  });
  REQUIRE(probe_entered.wait_for(30s));
  stale_release.open();
  CHECK(stale.get());
  // The stale failure neither reopened the circuit nor freed the probe permit.
  CHECK(b.get_state().state == circuit_state::half_open);
  CHECK(b.get_state().failures == 2);
  auto e = rejection(b);
  REQUIRE(e);
  CHECK(contains(e->what(), "testing recovery"));
  probe_release.open();
  CHECK(probe.get() == 5);
  CHECK(b.is_closed());
  CHECK(b.get_state().failures == 0);
  CHECK(t.get() == std::vector<transition>{{circuit_state::open, circuit_state::closed},
                                           {circuit_state::half_open, circuit_state::open},
                                           {circuit_state::closed, circuit_state::half_open}});
}

TEST_CASE("a stale success during the probe does not close the circuit", "[resilience]") {
  manual_clock::reset();
  test_breaker b(1, 1s);
  gate stale_entered, stale_release, probe_entered, probe_release;
  auto stale = std::async(std::launch::async, [&] {
    return b.execute([&] {
      stale_entered.open();
      stale_release.wait();
      return 2;
    });
  });
  REQUIRE(stale_entered.wait_for(30s));
  fail_once(b);
  manual_clock::advance(1s);
  auto probe = std::async(std::launch::async, [&] {
    b.execute([&] {
      probe_entered.open();
      probe_release.wait();
      throw db_error(errc::connection_refused);
    });
  });
  REQUIRE(probe_entered.wait_for(30s));
  stale_release.open();
  CHECK(stale.get() == 2);
  CHECK(b.get_state().state == circuit_state::half_open);  // only the probe decides
  probe_release.open();
  CHECK_THROWS_AS(probe.get(), infra::database_error);
  CHECK(b.is_open());
  CHECK(b.get_state().failures == 2);
}

TEST_CASE("a stale success cannot close an open circuit and a stale failure cannot reopen it", "[resilience]") {
  manual_clock::reset();
  test_breaker b(2, 1s);
  gate entered_a, release_a, entered_b, release_b;
  auto stale_success = std::async(std::launch::async, [&] {
    return b.execute([&] {
      entered_a.open();
      release_a.wait();
      return 1;
    });
  });
  auto stale_failure = std::async(std::launch::async, [&] {
    try {
      b.execute([&] {
        entered_b.open();
        release_b.wait();
        throw db_error(errc::deadlock);
      });
    } catch (const infra::database_error&) {
    }
  });
  REQUIRE(entered_a.wait_for(30s));
  REQUIRE(entered_b.wait_for(30s));
  fail_once(b);
  fail_once(b);
  REQUIRE(b.is_open());
  release_a.open();
  CHECK(stale_success.get() == 1);
  CHECK(b.is_open());  // still open: the success belongs to the closed period before
  CHECK(b.get_state().failures == 2);

  manual_clock::advance(1s);
  CHECK_FALSE(rejection(b).has_value());  // the probe closes it
  REQUIRE(b.is_closed());
  release_b.open();
  stale_failure.get();
  CHECK(b.is_closed());
  CHECK(b.get_state().failures == 0);  // the new closed period starts clean
}

TEST_CASE("the error of fn propagates unchanged even when on_state_change throws", "[resilience]") {
  manual_clock::reset();
  std::vector<std::string> logged;
  auto log = infra::make_logger([&](infra::log_level, std::string_view m) { logged.emplace_back(m); });
  int reports = 0;
  test_breaker b({.threshold = 1,
                  .reset_time = 1s,
                  .on_state_change =
                      [&](circuit_state next, circuit_state) {
                        ++reports;
                        if (next == circuit_state::half_open) throw 3;  // not even a std::exception
                        throw std::runtime_error("callback bug");
                      },
                  .logger = &log});
  struct own_error {
    int id;
  };
  try {
    b.execute([]() -> int { throw own_error{9}; });
    FAIL("no exception");
  } catch (const own_error& e) {
    CHECK(e.id == 9);
  }
  CHECK(b.is_open());
  manual_clock::advance(1s);
  CHECK(b.execute([] { return std::string("fine"); }) == "fine");  // two throwing reports on the way
  CHECK(b.is_closed());
  CHECK(reports == 3);
  REQUIRE(logged.size() == 3);
  CHECK(contains(logged[0].c_str(), "callback bug"));
  CHECK(contains(logged[1].c_str(), "on_state_change"));
}

TEST_CASE("on_state_change may call back into the breaker", "[resilience]") {
  manual_clock::reset();
  transitions t;
  test_breaker* self = nullptr;
  auto record = t.callback();
  test_breaker b({.threshold = 1, .reset_time = 1s, .on_state_change = [&](circuit_state n, circuit_state p) {
                    record(n, p);
                    CHECK(self->get_state().state == n);  // no lock is held
                    if (n == circuit_state::open) self->reset();
                  }});
  self = &b;
  fail_once(b);
  CHECK(b.is_closed());
  CHECK(t.get() == std::vector<transition>{{circuit_state::open, circuit_state::closed},
                                           {circuit_state::closed, circuit_state::open}});
}

TEST_CASE("force_open opens with failures at threshold and half-opens after reset_time", "[resilience]") {
  manual_clock::reset();
  transitions t;
  test_breaker b({.threshold = 4, .reset_time = 1s, .on_state_change = t.callback()});
  b.force_open();
  CHECK(b.is_open());
  CHECK(b.get_state().failures == 4);
  CHECK_FALSE(b.get_state().last_failure_time.has_value());  // no failure happened
  CHECK(rejection(b).has_value());
  manual_clock::advance(1s);
  CHECK(b.get_state().state == circuit_state::half_open);
  CHECK_FALSE(rejection(b).has_value());
  CHECK(b.is_closed());
  CHECK(t.get() == std::vector<transition>{{circuit_state::open, circuit_state::closed},
                                           {circuit_state::half_open, circuit_state::open},
                                           {circuit_state::closed, circuit_state::half_open}});
}

TEST_CASE("force_open during a probe discards the probe outcome", "[resilience]") {
  manual_clock::reset();
  test_breaker b(1, 1s);
  fail_once(b);
  manual_clock::advance(1s);
  gate entered, release;
  auto probe = std::async(std::launch::async, [&] {
    return b.execute([&] {
      entered.open();
      release.wait();
      return 1;
    });
  });
  REQUIRE(entered.wait_for(30s));
  b.force_open();
  release.open();
  CHECK(probe.get() == 1);
  CHECK(b.is_open());  // the probe's success belonged to the revoked half-open period
  CHECK(rejection(b).has_value());
}

TEST_CASE("reset closes and forgets failures and their time", "[resilience]") {
  manual_clock::reset();
  transitions t;
  test_breaker b({.threshold = 3, .reset_time = 1s, .on_state_change = t.callback()});
  fail_once(b);
  fail_once(b);
  b.reset();
  CHECK(b.get_state().failures == 0);
  CHECK_FALSE(b.get_state().last_failure_time.has_value());
  CHECK(t.get().empty());  // it was closed already
  fail_once(b);
  fail_once(b);
  CHECK(b.is_closed());  // counting started again
  fail_once(b);
  REQUIRE(b.is_open());
  b.reset();
  CHECK(b.is_closed());
  CHECK_FALSE(rejection(b).has_value());
  CHECK(t.get() == std::vector<transition>{{circuit_state::open, circuit_state::closed},
                                           {circuit_state::closed, circuit_state::open}});
}

TEST_CASE("a probe failure after reset does not reopen the circuit", "[resilience]") {
  manual_clock::reset();
  test_breaker b(1, 1s);
  fail_once(b);
  manual_clock::advance(1s);
  gate entered, release;
  auto probe = std::async(std::launch::async, [&] {
    b.execute([&] {
      entered.open();
      release.wait();
      throw db_error(errc::connection_refused);
    });
  });
  REQUIRE(entered.wait_for(30s));
  b.reset();
  release.open();
  CHECK_THROWS_AS(probe.get(), infra::database_error);
  CHECK(b.is_closed());
  CHECK(b.get_state().failures == 0);
}

TEST_CASE("execute returns what fn returns", "[resilience]") {
  manual_clock::reset();
  test_breaker b(3, 1s);
  static int cell = 0;
  int& ref = b.execute([]() -> int& { return cell; });
  CHECK(&ref == &cell);
  static_assert(std::is_same_v<decltype(b.execute([]() -> int& { return cell; })), int&>);
  CHECK(*b.execute([] { return std::make_unique<int>(4); }) == 4);
  struct pinned {
    int v;
    explicit pinned(int x) : v(x) {}
    pinned(const pinned&) = delete;
    pinned& operator=(const pinned&) = delete;
  };
  const pinned p = b.execute([] { return pinned(6); });
  CHECK(p.v == 6);
  int calls = 0;
  b.execute([&] { ++calls; });
  CHECK(calls == 1);
  auto mutable_fn = [n = 0]() mutable { return ++n; };
  CHECK(b.execute(mutable_fn) == 1);
  CHECK(b.execute(std::move(mutable_fn)) == 2);
}

TEST_CASE("non-standard exceptions count as failures and propagate", "[resilience]") {
  manual_clock::reset();
  test_breaker b(2, 1s);
  for (int i = 0; i < 2; ++i) {
    try {
      b.execute([] { throw 17; });
      FAIL("no exception");
    } catch (int v) {
      CHECK(v == 17);
    }
  }
  CHECK(b.is_open());
}

TEST_CASE("circuit_breaker_error is a system_error that retries do not chase", "[resilience]") {
  const res::circuit_breaker_error open(circuit_state::open, 1500ms);
  const std::system_error& base = open;
  CHECK(base.code() == errc::circuit_open);
  CHECK(std::string(open.what()) == "Circuit breaker is open; next probe in 1500 ms");
  const res::circuit_breaker_error probing(circuit_state::half_open, 0ms);
  CHECK(contains(probing.what(), "testing recovery"));
  CHECK_FALSE(res::is_transient_error(open));

  // with_retry around a breaker stops at the first rejection.
  manual_clock::reset();
  test_breaker b(1, 1s);
  fail_once(b);
  int sleeps = 0;
  CHECK_THROWS_AS(res::with_retry([&] { b.execute([] {}); },
                                  {.sleep = [&](std::chrono::milliseconds) { ++sleeps; }}),
                  res::circuit_breaker_error);
  CHECK(sleeps == 0);
}

TEST_CASE("the steady clock breaker opens and probes in real time", "[resilience]") {
  res::circuit_breaker quick(1, 0ms);
  fail_once(quick);
  CHECK(quick.get_state().state == circuit_state::half_open);  // reset_time 0 has passed
  CHECK_FALSE(quick.is_open());
  CHECK(quick.execute([] { return 3; }) == 3);
  CHECK(quick.is_closed());

  res::circuit_breaker slow(2, 60s);
  fail_once(slow);
  fail_once(slow);
  CHECK(slow.is_open());
  auto e = rejection(slow);
  REQUIRE(e);
  CHECK(e->retry_after() <= 60000ms);
  CHECK(e->retry_after() > 50000ms);
}

// ---------------------------------------------------------------- concurrency stress

namespace {
struct hammer_failure {};  // deliberately not a std::exception
}  // namespace

TEST_CASE("many threads hammering one breaker keep one probe and report transitions in order", "[resilience]") {
  manual_clock::reset();
  constexpr int hammers = 4;
  constexpr int cycles = 150;
  constexpr int stale_per_cycle = 2;
  constexpr auto reset_time = 1s;

  std::mutex reported_mutex;
  std::vector<transition> reported;
  std::atomic<int> in_callback{0};
  std::atomic<bool> callback_overlap{false};
  test_breaker breaker({.threshold = 3,
                        .reset_time = reset_time,
                        .on_state_change = [&](circuit_state next, circuit_state previous) {
                          if (in_callback.fetch_add(1) != 0) callback_overlap = true;
                          {
                            std::lock_guard lock(reported_mutex);
                            reported.emplace_back(next, previous);
                          }
                          in_callback.fetch_sub(1);
                        }});

  std::atomic<bool> healthy{true};
  std::atomic<bool> probing{false};  // set by the test: the next hammer call admitted is a probe
  std::atomic<bool> stop{false};
  std::atomic<int> running{0};  // hammer fn bodies in progress
  std::atomic<int> probes{0};
  std::atomic<bool> probe_overlap{false};
  std::atomic<bool> probe_alone{false};  // the probe saw no concurrent rejections
  std::atomic<bool> stale_disturbed{false};
  std::atomic<bool> bad_rejection{false};
  std::atomic<long> successes{0};
  std::atomic<long> rejected_testing{0};
  std::atomic<long> rejected_open{0};

  struct stale_calls {
    gate release;
    std::atomic<int> entered{0};
    std::atomic<int> done{0};
    bool fail = true;
  };
  std::atomic<stale_calls*> current_stale{nullptr};

  // Parking lets the test make sure no hammer is between admission and its fn body.
  std::mutex park_mutex;
  std::condition_variable park_cv;
  std::atomic<bool> hold{false};
  int parked = 0;

  auto wait_until = [&](auto pred, const char* what) {
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) {
        FAIL_CHECK("timed out waiting for " << what);
        return false;
      }
      std::this_thread::sleep_for(100us);
    }
    return true;
  };

  auto hammer_fn = [&] {
    const int now_running = running.fetch_add(1) + 1;
    struct leave {
      std::atomic<int>& r;
      ~leave() { r.fetch_sub(1); }
    } guard{running};
    if (probing.load()) {
      ++probes;
      if (now_running != 1) probe_overlap = true;
      if (auto* s = current_stale.load()) {
        // Stale calls admitted before the circuit opened finish now, during the probe.
        s->release.open();
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        while (s->done.load() < stale_per_cycle && std::chrono::steady_clock::now() < deadline) {
          std::this_thread::yield();
        }
        if (breaker.get_state().state != circuit_state::half_open) stale_disturbed = true;
        current_stale = nullptr;
      }
      // Hold the probe until other callers were turned away meanwhile.
      const long seen = rejected_testing.load();
      const auto deadline = std::chrono::steady_clock::now() + 30s;
      while (rejected_testing.load() < seen + 2 * hammers && !stop.load()) {
        if (std::chrono::steady_clock::now() > deadline) {
          probe_alone = true;
          break;
        }
        std::this_thread::yield();
      }
      probing = false;
    }
    if (!healthy.load()) throw hammer_failure{};
  };

  std::vector<std::thread> threads;
  for (int i = 0; i < hammers; ++i) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        if (hold.load()) {
          std::unique_lock lock(park_mutex);
          ++parked;
          park_cv.notify_all();
          park_cv.wait(lock, [&] { return !hold.load() || stop.load(); });
          --parked;
        }
        try {
          breaker.execute(hammer_fn);
          ++successes;
        } catch (const res::circuit_breaker_error& e) {
          const bool testing = e.state() == circuit_state::half_open;
          if (testing != contains(e.what(), "testing recovery")) bad_rejection = true;
          ++(testing ? rejected_testing : rejected_open);
          std::this_thread::yield();
        } catch (const hammer_failure&) {
        }
      }
    });
  }
  std::vector<std::thread> stale_threads;
  std::vector<std::unique_ptr<stale_calls>> stale_records;
  auto shutdown = [&] {
    stop = true;
    for (auto& record : stale_records) record->release.open();
    hold = false;
    park_cv.notify_all();
    for (auto& th : threads) th.join();
    for (auto& th : stale_threads) th.join();
    threads.clear();
    stale_threads.clear();
  };
  struct on_exit {
    std::function<void()> fn;
    ~on_exit() { fn(); }
  } cleanup{shutdown};

  auto park_all = [&] {
    hold = true;
    return wait_until(
        [&] {
          std::lock_guard lock(park_mutex);
          return parked == hammers;
        },
        "hammers to park");
  };
  auto release_all = [&] {
    {
      std::lock_guard lock(park_mutex);
      hold = false;
    }
    park_cv.notify_all();
  };

  std::vector<transition> expected;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    INFO("cycle " << cycle);
    // Closed and healthy for a while.
    const long s0 = successes.load();
    REQUIRE(wait_until([&] { return successes.load() >= s0 + 20; }, "successes"));

    // Calls admitted now and finishing only during the coming probe.
    auto& stale = *stale_records.emplace_back(std::make_unique<stale_calls>());
    stale.fail = cycle % 3 != 0;
    for (int i = 0; i < stale_per_cycle; ++i) {
      stale_threads.emplace_back([&breaker, s = &stale] {
        try {
          breaker.execute([s] {
            ++s->entered;
            s->release.wait();
            if (s->fail) throw hammer_failure{};
          });
        } catch (...) {
        }
        ++s->done;
      });
    }
    REQUIRE(wait_until([&] { return stale.entered.load() == stale_per_cycle; }, "stale calls"));
    current_stale = &stale;

    // The dependency fails: the breaker opens.
    healthy = false;
    REQUIRE(wait_until([&] { return breaker.get_state().state == circuit_state::open; }, "open"));
    expected.emplace_back(circuit_state::open, circuit_state::closed);
    REQUIRE(park_all());
    REQUIRE(running.load() == 0);

    const long probes_before = probes.load();
    const bool failing_probe_first = cycle % 2 == 1;
    if (failing_probe_first) {
      probing = true;
      manual_clock::advance(reset_time);
      release_all();
      REQUIRE(wait_until(
          [&] { return !probing.load() && breaker.get_state().state == circuit_state::open; },
          "failed probe"));
      expected.emplace_back(circuit_state::half_open, circuit_state::open);
      expected.emplace_back(circuit_state::open, circuit_state::half_open);
      REQUIRE(park_all());
    }
    healthy = true;
    probing = true;
    manual_clock::advance(reset_time);
    release_all();
    REQUIRE(wait_until(
        [&] { return !probing.load() && breaker.get_state().state == circuit_state::closed; },
        "successful probe"));
    expected.emplace_back(circuit_state::half_open, circuit_state::open);
    expected.emplace_back(circuit_state::closed, circuit_state::half_open);
    stale.release.open();  // normally done by the probe already
    REQUIRE(wait_until([&] { return stale.done.load() == stale_per_cycle; }, "stale calls done"));
    CHECK(probes.load() - probes_before == (failing_probe_first ? 2 : 1));
    CHECK(breaker.get_state().failures == 0);  // stale failures were not counted
  }
  shutdown();
  cleanup.fn = [] {};

  CHECK_FALSE(probe_overlap.load());
  CHECK_FALSE(probe_alone.load());
  CHECK_FALSE(stale_disturbed.load());
  CHECK_FALSE(bad_rejection.load());
  CHECK_FALSE(callback_overlap.load());
  CHECK(rejected_open.load() > 0);
  CHECK(rejected_testing.load() >= 2L * hammers * cycles);
  // Every report chains onto the previous one and the sequence is exactly what happened.
  std::lock_guard lock(reported_mutex);
  circuit_state last = circuit_state::closed;
  for (const auto& [next, previous] : reported) {
    CHECK(previous == last);
    last = next;
  }
  CHECK(reported == expected);
}

TEST_CASE("a reset_time too large for the clock keeps the circuit open until reset", "[resilience]") {
  // milliseconds::max() and 300 years overflow nanoseconds; the reset time saturates at the
  // clock's maximum instead of wrapping negative (which half-opened the circuit at once).
  for (auto reset : {std::chrono::milliseconds::max(), std::chrono::milliseconds(std::chrono::hours(24 * 365 * 300))}) {
    INFO("reset_time " << reset.count() << " ms");
    manual_clock::reset();
    test_breaker b(1, reset);
    fail_once(b);
    CHECK(b.is_open());
    manual_clock::advance(std::chrono::hours(24 * 365 * 200));  // two centuries later
    CHECK(b.is_open());
    CHECK(b.get_state().state == circuit_state::open);
    bool ran = false;
    auto rejected = rejection(b, &ran);
    CHECK_FALSE(ran);
    REQUIRE(rejected.has_value());
    CHECK(rejected->state() == circuit_state::open);
    CHECK(rejected->retry_after() > std::chrono::hours(24 * 365 * 50));
    CHECK(contains(rejected->what(), "Circuit breaker is open; next probe in "));
    b.reset();
    CHECK(b.is_closed());
    CHECK_FALSE(rejection(b).has_value());
  }
}

TEST_CASE("the steady clock breaker with a huge reset_time rejects after opening", "[resilience]") {
  res::circuit_breaker b(1, std::chrono::milliseconds::max());
  fail_once(b);
  CHECK(b.is_open());
  CHECK(b.get_state().state == circuit_state::open);
  auto rejected = rejection(b);
  REQUIRE(rejected.has_value());
  CHECK(rejected->retry_after() > std::chrono::hours(24 * 365 * 100));
  b.force_open();
  CHECK(b.is_open());
}

TEST_CASE("a breaker without a logger reports a throwing on_state_change to the default logger", "[resilience]") {
  std::vector<std::string> seen;
  auto mine = kysera::infra::make_logger([&](kysera::infra::log_level, std::string_view m) { seen.emplace_back(m); });
  kysera::infra::logger* previous = kysera::infra::set_default_logger(&mine);
  kysera::infra::resilience::circuit_breaker breaker(
      {.threshold = 1, .reset_time = std::chrono::seconds(60),
       .on_state_change = [](kysera::infra::resilience::circuit_state, kysera::infra::resilience::circuit_state) {
         throw std::runtime_error("callback bug");
       }});
  breaker.force_open();
  kysera::infra::set_default_logger(previous);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].find("on_state_change threw (ignored): callback bug") != std::string::npos);
}
