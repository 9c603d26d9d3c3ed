// connection_pool over a fake connection, on a manual clock: limits, timeouts, fairness,
// lifetime and idle expiry, validation, broken connections, leases, close, and metrics at every step.

#include "support/catch.hpp"
#include "support/fake_database.hpp"
#include "support/manual_clock.hpp"

#include "pool/support_pool.hpp"

#include <kysera/infra/pool.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <future>
#include <limits>
#include <mutex>
#include <optional>
#include <ratio>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace infra = kysera::infra;
namespace kp = kysera::infra::pool;
using kysera::test::manual_clock;
using kysera::test::pool::catch_database_error;
using kysera::test::pool::contains;
using kysera::test::pool::eventually;
using kysera::test::pool::fake_backend;
using kysera::test::pool::fake_connection;
using kysera::test::pool::fixture;
using kysera::test::pool::holds_for;
using kysera::test::pool::metrics;
using kysera::test::pool::quiet;
using namespace std::chrono_literals;

namespace {

using test_pool = kp::connection_pool<fake_connection, manual_clock>;

}  // namespace

TEST_CASE("pool options are validated and errors name the field", "[pool]") {
  fixture f;
  auto make = [&](kp::pool_options o) { test_pool p(f.backend->factory(), o); };
  auto expect = [&](kp::pool_options o, const std::string& field) {
    try {
      make(o);
      FAIL("accepted bad " << field);
    } catch (const std::invalid_argument& e) {
      CHECK(contains(e.what(), field));
    }
  };
  auto o = quiet(2);
  o.max_size = 0;
  expect(o, "max_size");
  o = quiet(2);
  o.min_idle = 3;
  expect(o, "min_idle");
  o = quiet(2);
  o.acquire_timeout = -1ms;
  expect(o, "acquire_timeout");
  o = quiet(2);
  o.idle_timeout = -1ms;
  expect(o, "idle_timeout");
  o = quiet(2);
  o.max_lifetime = -1ms;
  expect(o, "max_lifetime");
  o = quiet(2);
  o.validation_threshold = -1ms;
  expect(o, "validation_threshold");
  o = quiet(2);
  o.max_lifetime_jitter = 0.6;
  expect(o, "max_lifetime_jitter");
  o = quiet(2);
  o.housekeeping_interval = -5ms;
  expect(o, "housekeeping_interval");
  CHECK_THROWS_AS(test_pool(nullptr, quiet(1)), std::invalid_argument);
  CHECK(f.backend->created() == 0);

  kp::pool_options defaults;
  CHECK(defaults.max_size == 10);
  CHECK(defaults.min_idle == 0);
  CHECK(defaults.acquire_timeout == 30s);
  CHECK(defaults.idle_timeout == 10min);
  CHECK(defaults.max_lifetime == 30min);
  CHECK(defaults.validation_threshold == 500ms);
}

TEST_CASE("connections open lazily and are reused with exact metrics at every step", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(3));
  CHECK(pool.get_metrics() == metrics(0, 0, 0, 0, 3));
  CHECK(f.backend->created() == 0);
  {
    auto a = pool.acquire();
    CHECK(a->id() == 1);
    CHECK(pool.get_metrics() == metrics(1, 0, 1, 0, 3));
    auto b = pool.acquire();
    CHECK(b->id() == 2);
    CHECK(pool.get_metrics() == metrics(2, 0, 2, 0, 3));
  }
  CHECK(pool.get_metrics() == metrics(2, 2, 0, 0, 3));
  {
    auto a = pool.acquire();
    CHECK((a->id() == 1 || a->id() == 2));
    CHECK(pool.get_metrics() == metrics(2, 1, 1, 0, 3));
  }
  CHECK(f.backend->created() == 2);
  auto s = pool.get_statistics();
  CHECK(s.acquired == 3);
  CHECK(s.created == 2);
  CHECK(s.closed() == 0);
  CHECK(s.timed_out == 0);
}

TEST_CASE("the pool never opens more than max_size and try_acquire does not wait", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(2));
  auto a = pool.acquire();
  auto b = pool.try_acquire();
  REQUIRE(b.has_value());
  CHECK(pool.get_metrics() == metrics(2, 0, 2, 0, 2));
  CHECK_FALSE(pool.try_acquire().has_value());
  auto e = catch_database_error([&] { (void)pool.acquire(0ms); });
  CHECK(e.code() == infra::errc::pool_exhausted);
  CHECK(e.backend() == "pool");
  CHECK(contains(e.what(), "total 2, idle 0, active 2, waiting 0, max 2"));
  CHECK(f.backend->created() == 2);
  CHECK(pool.get_statistics().timed_out == 1);
  b.reset();
  CHECK(pool.get_metrics() == metrics(2, 1, 1, 0, 2));
  CHECK(pool.try_acquire().has_value());
}

