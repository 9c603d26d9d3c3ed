// connection_pool during an outage, over a fake connection on a manual clock: at most
// max_connecting connects in flight, the connect backoff (exact windows, one probe, fail fast,
// idle connections still served), the bound on connect attempts over a 10 s outage under 8
// threads and recovery within connect_backoff_max, max_waiters, leak detection and warm_up.

#include "support/catch.hpp"
#include "support/fake_database.hpp"
#include "support/manual_clock.hpp"

#include "pool/support_pool.hpp"

#include <kysera/infra/deadline.hpp>
#include <kysera/infra/pool.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <future>
#include <mutex>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace infra = kysera::infra;
namespace kp = kysera::infra::pool;
using kysera::test::manual_clock;
using kysera::test::pool::attempt_bound;
using kysera::test::pool::catch_database_error;
using kysera::test::pool::contains;
using kysera::test::pool::eventually;
using kysera::test::pool::fake_backend;
using kysera::test::pool::fake_connection;
using kysera::test::pool::holds_for;
using kysera::test::pool::metrics;
using kysera::test::pool::quiet;
using namespace std::chrono_literals;

namespace {

using test_pool = kp::connection_pool<fake_connection, manual_clock>;

// No jitter: the windows are exactly 100, 200, 400, 400, ... ms.
kp::pool_options exact_backoff(std::size_t max_size) {
  auto o = quiet(max_size);
  o.connect_backoff_initial = 100ms;
  o.connect_backoff_max = 400ms;
  o.connect_backoff_jitter = 0;
  return o;
}

struct fixture {
  fixture() { manual_clock::reset(); }
  std::shared_ptr<fake_backend> backend = fake_backend::make();
};

// Thread-safe: keeps every warning.
class capture_logger final : public infra::logger {
 public:
  std::vector<std::string> warnings() {
    std::lock_guard lock(m_);
    return warnings_;
  }

 protected:
  void write(infra::log_level level, std::string_view message) override {
    std::lock_guard lock(m_);
    if (level == infra::log_level::warn) warnings_.emplace_back(message);
  }

 private:
  std::mutex m_;
  std::vector<std::string> warnings_;
};

}  // namespace

TEST_CASE("outage options are validated and errors name the field", "[pool][outage]") {
  fixture f;
  auto expect = [&](kp::pool_options o, const std::string& field) {
    try {
      test_pool p(f.backend->factory(), o);
      FAIL("accepted bad " << field);
    } catch (const std::invalid_argument& e) {
      CHECK(contains(e.what(), field));
    }
  };
  auto o = quiet(2);
  o.connect_backoff_after = 0;
  expect(o, "connect_backoff_after");
  o = quiet(2);
  o.connect_backoff_initial = -1ms;
  expect(o, "connect_backoff_initial");
  o = quiet(2);
  o.connect_backoff_initial = 2s;
  o.connect_backoff_max = 1s;
  expect(o, "connect_backoff_max");
  o = quiet(2);
  o.connect_backoff_jitter = 1.5;
  expect(o, "connect_backoff_jitter");
  o = quiet(2);
  o.leak_detection_threshold = -1ms;
  expect(o, "leak_detection_threshold");
  // The defaults are valid, and 0 turns each feature off.
  o = quiet(2);
  o.connect_backoff_initial = 0ms;
  o.connect_backoff_max = 0ms;
  CHECK_NOTHROW(test_pool(f.backend->factory(), o));
}

TEST_CASE("at most max_connecting connects are in flight; the rest queue", "[pool][outage]") {
  fixture f;
  auto o = quiet(4);
  o.max_connecting = 2;
  test_pool pool(f.backend->factory(), o);
  f.backend->block_connects();
  std::vector<std::future<test_pool::lease>> callers;
  for (int i = 0; i < 4; ++i)
    callers.push_back(std::async(std::launch::async, [&] { return pool.acquire(1h); }));
  f.backend->wait_in_factory(2);
  REQUIRE(eventually([&] { return pool.get_metrics().waiting == 2; }));
  CHECK(holds_for([&] { return f.backend->in_factory() == 2; }, 20ms));
  f.backend->unblock_connects();
  std::vector<test_pool::lease> leases;
  std::vector<int> ids;
  for (auto& c : callers) {
    leases.push_back(c.get());
    ids.push_back(leases.back()->id());
  }
  std::sort(ids.begin(), ids.end());
  CHECK(ids == std::vector<int>{1, 2, 3, 4});
  auto s = pool.get_statistics();
  CHECK(s.created == 4);
  CHECK(s.connect_limited == 2);
  CHECK(s.timed_out == 0);
}

