// connection_pool's timing histograms (pool_options::record_timings): off by default; with it,
// create_time counts every factory call (failed ones too), wait_time every acquire that obtained
// a connection (try_ping_until's included) and use_time every lease, with the durations a manual
// clock makes exact; and readings while other threads acquire and release (run under TSan in CI).

#include "support/catch.hpp"
#include "support/manual_clock.hpp"

#include "pool/support_pool.hpp"

#include <kysera/infra/pool.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <optional>
#include <string_view>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
namespace kp = kysera::infra::pool;
using kysera::test::manual_clock;
using kysera::test::pool::eventually;
using kysera::test::pool::fake_backend;
using kysera::test::pool::fake_connection;
using kysera::test::pool::fixture;
using namespace std::chrono_literals;

namespace {

using test_pool = kp::connection_pool<fake_connection, manual_clock>;

kp::pool_options timed(std::size_t max_size) {
  auto o = kysera::test::pool::quiet(max_size);
  o.record_timings = true;
  return o;
}

// A database with a bounded ping, for try_ping_until (the health checks' lease).
struct bounded_db {
  void execute(std::string_view) {}
  void close() {}
  bool try_ping_until(std::chrono::steady_clock::time_point) { return true; }
};
static_assert(infra::database_with_bounded_ping<bounded_db>);

// Bucket indexes of OpenTelemetry's bounds 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10 s.
constexpr std::size_t up_to_1ms = 0, up_to_5ms = 1, up_to_50ms = 3, up_to_500ms = 5, up_to_5s = 7;

}  // namespace

TEST_CASE("timings are off by default and the pool then has none", "[pool]") {
  fixture f;
  auto o = timed(2);
  o.record_timings = false;
  CHECK_FALSE(kp::pool_options{}.record_timings);
  test_pool pool(f.backend->factory(), o);
  { auto l = pool.acquire(); }
  CHECK(pool.timings() == nullptr);
  CHECK(pool.get_statistics().acquired == 1);
}

TEST_CASE("create_time times every factory call (a failing one too) on either thread", "[pool]") {
  fixture f;
  auto o = timed(3);
  o.min_idle = 1;
  test_pool pool(f.backend->factory(), o);
  REQUIRE(pool.timings() != nullptr);
  const auto& t = *pool.timings();

  // The factory runs on the acquiring thread, so it can move the clock by what a connect takes.
  std::atomic<bool> refuse{false};
  f.backend->set_fail_hook([&] {
    manual_clock::advance(refuse ? 250ms : 3ms);
    return refuse.load();
  });
  auto l1 = pool.acquire();
  auto l2 = pool.acquire();
  refuse = true;
  CHECK_THROWS_AS(pool.acquire(), infra::database_error);

  auto created = t.create_time();
  CHECK(created.count == 3);
  CHECK(created.counts[up_to_5ms] == 2);
  CHECK(created.counts[up_to_500ms] == 1);
  CHECK(created.sum == Approx(0.256));
  const auto s = pool.get_statistics();
  CHECK(s.created == 2);
  CHECK(s.create_failed == 1);
  CHECK(created.count == s.created + s.create_failed);

  // The housekeeper's connections for min_idle are timed too.
  refuse = false;
  pool.maintain();
  CHECK(pool.get_metrics().idle == 1);
  created = t.create_time();
  CHECK(created.count == 4);
  CHECK(created.counts[up_to_5ms] == 3);

  // The failed acquire obtained nothing: only the two that did (each waited for its connect).
  const auto waited = t.wait_time();
  CHECK(waited.count == 2);
  CHECK(waited.counts[up_to_5ms] == 2);
  CHECK(waited.sum == Approx(0.006));
}

TEST_CASE("wait_time counts each acquire that obtained a connection and use_time each lease", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), timed(1));
  const auto& t = *pool.timings();

  {
    auto l = pool.acquire();  // opens the connection: no time passes on this clock
    manual_clock::advance(2s);
  }
  if (auto l = pool.try_acquire()) {
    manual_clock::advance(20ms);
  } else {
    FAIL("try_acquire found no connection");
  }
  {
    auto l = pool.acquire();
    l.mark_broken();  // closed instead of returned, still timed
  }
  pool.execute("select 1");  // the pool's own lease
  CHECK(pool.get_statistics().closed_broken == 1);

  // A waiter: queued behind a held lease for 300 ms of the clock.
  auto held = std::make_optional(pool.acquire());
  auto waiter = std::async(std::launch::async, [&] { auto l = pool.acquire(1s); });
  REQUIRE(eventually([&] { return pool.get_metrics().waiting == 1; }));
  manual_clock::advance(300ms);
  // A timed-out acquire obtains nothing and is not in wait_time (the timeouts counter has it).
  CHECK_THROWS_AS(pool.acquire(0ms), infra::database_error);
  held.reset();
  waiter.get();

  const auto s = pool.get_statistics();
  CHECK(s.acquired == 6);
  CHECK(s.timed_out == 1);
  const auto waited = t.wait_time();
  CHECK(waited.count == s.acquired);
  CHECK(waited.counts[up_to_500ms] == 1);
  CHECK(waited.counts[up_to_1ms] == s.acquired - 1);
  CHECK(waited.sum == Approx(0.3));
  const auto used = t.use_time();
  CHECK(used.count == s.acquired);  // every lease has come back
  CHECK(used.counts[up_to_5s] == 1);
  CHECK(used.counts[up_to_50ms] == 1);
  CHECK(used.counts[up_to_500ms] == 1);  // the held lease
  CHECK(used.sum == Approx(2.32));
}

TEST_CASE("try_ping_until's lease is timed like any other", "[pool]") {
  manual_clock::reset();
  kp::connection_pool<bounded_db, manual_clock> pool([] { return std::make_unique<bounded_db>(); }, timed(1));
  const auto deadline = std::chrono::steady_clock::now() + 1s;
  CHECK_FALSE(pool.try_ping_until(deadline));  // nothing idle: no lease, nothing recorded
  CHECK(pool.timings()->wait_time().count == 0);
  { auto l = pool.acquire(); }
  CHECK(pool.try_ping_until(deadline));
  const auto s = pool.get_statistics();
  CHECK(s.acquired == 2);
  CHECK(pool.timings()->wait_time().count == s.acquired);
  CHECK(pool.timings()->use_time().count == s.acquired);
}

TEST_CASE("timings are read while other threads acquire and release", "[pool]") {
  auto backend = fake_backend::make();
  auto o = timed(2);  // fewer connections than threads: some acquires queue
  kp::connection_pool<fake_connection> pool(backend->factory(), o);
  const auto& t = *pool.timings();
  constexpr int threads = 4, cycles = 2000;
  std::atomic<int> running{threads};
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&] {
      for (int k = 0; k < cycles; ++k) {
        auto l = pool.acquire();
        l->execute("select 1");
      }
      running.fetch_sub(1);
    });
  }
  std::uint64_t last_waits = 0, last_uses = 0;
  bool monotonic = true;
  int reads = 0;
  while (running.load() > 0 || reads == 0) {
    const auto w = t.wait_time();
    const auto u = t.use_time();
    monotonic = monotonic && w.count >= last_waits && u.count >= last_uses;
    last_waits = w.count;
    last_uses = u.count;
    ++reads;
  }
  for (auto& w : workers) w.join();
  CHECK(monotonic);
  const auto s = pool.get_statistics();
  CHECK(s.acquired == threads * cycles);
  CHECK(t.wait_time().count == s.acquired);
  CHECK(t.use_time().count == s.acquired);
  CHECK(t.create_time().count == s.created + s.create_failed);
}