TEST_CASE("an acquire times out after acquire_timeout on the clock with the metrics in its message", "[pool]") {
  fixture f;
  auto o = quiet(1);
  o.acquire_timeout = 250ms;
  test_pool pool(f.backend->factory(), o);
  auto held = pool.acquire();
  auto waiter = std::async(std::launch::async, [&] { return pool.acquire(); });
  REQUIRE(eventually([&] { return pool.get_metrics().waiting == 1; }));
  CHECK(pool.get_metrics() == metrics(1, 0, 1, 1, 1));

  manual_clock::advance(249ms);
  // One millisecond short of the deadline the caller keeps waiting, however often it wakes.
  CHECK(holds_for([&] { return pool.get_metrics().waiting == 1; }, 50ms));

  manual_clock::advance(1ms);
  auto e = catch_database_error([&] { (void)waiter.get(); });
  CHECK(e.code() == infra::errc::pool_exhausted);
  std::string msg = e.what();
  CHECK(contains(msg, "within 250 ms"));
  CHECK(contains(msg, "total 1, idle 0, active 1, waiting 1, max 1"));
  CHECK(contains(msg, "timed out 1"));
  CHECK(contains(msg, "max wait 250.00 ms"));
  CHECK(pool.get_metrics() == metrics(1, 0, 1, 0, 1));
  auto s = pool.get_statistics();
  CHECK(s.timed_out == 1);
  CHECK(s.waited == 2);  // the first acquire opened the connection: counted, 0 ms on this clock
  CHECK(s.total_wait == Approx(250.0));
  CHECK(s.max_wait == Approx(250.0));
}

TEST_CASE("a waiter gets the connection returned before its deadline and its wait is counted", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(1));
  auto held = std::make_optional(pool.acquire());
  auto waiter = std::async(std::launch::async, [&] {
    auto l = pool.acquire(1s);
    return l->id();
  });
  REQUIRE(eventually([&] { return pool.get_metrics().waiting == 1; }));
  manual_clock::advance(40ms);
  held.reset();
  CHECK(waiter.get() == 1);
  CHECK(pool.get_metrics() == metrics(1, 1, 0, 0, 1));
  auto s = pool.get_statistics();
  CHECK(s.acquired == 2);
  CHECK(s.waited == 2);  // opening the connection counts as a wait (0 ms on this clock)
  CHECK(s.total_wait == Approx(40.0));
  CHECK(s.max_wait == Approx(40.0));
  CHECK(s.timed_out == 0);
}

TEST_CASE("waiters are served first come first served", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(1));
  auto held = std::make_optional(pool.acquire());
  std::mutex m;
  std::vector<int> order;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      auto l = pool.acquire(10s);
      std::lock_guard lock(m);
      order.push_back(i);
    });
    REQUIRE(eventually([&] { return pool.get_metrics().waiting == static_cast<std::size_t>(i + 1); }));
  }
  // A newcomer does not jump the queue, even for an instant.
  CHECK_FALSE(pool.try_acquire().has_value());
  held.reset();
  for (auto& t : threads) t.join();
  CHECK(order == std::vector<int>{0, 1, 2, 3});
  CHECK(pool.get_metrics() == metrics(1, 1, 0, 0, 1));
  CHECK(f.backend->created() == 1);
}

TEST_CASE("connections past max_lifetime are closed instead of handed out", "[pool]") {
  fixture f;
  auto o = quiet(2);
  o.max_lifetime = 30min;
  test_pool pool(f.backend->factory(), o);
  { auto a = pool.acquire(); }
  manual_clock::advance(30min - 1ms);
  {
    auto a = pool.acquire();
    CHECK(a->id() == 1);
  }
  manual_clock::advance(1ms);
  {
    auto a = pool.acquire();
    CHECK(a->id() == 2);
    CHECK(pool.get_metrics() == metrics(1, 0, 1, 0, 2));
  }
  CHECK(f.backend->record(1)->close_calls == 1);
  CHECK(f.backend->record(1)->destroyed);
  CHECK(pool.get_statistics().closed_lifetime == 1);

  // Idle connections past their lifetime are closed by the housekeeper too.
  manual_clock::advance(30min);
  pool.maintain();
  CHECK(pool.get_metrics() == metrics(0, 0, 0, 0, 2));
  CHECK(pool.get_statistics().closed_lifetime == 2);
  CHECK(f.backend->record(2)->close_calls == 1);
}

TEST_CASE("lifetime jitter spreads the expiry of connections opened together", "[pool]") {
  fixture f;
  auto o = quiet(24);
  o.max_lifetime = 100s;
  o.max_lifetime_jitter = 0.25;
  test_pool pool(f.backend->factory(), o);
  {
    std::vector<test_pool::lease> leases;
    for (int i = 0; i < 24; ++i) leases.push_back(pool.acquire());
  }
  manual_clock::advance(75s - 1ms);  // nobody expires before lifetime * (1 - jitter)
  pool.maintain();
  CHECK(pool.get_metrics().total == 24);
  manual_clock::advance(12s + 501ms);  // the middle of the window: some, not all
  pool.maintain();
  auto mid = pool.get_metrics().total;
  CHECK(mid > 0);
  CHECK(mid < 24);
  manual_clock::advance(12s + 500ms);  // everybody by the full lifetime
  pool.maintain();
  CHECK(pool.get_metrics().total == 0);
  CHECK(pool.get_statistics().closed_lifetime == 24);
}