TEST_CASE("after consecutive failed connects the pool backs off, failing fast, then probes once",
          "[pool][outage]") {
  fixture f;
  auto o = exact_backoff(3);
  test_pool pool(f.backend->factory(), o);
  f.backend->set_down(true);
  // Below connect_backoff_after every acquire dials and rethrows the factory's error.
  CHECK(catch_database_error([&] { (void)pool.acquire(); }).code() ==
        infra::errc::connection_refused);
  CHECK(pool.get_statistics().backoffs == 0);
  CHECK(catch_database_error([&] { (void)pool.acquire(); }).code() ==
        infra::errc::connection_refused);
  CHECK(f.backend->attempts() == 2);
  CHECK(pool.get_statistics().backoffs == 1);

  // The window: acquires that need a connection fail at once with the last error's code.
  auto throttled = catch_database_error([&] { (void)pool.acquire(1h); });
  CHECK(throttled.code() == infra::errc::connection_refused);
  CHECK(contains(throttled.what(), "not connecting for another 100 ms after 2 failed connects"));
  CHECK(contains(throttled.what(), "fake: connection refused"));
  CHECK_THROWS_AS(pool.try_acquire(), infra::database_error);
  CHECK(f.backend->attempts() == 2);
  CHECK(pool.get_statistics().throttled == 2);

  // Each failed probe opens a window twice as long, up to connect_backoff_max.
  std::vector<std::chrono::milliseconds> windows{100ms, 200ms, 400ms, 400ms};
  int attempts = 2;
  for (auto w : windows) {
    manual_clock::advance(w - 1ms);
    CHECK(catch_database_error([&] { (void)pool.acquire(); }).code() ==
          infra::errc::connection_refused);
    CHECK(f.backend->attempts() == attempts);  // still in the window: nothing dialled
    manual_clock::advance(1ms);
    CHECK(catch_database_error([&] { (void)pool.acquire(); }).code() ==
          infra::errc::connection_refused);
    CHECK(f.backend->attempts() == ++attempts);  // the probe
  }
  CHECK(pool.get_statistics().backoffs == 5);

  // The server is back: the probe after the window succeeds and the pool dials freely again.
  f.backend->set_down(false);
  manual_clock::advance(400ms);
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
    auto c = pool.acquire();
    CHECK(pool.get_metrics() == metrics(3, 0, 3, 0, 3));
  }
  auto s = pool.get_statistics();
  CHECK(s.created == 3);
  CHECK(s.create_failed == 6);
  CHECK(s.timed_out == 0);
}

TEST_CASE("in a backoff window idle connections are still handed out", "[pool][outage]") {
  fixture f;
  test_pool pool(f.backend->factory(), exact_backoff(3));
  auto held = std::make_optional(pool.acquire());
  f.backend->set_down(true);
  for (int i = 0; i < 2; ++i) (void)catch_database_error([&] { (void)pool.acquire(); });
  REQUIRE(pool.get_statistics().backoffs == 1);
  held.reset();
  {
    auto again = pool.acquire();  // idle: served although the pool does not dial
    CHECK(again->id() == 1);
    auto e = catch_database_error([&] { (void)pool.acquire(1h); });  // needs a new one: fast
    CHECK(e.code() == infra::errc::connection_refused);
  }
  CHECK(pool.get_statistics().throttled == 1);
  CHECK(f.backend->attempts() == 3);
}

TEST_CASE("after a window one probe dials; callers queued behind it fail fast when it fails",
          "[pool][outage]") {
  fixture f;
  test_pool pool(f.backend->factory(), exact_backoff(4));
  f.backend->set_down(true);
  for (int i = 0; i < 2; ++i) (void)catch_database_error([&] { (void)pool.acquire(); });
  manual_clock::advance(100ms);
  f.backend->block_connects();
  auto probe = std::async(std::launch::async, [&] { (void)pool.acquire(1h); });
  f.backend->wait_in_factory(1);
  auto q1 = std::async(std::launch::async, [&] { (void)pool.acquire(1h); });
  auto q2 = std::async(std::launch::async, [&] { (void)pool.acquire(1h); });
  REQUIRE(eventually([&] { return pool.get_metrics().waiting == 2; }));
  CHECK(holds_for([&] { return f.backend->in_factory() == 1; }, 20ms));  // not a herd
  f.backend->unblock_connects();
  CHECK(catch_database_error([&] { probe.get(); }).code() == infra::errc::connection_refused);
  CHECK(catch_database_error([&] { q1.get(); }).code() == infra::errc::connection_refused);
  CHECK(catch_database_error([&] { q2.get(); }).code() == infra::errc::connection_refused);
  CHECK(f.backend->attempts() == 3);
  auto s = pool.get_statistics();
  CHECK(s.throttled == 2);
  CHECK(s.backoffs == 2);
  CHECK(s.timed_out == 0);
  CHECK(pool.get_metrics() == metrics(0, 0, 0, 0, 4));
}