TEST_CASE("idle connections beyond min_idle close after idle_timeout", "[pool]") {
  fixture f;
  auto o = quiet(3);
  o.min_idle = 1;
  o.idle_timeout = 10min;
  o.max_lifetime = 0ms;  // unlimited
  test_pool pool(f.backend->factory(), o);
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
    auto c = pool.acquire();
  }
  CHECK(pool.get_metrics() == metrics(3, 3, 0, 0, 3));
  pool.maintain();  // first sight of them idle
  manual_clock::advance(10min - 1ms);
  pool.maintain();
  CHECK(pool.get_metrics() == metrics(3, 3, 0, 0, 3));
  manual_clock::advance(1ms);
  pool.maintain();
  CHECK(pool.get_metrics() == metrics(1, 1, 0, 0, 3));
  CHECK(pool.get_statistics().closed_idle == 2);

  // A connection used in between starts its idle time again.
  { auto a = pool.acquire(); }
  manual_clock::advance(10min);
  pool.maintain();
  CHECK(pool.get_metrics().total == 1);  // min_idle is kept anyway
  CHECK(f.backend->open() == 1);
}

TEST_CASE("a connection used since the last housekeeping pass is not closed as idle", "[pool]") {
  fixture f;
  auto o = quiet(2);
  o.idle_timeout = 1min;
  test_pool pool(f.backend->factory(), o);
  { auto a = pool.acquire(); }
  pool.maintain();
  manual_clock::advance(2min);
  { auto a = pool.acquire(); }  // used: its idle time starts again
  pool.maintain();
  CHECK(pool.get_metrics().total == 1);
  manual_clock::advance(1min);
  pool.maintain();
  CHECK(pool.get_metrics().total == 0);
  CHECK(pool.get_statistics().closed_idle == 1);
}

TEST_CASE("maintain opens connections up to min_idle and survives a failing factory", "[pool]") {
  fixture f;
  auto o = quiet(4);
  o.min_idle = 2;
  test_pool pool(f.backend->factory(), o);
  CHECK(pool.get_metrics() == metrics(0, 0, 0, 0, 4));
  pool.maintain();
  CHECK(pool.get_metrics() == metrics(2, 2, 0, 0, 4));
  {
    auto a = pool.acquire();
    CHECK(pool.get_metrics() == metrics(2, 1, 1, 0, 4));
    pool.maintain();
    CHECK(pool.get_metrics() == metrics(3, 2, 1, 0, 4));
    f.backend->set_down(true);
    auto b = pool.acquire();
    CHECK_NOTHROW(pool.maintain());
    CHECK(pool.get_metrics() == metrics(3, 1, 2, 0, 4));
  }
  auto s = pool.get_statistics();
  CHECK(s.created == 3);
  CHECK(s.create_failed == 1);
}

TEST_CASE("a connection idle past validation_threshold is pinged before it is handed out", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(1));
  { auto a = pool.acquire(); }
  auto rec = f.backend->record(1);
  manual_clock::advance(499ms);
  { auto a = pool.acquire(); }
  CHECK(rec->pings == 0);
  manual_clock::advance(500ms);
  { auto a = pool.acquire(); }
  CHECK(rec->pings == 1);
  CHECK(pool.get_statistics().validated == 1);
}

TEST_CASE("ping makes one round trip even when acquiring already validated", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(1));
  pool.ping();  // a fresh connection: connecting proved the server answers
  auto rec = f.backend->record(1);
  CHECK(rec->pings == 0);
  pool.ping();  // reused at once, not validated: ping() pings
  CHECK(rec->pings == 1);
  manual_clock::advance(1s);
  pool.ping();  // idle long enough to be validated by the acquire: not pinged twice
  CHECK(rec->pings == 2);
  rec->fail_ping = true;
  manual_clock::advance(1s);
  f.backend->set_down(true);
  auto e = catch_database_error([&] { pool.ping(); });
  CHECK(e.code() == infra::errc::connection_refused);  // the dead one was dropped; the server is down
  CHECK(rec->close_calls == 1);
  f.backend->set_down(false);
  rec = nullptr;
  pool.ping();
  auto fresh = f.backend->record(2);
  fresh->fail_ping = true;
  auto lost = catch_database_error([&] { pool.ping(); });
  CHECK(lost.code() == infra::errc::connection_lost);
  CHECK(fresh->close_calls == 1);  // a failed ping marks the connection broken
  CHECK(pool.get_metrics() == metrics(0, 0, 0, 0, 1));
}

TEST_CASE("validation_threshold 0 pings on every acquire", "[pool]") {
  fixture f;
  auto o = quiet(1);
  o.validation_threshold = 0ms;
  test_pool pool(f.backend->factory(), o);
  { auto a = pool.acquire(); }  // just opened: no ping
  { auto a = pool.acquire(); }
  { auto a = pool.acquire(); }
  CHECK(f.backend->record(1)->pings == 2);
}

TEST_CASE("a connection that fails validation is discarded and another is handed out", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(2));
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
  }
  f.backend->record(1)->fail_ping = true;
  f.backend->record(2)->fail_ping = true;
  manual_clock::advance(1s);
  {
    auto c = pool.acquire();
    CHECK(c->id() == 3);
    CHECK(pool.get_metrics() == metrics(1, 0, 1, 0, 2));
  }
  CHECK(f.backend->record(1)->close_calls == 1);
  CHECK(f.backend->record(2)->close_calls == 1);
  auto s = pool.get_statistics();
  CHECK(s.validated == 2);
  CHECK(s.validation_failed == 2);
  CHECK(s.closed_broken == 2);
  CHECK(s.created == 3);
}

TEST_CASE("broken connections are closed on return instead of reused", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(2));
  {
    auto a = pool.acquire();
    a.mark_broken();
    CHECK(pool.get_metrics() == metrics(1, 0, 1, 0, 2));
  }
  CHECK(pool.get_metrics() == metrics(0, 0, 0, 0, 2));
  CHECK(f.backend->record(1)->close_calls == 1);
  CHECK(pool.get_statistics().closed_broken == 1);

  // The pool's execute marks connection errors itself, and only those.
  {
    auto a = pool.acquire();
    CHECK(a->id() == 2);
    a->record().fail_execute = true;
    a->record().execute_error = infra::errc::query_failed;
  }
  auto e = catch_database_error([&] { pool.execute("select broken syntax"); });
  CHECK(e.code() == infra::errc::query_failed);
  CHECK(pool.get_metrics() == metrics(1, 1, 0, 0, 2));  // a statement error keeps the connection
  f.backend->record(2)->execute_error = infra::errc::connection_lost;
  e = catch_database_error([&] { pool.execute("select 1"); });
  CHECK(e.code() == infra::errc::connection_lost);
  CHECK(pool.get_metrics() == metrics(0, 0, 0, 0, 2));
  CHECK(f.backend->record(2)->close_calls == 1);
  CHECK(pool.get_statistics().closed_broken == 2);
  pool.execute("select 1");
  CHECK(f.backend->created() == 3);
}

TEST_CASE("a lease returns its connection when an exception escapes", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(1));
  try {
    auto a = pool.acquire();
    a->execute("update t set x = 1");
    throw std::runtime_error("application error");
  } catch (const std::runtime_error&) {
  }
  CHECK(pool.get_metrics() == metrics(1, 1, 0, 0, 1));
  CHECK_THROWS_AS(pool.with_connection([](fake_connection&) -> int { throw std::runtime_error("x"); }),
                  std::runtime_error);
  CHECK(pool.get_metrics() == metrics(1, 1, 0, 0, 1));
  auto a = pool.acquire(0ms);  // nothing leaked: the single connection is free
  CHECK(a->id() == 1);
}

TEST_CASE("leases move and release early and mark_broken affects only their own connection", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(2));
  test_pool::lease empty;
  CHECK_FALSE(empty);
  auto a = pool.acquire();
  test_pool::lease b = std::move(a);
  CHECK_FALSE(a);  // NOLINT(bugprone-use-after-move): moved-from is empty by contract
  REQUIRE(b);
  CHECK(b.get().id() == 1);
  CHECK((*b).id() == 1);
  CHECK(pool.get_metrics() == metrics(1, 0, 1, 0, 2));
  auto c = pool.acquire();
  c = std::move(b);  // c's own connection goes back first
  CHECK(pool.get_metrics() == metrics(2, 1, 1, 0, 2));
  c.release();
  c.release();
  CHECK_FALSE(c);
  CHECK(pool.get_metrics() == metrics(2, 2, 0, 0, 2));
  CHECK(pool.get_statistics().closed() == 0);
}

TEST_CASE("a failing factory makes acquire throw its error and keeps the counts right", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(2));
  f.backend->set_down(true);
  auto e = catch_database_error([&] { (void)pool.acquire(); });
  CHECK(e.code() == infra::errc::connection_refused);
  CHECK(pool.get_metrics() == metrics(0, 0, 0, 0, 2));
  CHECK_THROWS_AS(pool.try_acquire(), infra::database_error);
  f.backend->set_down(false);
  // Two failed connects began a connect backoff window (connect_backoff_after): past its longest.
  manual_clock::advance(quiet(2).connect_backoff_max);
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
    CHECK(pool.get_metrics() == metrics(2, 0, 2, 0, 2));
  }
  auto s = pool.get_statistics();
  CHECK(s.create_failed == 2);
  CHECK(s.created == 2);
}