TEST_CASE("a probe that succeeds lets the callers queued behind it connect", "[pool][outage]") {
  fixture f;
  test_pool pool(f.backend->factory(), exact_backoff(4));
  f.backend->set_down(true);
  for (int i = 0; i < 2; ++i) (void)catch_database_error([&] { (void)pool.acquire(); });
  manual_clock::advance(100ms);
  f.backend->block_connects();
  f.backend->set_down(false);
  auto probe = std::async(std::launch::async, [&] { return pool.acquire(1h)->id(); });
  f.backend->wait_in_factory(1);
  auto q1 = std::async(std::launch::async, [&] { return pool.acquire(1h)->id(); });
  REQUIRE(eventually([&] { return pool.get_metrics().waiting == 1; }));
  f.backend->unblock_connects();
  CHECK(probe.get() >= 1);
  CHECK(q1.get() >= 1);
  CHECK(pool.get_statistics().created >= 1);
  CHECK(pool.get_statistics().throttled == 0);
}

TEST_CASE("a 10 s outage under 8 threads: connect attempts stay bounded, callers fail fast, "
          "and the pool serves again within connect_backoff_max",
          "[pool][outage]") {
  fixture f;
  auto o = quiet(4);  // the default backoff: 100 ms doubling to 1 s, jitter 0.2, after 2 failures
  test_pool pool(f.backend->factory(), o);
  f.backend->set_down(true);
  std::atomic<bool> stop{false};
  std::atomic<int> refused{0};
  std::atomic<int> other{0};
  std::atomic<int> served{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        try {
          auto l = pool.acquire(1h);  // never times out here: every failure is a fast one
          served.fetch_add(1);
        } catch (const infra::database_error& e) {
          (e.code() == infra::errc::connection_refused ? refused : other).fetch_add(1);
        }
        std::this_thread::yield();
      }
    });
  }
  kysera::test::pool::stop_and_join join{stop, threads};

  REQUIRE(eventually([&] { return pool.get_statistics().backoffs >= 1; }));
  for (int step = 0; step < 1000; ++step) {  // 10 s of the pool's clock, in 10 ms steps
    manual_clock::advance(10ms);
    const int failures = refused.load();  // each step sees the callers at work
    REQUIRE(eventually([&] { return refused.load() > failures; }));
  }
  const int attempts = f.backend->attempts();
  const int bound = attempt_bound(o, 10s);
  INFO("connect attempts " << attempts << ", bound " << bound);
  CHECK(bound == 20);  // 1 + 4 before the first window, then at most 15 probes
  CHECK(attempts <= bound);
  CHECK(served.load() == 0);
  CHECK(other.load() == 0);
  CHECK(pool.get_statistics().throttled > 0);

  // The server accepts again: by the end of the current window (at most connect_backoff_max
  // away) a probe succeeds and the callers are served.
  f.backend->set_down(false);
  manual_clock::advance(o.connect_backoff_max);
  CHECK(eventually([&] { return served.load() > 0; }));
  CHECK(other.load() == 0);
}

TEST_CASE("past max_waiters queued callers, acquire throws pool_exhausted at once",
          "[pool][outage]") {
  fixture f;
  auto o = quiet(1);
  o.max_waiters = 1;
  test_pool pool(f.backend->factory(), o);
  auto held = std::make_optional(pool.acquire());
  auto waiter = std::async(std::launch::async, [&] { return pool.acquire(1h)->id(); });
  REQUIRE(eventually([&] { return pool.get_metrics().waiting == 1; }));
  // On the manual clock a wait would never end: only the rejection can return.
  auto rejected = std::async(std::launch::async,
                             [&] { return catch_database_error([&] { (void)pool.acquire(1h); }); });
  REQUIRE(rejected.wait_for(20s) == std::future_status::ready);
  auto e = rejected.get();
  CHECK(e.code() == infra::errc::pool_exhausted);
  CHECK(contains(e.what(), "max_waiters 1"));
  CHECK_FALSE(pool.try_acquire().has_value());
  auto s = pool.get_statistics();
  CHECK(s.rejected == 1);
  CHECK(s.timed_out == 0);
  held.reset();
  CHECK(waiter.get() == 1);
}