TEST_CASE("a waiter handed capacity after a broken connection rethrows the factory error", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(1));
  auto held = std::make_optional(pool.acquire());
  auto waiter = std::async(std::launch::async, [&] { (void)pool.acquire(10s); });
  REQUIRE(eventually([&] { return pool.get_metrics().waiting == 1; }));
  f.backend->set_down(true);
  held->mark_broken();
  held.reset();
  auto e = catch_database_error([&] { waiter.get(); });
  CHECK(e.code() == infra::errc::connection_refused);  // not a timeout
  CHECK(pool.get_metrics() == metrics(0, 0, 0, 0, 1));
  f.backend->set_down(false);
  CHECK(pool.acquire()->id() == 2);
}

TEST_CASE("a slow connect does not block other threads returning and acquiring", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(2));
  auto first = std::make_optional(pool.acquire());
  f.backend->block_connects();
  auto creator = std::async(std::launch::async, [&] {
    auto l = pool.acquire(10s);
    return l->id();
  });
  f.backend->wait_in_factory(1);
  // The connection being opened is not counted yet; everything else works meanwhile.
  CHECK(pool.get_metrics() == metrics(1, 0, 1, 0, 2));
  first.reset();
  CHECK(pool.get_metrics() == metrics(1, 1, 0, 0, 2));
  {
    auto again = pool.acquire(0ms);
    CHECK(again->id() == 1);
  }
  f.backend->unblock_connects();
  CHECK(creator.get() == 2);
  CHECK(pool.get_metrics() == metrics(2, 2, 0, 0, 2));
}

TEST_CASE("close fails new acquires and waiters and closes idle connections at once", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(2));
  auto a = std::make_optional(pool.acquire());
  auto b = std::make_optional(pool.acquire());
  b.reset();  // idle
  CHECK(pool.get_metrics() == metrics(2, 1, 1, 0, 2));
  {
    auto extra = std::make_optional(pool.acquire());
    auto waiter = std::async(std::launch::async, [&] { (void)pool.acquire(10s); });
    REQUIRE(eventually([&] { return pool.get_metrics().waiting == 1; }));
    pool.close();
    auto e = catch_database_error([&] { waiter.get(); });
    CHECK(e.code() == infra::errc::pool_closed);
    CHECK(pool.is_closed());
    CHECK(pool.get_metrics() == metrics(2, 0, 2, 0, 2));
  }
  // `extra` went back after close: closed, not kept.
  CHECK(pool.get_metrics() == metrics(1, 0, 1, 0, 2));
  auto e = catch_database_error([&] { (void)pool.acquire(); });
  CHECK(e.code() == infra::errc::pool_closed);
  CHECK_THROWS_AS(pool.try_acquire(), infra::database_error);
  CHECK_THROWS_AS(pool.execute("select 1"), infra::database_error);
  (*a)->execute("still usable until returned");
  a.reset();
  CHECK(pool.get_metrics() == metrics(0, 0, 0, 0, 2));
  for (auto& r : f.backend->records()) CHECK(r->close_calls == 1);
  CHECK(pool.get_statistics().closed_by_close == 2);
  CHECK(pool.get_statistics().closed() == 2);
  pool.close();  // idempotent
  CHECK(pool.close_for(0ms));
}

TEST_CASE("close_for waits for leases to come back and reports whether they did", "[pool]") {
  auto backend = fake_backend::make();
  auto o = quiet(2);
  kp::connection_pool<fake_connection> pool(backend->factory(), o);  // steady clock
  auto a = std::make_optional(pool.acquire());
  CHECK_FALSE(pool.close_for(20ms));
  CHECK(pool.get_metrics() == metrics(1, 0, 1, 0, 2));
  std::thread returner([&] { a.reset(); });
  CHECK(pool.close_for(10s));
  returner.join();
  CHECK(pool.get_metrics() == metrics(0, 0, 0, 0, 2));
  CHECK(backend->record(1)->close_calls == 1);
}

TEST_CASE("execute and ping and server_version and transaction borrow a connection", "[pool]") {
  fixture f;
  test_pool pool(f.backend->factory(), quiet(2));
  pool.execute("select 1");
  pool.ping();
  CHECK(pool.server_version() == "fake 2.0");
  auto rec = f.backend->record(1);
  CHECK(rec->executes == 1);
  CHECK(rec->pings == 1);
  int result = pool.transaction([&](fake_connection& c) {
    CHECK(pool.get_metrics().active == 1);  // one lease for the whole call
    c.execute("insert 1");
    c.execute("insert 2");
    return 42;
  });
  CHECK(result == 42);
  CHECK(rec->executes == 5);  // BEGIN, 2 inserts, COMMIT
  CHECK_THROWS_AS(pool.transaction([](fake_connection&) { throw std::runtime_error("rollback"); }),
                  std::runtime_error);
  CHECK(pool.get_metrics() == metrics(1, 1, 0, 0, 2));
  CHECK(f.backend->created() == 1);
  auto n = pool.with_connection([](fake_connection& c) { return c.id() * 10; });
  CHECK(n == 10);
}

TEST_CASE("the pool models database and its optional capabilities", "[pool]") {
  using pool_t = kp::connection_pool<fake_connection>;
  static_assert(infra::database<pool_t>);
  static_assert(infra::database_with_ping<pool_t>);
  static_assert(infra::database_with_server_version<pool_t>);
  static_assert(infra::database_with_transaction<pool_t>);
  static_assert(infra::database_with_timed_close<pool_t>);
  static_assert(!infra::database_with_cancel<pool_t>);
  // Capabilities the connection lacks are absent from the pool too.
  using minimal_pool = kp::connection_pool<kysera::test::minimal_database>;
  static_assert(infra::database<minimal_pool>);
  static_assert(!infra::database_with_server_version<minimal_pool>);
  static_assert(!infra::database_with_transaction<minimal_pool>);
  static_assert(std::is_move_constructible_v<pool_t::lease>);
  static_assert(!std::is_copy_constructible_v<pool_t::lease>);
  static_assert(!std::is_copy_constructible_v<pool_t>);

  kp::pool_options o;
  o.housekeeping_interval = 0ms;
  minimal_pool pool([] { return std::make_unique<kysera::test::minimal_database>(); }, o);
  pool.execute("select 1");
  pool.ping();  // falls back to SELECT 1
  auto l = pool.acquire();
  CHECK(l->executes == 2);
}

TEST_CASE("the housekeeping thread opens min_idle connections by itself", "[pool]") {
  auto backend = fake_backend::make();
  kp::pool_options o;
  o.max_size = 3;
  o.min_idle = 2;
  o.housekeeping_interval = 10ms;
  o.logger = &infra::silent_logger();
  kp::connection_pool<fake_connection> pool(backend->factory(), o);
  CHECK(eventually([&] { return pool.get_metrics() == metrics(2, 2, 0, 0, 3); }));
  pool.close();
  CHECK(backend->open() == 0);
}

TEST_CASE("the destructor waits for a lease still out and for callers still waiting", "[pool]") {
  auto backend = fake_backend::make();
  auto o = quiet(1);
  auto pool = std::make_unique<kp::connection_pool<fake_connection>>(backend->factory(), o);
  // A lease held by another thread, like a health probe that timed out and is still running.
  std::promise<void> give_back;
  std::promise<void> holding;
  auto holder = std::async(std::launch::async, [&] {
    auto l = pool->acquire();
    holding.set_value();
    give_back.get_future().wait();
    l->execute("still running");
  });
  holding.get_future().wait();
  auto waiter = std::async(std::launch::async, [&] {
    try {
      (void)pool->acquire(10s);
      return std::string("acquired");
    } catch (const infra::database_error& e) {
      return std::string(infra::to_string(e.condition()));
    }
  });
  REQUIRE(eventually([&] { return pool->get_metrics().waiting == 1; }));
  auto destroyer = std::async(std::launch::async, [&] { pool.reset(); });
  CHECK(waiter.get() == "pool_closed");
  CHECK(destroyer.wait_for(50ms) == std::future_status::timeout);  // still waiting for the lease
  give_back.set_value();
  holder.get();
  destroyer.get();
  CHECK(backend->record(1)->close_calls == 1);
  CHECK(backend->live() == 0);
}

// ---------------------------------------------------------------------------------------------
// Saturation: huge durations mean "practically forever", an absurd max_size is refused.
// ---------------------------------------------------------------------------------------------

namespace {
constexpr auto forever = std::chrono::milliseconds::max();
constexpr std::chrono::milliseconds three_centuries = std::chrono::hours(24 * 365 * 300);
constexpr std::chrono::hours two_centuries{24 * 365 * 200};
}  // namespace