TEST_CASE("under an ambient deadline a max_waiters rejection is still pool_exhausted, not timeout",
          "[pool][outage][deadline]") {
  fixture f;
  auto o = quiet(1);
  o.max_waiters = 1;
  test_pool pool(f.backend->factory(), o);
  auto held = std::make_optional(pool.acquire());
  auto waiter = std::async(std::launch::async, [&] { return pool.acquire(1h)->id(); });
  REQUIRE(eventually([&] { return pool.get_metrics().waiting == 1; }));
  // The deadline comes before the acquire timeout, so the wait is the deadline's; the queue is
  // full, so the caller is turned away at once, and must be told so.
  auto rejected = std::async(std::launch::async, [&] {
    const infra::deadline_scope scope(30min);
    return catch_database_error([&] { (void)pool.acquire(1h); });
  });
  REQUIRE(rejected.wait_for(20s) == std::future_status::ready);
  auto e = rejected.get();
  CHECK(e.code() == infra::errc::pool_exhausted);
  CHECK(contains(e.what(), "max_waiters 1"));
  CHECK(pool.get_statistics().rejected == 1);
  held.reset();
  CHECK(waiter.get() == 1);
}

// Two connections, leak detection at 1 s, warnings to `log`.
static kp::pool_options leak_options(capture_logger& log) {
  auto o = quiet(2);
  o.leak_detection_threshold = 1s;
  o.logger = &log;
  return o;
}

TEST_CASE("a lease held past leak_detection_threshold is reported once, naming where and who",
          "[pool][outage]") {
  fixture f;
  capture_logger log;
  test_pool pool(f.backend->factory(), leak_options(log));
  const auto line = __LINE__ + 1;
  auto lease = pool.acquire();
#if defined(__linux__)
  const auto me = std::to_string(::syscall(SYS_gettid));  // the kernel's id, as top -H shows it
#else
  const auto me = std::to_string(kysera::infra::pool::detail::this_thread_number());
#endif
  manual_clock::advance(999ms);
  pool.maintain();
  CHECK(log.warnings().empty());
  manual_clock::advance(1ms);
  pool.maintain();
  REQUIRE(log.warnings().size() == 1);
  const auto w = log.warnings().front();
  INFO(w);
  CHECK(contains(w, "outage_test.cpp:" + std::to_string(line)));
  CHECK(contains(w, "by thread " + me + " "));
  CHECK(contains(w, "held for 1000 ms"));
  CHECK(pool.get_statistics().leaked == 1);
  manual_clock::advance(10s);
  pool.maintain();  // once per lease
  CHECK(log.warnings().size() == 1);
  CHECK(pool.get_statistics().leaked == 1);

  lease.release();
  {
    auto quick = pool.acquire();  // a new lease of the same connection, returned in time
    manual_clock::advance(500ms);
    pool.maintain();
  }
  pool.execute("select 1");  // with_connection records its caller too
  CHECK(pool.get_statistics().leaked == 1);
  auto second = pool.acquire();
  manual_clock::advance(2s);
  pool.maintain();
  CHECK(pool.get_statistics().leaked == 2);
}

TEST_CASE("a leak report names the thread that acquired, not the one that scans",
          "[pool][outage]") {
  fixture f;
  capture_logger log;
  test_pool pool(f.backend->factory(), leak_options(log));
  std::optional<test_pool::lease> held;
  std::uint32_t worker = 0;
  std::thread([&] {
    held.emplace(pool.acquire());
    worker = kysera::infra::pool::detail::this_thread_number();
  }).join();
  REQUIRE(worker != 0);
  CHECK(worker != kysera::infra::pool::detail::this_thread_number());
  manual_clock::advance(1s);
  pool.maintain();
  REQUIRE(log.warnings().size() == 1);
  INFO(log.warnings().front());
  CHECK(contains(log.warnings().front(), "by thread " + std::to_string(worker) + " "));
}

TEST_CASE("leak detection is off by default", "[pool][outage]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(1));
  auto lease = pool.acquire();
  manual_clock::advance(24h);
  pool.maintain();
  CHECK(pool.get_statistics().leaked == 0);
}

TEST_CASE("warm_up opens min_idle connections now, or throws the connect error",
          "[pool][outage]") {
  fixture f;
  SECTION("min_idle connections") {
    auto o = quiet(4);
    o.min_idle = 3;
    test_pool pool(f.backend->factory(), o);
    pool.warm_up(0ms);
    CHECK(pool.get_metrics() == metrics(3, 3, 0, 0, 4));
    pool.warm_up(0ms);  // already there: nothing more
    CHECK(pool.get_statistics().created == 3);
  }
  SECTION("at least one") {
    test_pool pool(f.backend->factory(), quiet(4));
    pool.warm_up(0ms);
    CHECK(pool.get_metrics() == metrics(1, 1, 0, 0, 4));
  }
  SECTION("an unreachable server") {
    test_pool pool(f.backend->factory(), exact_backoff(4));
    f.backend->set_down(true);
    CHECK(catch_database_error([&] { pool.warm_up(0ms); }).code() ==
          infra::errc::connection_refused);
    CHECK_THROWS_AS(pool.warm_up(-1ms), std::invalid_argument);
  }
  SECTION("retries through the backoff until the timeout, then throws the connect error") {
    test_pool pool(f.backend->factory(), exact_backoff(4));
    f.backend->set_down(true);
    auto warm = std::async(std::launch::async, [&] { pool.warm_up(250ms); });
    REQUIRE(eventually([&] { return pool.get_statistics().backoffs == 1; }));
    manual_clock::advance(100ms);  // the first probe
    REQUIRE(eventually([&] { return pool.get_statistics().backoffs == 2; }));
    manual_clock::advance(149ms);  // 249 ms: in the window that ends at 300 ms, before the timeout
    CHECK(warm.wait_for(20ms) == std::future_status::timeout);
    manual_clock::advance(1ms);  // the timeout, in the window: the last connect error, no dial
    CHECK(catch_database_error([&] { warm.get(); }).code() == infra::errc::connection_refused);
    CHECK(f.backend->attempts() == 3);
  }
  SECTION("a server that comes back within the timeout") {
    test_pool pool(f.backend->factory(), exact_backoff(4));
    f.backend->set_down(true);
    auto warm = std::async(std::launch::async, [&] { pool.warm_up(5s); });
    REQUIRE(eventually([&] { return pool.get_statistics().backoffs == 1; }));
    f.backend->set_down(false);
    manual_clock::advance(100ms);
    warm.get();
    CHECK(pool.get_metrics() == metrics(1, 1, 0, 0, 4));
  }
}

TEST_CASE("the housekeeper's min_idle top-up keeps to the connect backoff", "[pool][outage]") {
  fixture f;
  auto o = exact_backoff(4);
  o.min_idle = 2;
  test_pool pool(f.backend->factory(), o);
  f.backend->set_down(true);
  for (int step = 0; step < 100; ++step) {  // 1 s of passes, every 10 ms
    pool.maintain();
    manual_clock::advance(10ms);
  }
  // 2 failures open the first window; then one probe at 100, 300, 700 ms (windows 100, 200, 400).
  CHECK(f.backend->attempts() == 5);
  f.backend->set_down(false);
  manual_clock::advance(400ms);
  pool.maintain();
  CHECK(pool.get_metrics() == metrics(2, 2, 0, 0, 4));
}

TEST_CASE("with a housekeeping thread, leaks are found within about the threshold",
          "[pool][outage]") {
  auto backend = fake_backend::make();
  capture_logger log;
  kp::pool_options o;
  o.max_size = 2;
  o.housekeeping_interval = 10min;  // the leak threshold makes the housekeeper run more often
  o.leak_detection_threshold = 20ms;
  o.logger = &log;
  kp::connection_pool<fake_connection> pool(backend->factory(), o);
  auto lease = pool.acquire();
  // The housekeeper counts the leak, then logs it: wait for both.
  CHECK(eventually([&] { return pool.get_statistics().leaked == 1 && !log.warnings().empty(); }));
  REQUIRE(log.warnings().size() == 1);
  CHECK(contains(log.warnings().front(), "outage_test.cpp"));
}