TEST_CASE("the saturating time helpers clamp instead of wrapping", "[pool]") {
  namespace d = kysera::infra::detail;
  using std::chrono::milliseconds;
  using std::chrono::nanoseconds;
  using std::chrono::seconds;
  using steady = std::chrono::steady_clock;

  // Conversions: to a finer unit saturate, to a coarser one truncate like duration_cast.
  static_assert(d::saturating_duration_cast<nanoseconds>(milliseconds::max()) == nanoseconds::max());
  static_assert(d::saturating_duration_cast<nanoseconds>(milliseconds::min()) == nanoseconds::min());
  static_assert(d::saturating_duration_cast<nanoseconds>(three_centuries) == nanoseconds::max());
  static_assert(d::saturating_duration_cast<nanoseconds>(milliseconds(5)) == nanoseconds(5'000'000));
  static_assert(d::saturating_duration_cast<milliseconds>(nanoseconds::max()) ==
                std::chrono::duration_cast<milliseconds>(nanoseconds::max()));
  static_assert(d::saturating_duration_cast<seconds>(milliseconds(-1500)) == seconds(-1));
  // A narrower representation, and a period that both multiplies and divides (1/3 s).
  using narrow_ms = std::chrono::duration<std::int32_t, std::milli>;
  static_assert(d::saturating_duration_cast<narrow_ms>(seconds(3'000'000)) == narrow_ms::max());
  static_assert(d::saturating_duration_cast<narrow_ms>(seconds(-3'000'000)) == narrow_ms::min());
  static_assert(d::saturating_duration_cast<narrow_ms>(seconds(2)) == narrow_ms(2000));
  using thirds = std::chrono::duration<std::int64_t, std::ratio<1, 3>>;
  static_assert(d::saturating_duration_cast<thirds>(milliseconds(3000)) == thirds(9));
  // ms -> thirds multiplies by 3 and divides by 1000: exact even where count * 3 would overflow.
  constexpr auto big = milliseconds::max().count();
  static_assert(d::saturating_duration_cast<thirds>(milliseconds::max()) ==
                thirds(big / 1000 * 3 + big % 1000 * 3 / 1000));
  static_assert(d::saturating_duration_cast<milliseconds>(thirds::max()) == milliseconds::max());
  static_assert(d::saturating_duration_cast<milliseconds>(thirds::min()) == milliseconds::min());
  static_assert(d::saturating_duration_cast<milliseconds>(thirds(-7)) == milliseconds(-2333));
  // Floating-point sources.
  CHECK(d::saturating_duration_cast<nanoseconds>(std::chrono::duration<double>(1e300)) == nanoseconds::max());
  CHECK(d::saturating_duration_cast<nanoseconds>(std::chrono::duration<double>(-1e300)) == nanoseconds::min());
  CHECK(d::saturating_duration_cast<nanoseconds>(std::chrono::duration<double>(0.5)) == 500ms);
  CHECK(d::saturating_duration_cast<nanoseconds>(
            std::chrono::duration<double>(std::numeric_limits<double>::quiet_NaN())) == nanoseconds::zero());

  // Rounding up.
  static_assert(d::saturating_ceil<milliseconds>(nanoseconds(1'500'000)) == milliseconds(2));
  static_assert(d::saturating_ceil<milliseconds>(nanoseconds(-1'500'000)) == milliseconds(-1));
  static_assert(d::saturating_ceil<milliseconds>(nanoseconds::max()) ==
                std::chrono::ceil<milliseconds>(nanoseconds::max()));
  static_assert(d::saturating_ceil<milliseconds>(seconds::max()) == milliseconds::max());

  // Durations and time points.
  static_assert(d::saturating_add(nanoseconds::max() - nanoseconds(1), nanoseconds(5)) == nanoseconds::max());
  static_assert(d::saturating_add(nanoseconds::min() + nanoseconds(1), nanoseconds(-5)) == nanoseconds::min());
  static_assert(d::saturating_sub(nanoseconds::max(), nanoseconds(-5)) == nanoseconds::max());
  static_assert(d::saturating_sub(nanoseconds::min(), nanoseconds(5)) == nanoseconds::min());
  static_assert(d::saturating_sub(nanoseconds(7), nanoseconds(5)) == nanoseconds(2));
  const auto now = steady::now();
  CHECK(d::saturating_add(now, forever) == steady::time_point::max());
  CHECK(d::saturating_add(now, three_centuries) == steady::time_point::max());
  CHECK(d::saturating_add(now, 5ms) == now + 5ms);
  CHECK(d::saturating_add(now, -5ms) == now - 5ms);
  CHECK(d::saturating_sub(now, forever) == steady::time_point::min());
  CHECK(d::saturating_sub(now, 5ms) == now - 5ms);
  CHECK(d::saturating_sub(steady::time_point::max(), steady::time_point::min()) == steady::duration::max());
  CHECK(d::saturating_sub(steady::time_point::min(), steady::time_point::max()) == steady::duration::min());
  CHECK(d::saturating_deadline<steady>(forever) == steady::time_point::max());
  CHECK(d::saturating_deadline<steady>(1s) > now);

  // A wait for time_point::max() sleeps until notified; a past deadline returns at once.
  std::mutex mutex;
  std::condition_variable cv;
  bool ready = false;
  std::thread notifier([&] {
    {
      std::lock_guard lock(mutex);
      ready = true;
    }
    cv.notify_all();
  });
  {
    std::unique_lock lock(mutex);
    CHECK(d::wait_until_capped(cv, lock, steady::time_point::max(), [&] { return ready; }));
    CHECK(d::wait_for_capped(cv, lock, forever, [&] { return ready; }));
    CHECK_FALSE(d::wait_until_capped(cv, lock, steady::now() - 1s, [] { return false; }));
    CHECK_FALSE(d::wait_for_capped(cv, lock, 0ms, [] { return false; }));
    CHECK_FALSE(d::wait_until_capped(cv, lock, std::chrono::system_clock::now() - 1s, [] { return false; }));
  }
  notifier.join();
}

TEST_CASE("max_size above one million is rejected naming max_size before allocating", "[pool]") {
  fixture f;
  for (std::size_t size : {std::size_t{1'000'001}, std::size_t{1} << 58, std::size_t{1} << 63,
                           std::numeric_limits<std::size_t>::max()}) {
    INFO("max_size " << size);
    auto o = quiet(1);
    o.max_size = size;
    try {
      test_pool p(f.backend->factory(), o);
      FAIL("accepted max_size " << size);
    } catch (const std::invalid_argument& e) {
      CHECK(contains(e.what(), "max_size"));
      CHECK(contains(e.what(), "1000000"));
    }
  }
  CHECK(kp::detail::max_pool_size == 1'000'000);
  auto o = quiet(1);
  o.max_size = 1000;
  test_pool p(f.backend->factory(), o);
  CHECK(p.get_metrics() == metrics(0, 0, 0, 0, 1000));
  CHECK(f.backend->created() == 0);
}

TEST_CASE("huge timeouts idle_timeout max_lifetime and validation_threshold mean forever", "[pool]") {
  for (auto huge : {forever, three_centuries}) {
    INFO("duration " << huge.count() << " ms");
    fixture f;
    auto o = quiet(1);
    o.acquire_timeout = huge;
    o.idle_timeout = huge;
    o.max_lifetime = huge;
    o.validation_threshold = huge;
    o.max_lifetime_jitter = 0.5;  // the jitter arithmetic must not overflow either
    test_pool pool(f.backend->factory(), o);
    auto held = std::make_optional(pool.acquire());
    CHECK((*held)->id() == 1);

    // A waiter with a practically endless timeout keeps waiting, even two centuries later.
    auto waiter = std::async(std::launch::async, [&] { return pool.acquire()->id(); });
    REQUIRE(eventually([&] { return pool.get_metrics().waiting == 1; }));
    manual_clock::advance(two_centuries);
    CHECK(holds_for([&] { return pool.get_metrics().waiting == 1; }, 50ms));
    held.reset();
    CHECK(waiter.get() == 1);

    // Nothing expired, went idle for too long, or needed a ping.
    pool.maintain();
    CHECK(pool.get_metrics() == metrics(1, 1, 0, 0, 1));
    CHECK(pool.acquire()->id() == 1);
    auto s = pool.get_statistics();
    CHECK(s.created == 1);
    CHECK(s.closed() == 0);
    CHECK(s.validated == 0);
    CHECK(s.timed_out == 0);
  }
}

TEST_CASE("a huge housekeeping_interval sleeps instead of retrying in a busy loop", "[pool]") {
  for (auto interval : {forever, three_centuries}) {
    INFO("housekeeping_interval " << interval.count() << " ms");
    auto backend = fake_backend::make();
    backend->set_down(true);
    auto o = quiet(1);
    o.min_idle = 1;
    o.housekeeping_interval = interval;
    kp::connection_pool<fake_connection> pool(backend->factory(), o);  // steady clock, real thread
    REQUIRE(eventually([&] { return backend->refused() >= 1; }));
    CHECK(holds_for([&] { return backend->refused() == 1; }, 200ms));
    const auto start = std::chrono::steady_clock::now();
    pool.close();  // wakes the sleeping housekeeper and joins it
    CHECK(std::chrono::steady_clock::now() - start < 1s);
    CHECK(backend->refused() == 1);
  }
}

TEST_CASE("close_for with a huge timeout waits for the last lease", "[pool]") {
  auto backend = fake_backend::make();
  kp::connection_pool<fake_connection> pool(backend->factory(), quiet(1));  // steady clock
  auto a = std::make_optional(pool.acquire());
  std::promise<void> closing;
  auto closer = std::async(std::launch::async, [&] {
    closing.set_value();
    return pool.close_for(forever);
  });
  closing.get_future().wait();
  CHECK(closer.wait_for(50ms) == std::future_status::timeout);
  a.reset();
  CHECK(closer.get());
  CHECK(backend->record(1)->close_calls == 1);
}

TEST_CASE("acquire waits at most until the ambient deadline, then throws timeout", "[pool][deadline]") {
  auto backend = fake_backend::make();
  auto o = quiet(1);
  o.acquire_timeout = 30s;
  kp::connection_pool<fake_connection> pool(backend->factory(), o);  // steady clock
  auto held = pool.acquire();
  const auto started = std::chrono::steady_clock::now();
  try {
    infra::deadline_scope scope(200ms);
    (void)pool.acquire();
    FAIL("expected a timeout");
  } catch (const infra::database_error& e) {
    CHECK(e.code() == infra::errc::timeout);
    CHECK_THAT(e.what(), Catch::Matchers::Contains("deadline"));
  }
  const auto took = std::chrono::steady_clock::now() - started;
  CHECK(took >= 190ms);
  CHECK(took < 200ms + 5s);  // far below acquire_timeout
  {
    infra::deadline_scope scope(std::chrono::steady_clock::now() - 1ms);  // already passed
    CHECK_THROWS_AS(pool.acquire(), infra::database_error);
  }
  // A later deadline than acquire_timeout leaves the pool's own bound (and its error) in place.
  infra::deadline_scope scope(1h);
  try {
    (void)pool.acquire(50ms);
    FAIL("expected pool_exhausted");
  } catch (const infra::database_error& e) {
    CHECK(e.code() == infra::errc::pool_exhausted);
  }
}
