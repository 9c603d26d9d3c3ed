#include "support_metrics.hpp"

#include "support/catch.hpp"
#include "support/manual_clock.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <atomic>
#include <thread>
#include <string>
#include <vector>

namespace km = kysera::infra::metrics;
namespace infra = kysera::infra;
using kysera::test::metrics_support::make_pool;
using kysera::test::metrics_support::scene;

namespace {

/// Every series as "name{k=v,...}" -> value (histograms: their count and sum).
struct table : km::visitor {
  std::map<std::string, double> values;
  std::vector<std::string> order;  // family names in call order
  std::map<std::string, km::histogram_snapshot> histograms;

  static std::string key(const km::descriptor& d, std::span<const km::attribute> a) {
    std::string k(d.name);
    k += '{';
    for (const auto& [n, v] : a) k += std::string(n) + "=" + std::string(v) + ",";
    k += '}';
    return k;
  }
  void note(std::string_view name) {
    if (order.empty() || order.back() != name) order.emplace_back(name);
  }
  void on_gauge(const km::descriptor& d, std::span<const km::attribute> a, double v) override {
    note(d.name);
    values[key(d, a)] = v;
  }
  void on_counter(const km::descriptor& d, std::span<const km::attribute> a, double v, time_point) override {
    note(d.name);
    values[key(d, a)] = v;
  }
  void on_histogram(const km::descriptor& d, std::span<const km::attribute> a, const km::histogram_snapshot& h,
                    time_point) override {
    note(d.name);
    histograms[key(d, a)] = h;
  }
};

/// The value of one gauge or counter series in a fresh collection.
double collected(const km::registry& reg, const std::string& key) {
  table t;
  reg.collect(t);
  return t.values.at(key);
}

}  // namespace

TEST_CASE("pool gauges equal get_metrics() and get_statistics() at collection time", "[metrics]") {
  auto pool = make_pool(5, 1);
  km::registry reg;
  auto r = reg.add_pool("main", *pool);
  auto l1 = pool->acquire();
  auto l2 = pool->acquire();
  const auto m = pool->get_metrics();
  table t;
  reg.collect(t);
  const std::string p = "db.client.connection.pool.name=main,";
  CHECK(t.values.at("db.client.connection.count{" + p + "db.client.connection.state=used,}") == m.active);
  CHECK(t.values.at("db.client.connection.count{" + p + "db.client.connection.state=idle,}") == m.idle);
  CHECK(m.active == 2);
  CHECK(t.values.at("db.client.connection.max{" + p + "}") == 5);
  CHECK(t.values.at("db.client.connection.idle.min{" + p + "}") == 1);
  CHECK(t.values.at("db.client.connection.pending_requests{" + p + "}") == 0);
  CHECK(t.values.at("db.client.connection.timeouts{" + p + "}") == 0);
}

TEST_CASE("a metrics_pool handle reports what it can, without idle.min or timeouts", "[metrics]") {
  auto pool = make_pool(3);
  km::registry reg;
  auto r = reg.add_pool("h", infra::pool::create_metrics_pool(*pool));
  table t;
  reg.collect(t);
  CHECK(t.values.at("db.client.connection.max{db.client.connection.pool.name=h,}") == 3);
  CHECK(t.values.count("db.client.connection.idle.min{db.client.connection.pool.name=h,}") == 0);
  CHECK(t.values.count("db.client.connection.timeouts{db.client.connection.pool.name=h,}") == 0);
}

TEST_CASE("a destroyed registration is never read again, and names are unique per kind", "[metrics]") {
  km::registry reg;
  auto pool = make_pool(2);
  auto r = reg.add_pool("main", *pool);
  CHECK_THROWS_AS(reg.add_pool("main", *pool), std::invalid_argument);
  CHECK_THROWS_AS(reg.add_pool("", *pool), std::invalid_argument);
  CHECK(reg.size() == 1);
  r.reset();
  pool.reset();  // destroyed: collect must not touch it
  CHECK(reg.size() == 0);
  table t;
  reg.collect(t);
  CHECK(t.values.empty());
  auto again = reg.add_pool("main", *make_pool(1));  // the name is free again
  again.reset();
}

TEST_CASE("a registration may outlive its registry", "[metrics]") {
  auto pool = make_pool(1);
  km::registration r;
  {
    km::registry reg;
    r = reg.add_pool("p", *pool);
    CHECK(r.active());
  }
  r.reset();  // nothing to deregister from: harmless
  CHECK_FALSE(r.active());
}

TEST_CASE("the scene's breakers, retries, monitors and durations have exact values", "[metrics]") {
  scene s;
  table t;
  s.reg.collect(t);
  const std::string nasty = scene::nasty;
  CHECK(t.values.at("kysera.circuit_breaker.state{name=db,state=closed,}") == 1);
  CHECK(t.values.at("kysera.circuit_breaker.state{name=db,state=open,}") == 0);
  CHECK(t.values.at("kysera.circuit_breaker.state{name=" + nasty + ",state=open,}") == 1);
  CHECK(t.values.at("kysera.circuit_breaker.calls{name=db,kind=successful,}") == 1);
  CHECK(t.values.at("kysera.circuit_breaker.calls{name=" + nasty + ",kind=failed,}") == 1);
  CHECK(t.values.at("kysera.circuit_breaker.calls{name=" + nasty + ",kind=not_permitted,}") == 1);
  CHECK(t.values.at("kysera.retry.calls{name=queries,kind=successful_without_retry,}") == 1);
  CHECK(t.values.at("kysera.retry.calls{name=queries,kind=failed_with_retry,}") == 0);
  CHECK(t.values.at("kysera.health.status{name=primary,status=healthy,}") == 1);
  CHECK(t.values.at("kysera.health.status{name=primary,status=unhealthy,}") == 0);
  CHECK(t.values.at("db.client.connection.timeouts{db.client.connection.pool.name=" + nasty + ",}") == 1);
  CHECK(t.values.at("db.client.connection.count{db.client.connection.pool.name=" + nasty +
                    ",db.client.connection.state=used,}") == 2);

  const std::string base = "db.client.operation.duration{db.system.name=postgresql,db.namespace=" + nasty + ",";
  CHECK(t.histograms.at(base + "db.operation.name=SELECT,}").count == 1);
  CHECK(t.histograms.at(base + "db.operation.name=INSERT,}").count == 1);
  CHECK(t.histograms.at(base + "db.operation.name=UPDATE,error.type=deadlock,}").count == 1);
  CHECK(t.histograms.at(base + "}").count == 1);  // "frobnicate": no operation name
  CHECK(t.histograms.size() == 8);  // the four above, the user's histogram, the timed pool's three
  CHECK(t.histograms.at("app.job.duration{job=" + nasty + ",}").counts == std::vector<std::uint64_t>{0, 1, 1});

  // Grouped by family: no name appears twice in call order.
  std::set<std::string> seen(t.order.begin(), t.order.end());
  CHECK(seen.size() == t.order.size());
}

TEST_CASE("retry counters count each outcome once per retry", "[metrics][resilience]") {
  infra::resilience::retry_counters c;
  infra::resilience::retry_options o;
  o.counters = &c;
  o.sleep = [](std::chrono::milliseconds) {};
  int calls = 0;
  CHECK(infra::resilience::with_retry([&] {
          if (++calls < 2) throw infra::database_error(infra::errc::connection_lost, "x");
          return 7;
        }, o) == 7);
  CHECK_THROWS(infra::resilience::with_retry([]() -> int { throw infra::database_error(infra::errc::connection_lost, "x"); }, o));
  CHECK_THROWS(infra::resilience::with_retry([]() -> int { throw infra::database_error(infra::errc::constraint_violation, "x"); }, o));
  auto wrapped = infra::resilience::create_retry_wrapper([] {}, o);
  wrapped();
  CHECK(c.get() == infra::resilience::retry_counters::values{1, 1, 1, 1});
}

TEST_CASE("a breaker counts successful, failed and not permitted calls", "[metrics][resilience]") {
  infra::resilience::circuit_breaker b(2, std::chrono::hours(1));
  (void)b.execute([] { return 1; });
  for (int i = 0; i < 2; ++i) {
    CHECK_THROWS(b.execute([]() -> int { throw std::runtime_error("x"); }));
  }
  CHECK_THROWS_AS(b.execute([] { return 1; }), infra::resilience::circuit_breaker_error);
  CHECK(b.get_calls() == infra::resilience::circuit_breaker_calls{1, 2, 1});
}

TEST_CASE("instrument passes results and errors through unchanged", "[metrics]") {
  kysera::test::fake_database db;
  auto family = std::make_shared<km::operation_duration>(km::operation_attributes{km::db_system::sqlite, ""});
  auto idb = km::instrument(db, family);
  static_assert(infra::database<decltype(idb)>);
  idb.execute("select 1");
  db.fail_next(infra::errc::timeout);
  CHECK_THROWS_AS(idb.execute("SELECT 2"), infra::database_error);
  db.on_next([] { throw std::runtime_error("not ours"); });
  CHECK_THROWS_AS(idb.execute("SELECT 3"), std::runtime_error);
  table t;
  family->collect(t);
  CHECK(t.histograms.at("db.client.operation.duration{db.system.name=sqlite,db.operation.name=SELECT,}").count == 1);
  CHECK(t.histograms.at("db.client.operation.duration{db.system.name=sqlite,db.operation.name=SELECT,error.type=timeout,}").count == 1);
  CHECK(t.histograms.at("db.client.operation.duration{db.system.name=sqlite,db.operation.name=SELECT,error.type=_OTHER,}").count == 1);
  CHECK_THROWS_AS(km::instrument(db, std::shared_ptr<km::operation_duration>{}), std::invalid_argument);
}

TEST_CASE("scrapes run concurrently with pools registering, deregistering and being destroyed", "[metrics]") {
  km::registry reg;
  std::atomic<bool> stop{false};
  std::atomic<int> scrapes{0};
  std::atomic<int> wrong{0};  // Catch2 assertions are for the test's own thread
  std::thread scraper([&] {
    while (!stop.load()) {
      table t;
      reg.collect(t);
      for (const auto& [key, value] : t.values) {
        if (key.rfind("db.client.connection.max{", 0) != 0) continue;
        if (value != 2) wrong.fetch_add(1);  // a destroyed pool's bytes would show here
      }
      scrapes.fetch_add(1);
    }
  });
  for (int i = 0; i < 200 || scrapes.load() < 20; ++i) {
    auto pool = make_pool(2);
    auto r = reg.add_pool("p" + std::to_string(i % 3), *pool);
    auto lease = pool->acquire();
  }  // each round: the lease, then the registration, then the pool goes
  stop = true;
  scraper.join();
  CHECK(wrong.load() == 0);
  CHECK(scrapes.load() >= 20);
  CHECK(reg.size() == 0);
}

TEST_CASE("a monitor's status follows its last check, all 0 before the first", "[metrics][health]") {
  kysera::test::fake_database db;
  infra::health::health_monitor_options o;
  o.logger = &infra::silent_logger();
  infra::health::health_monitor<kysera::test::fake_database> monitor(db, o);
  km::registry reg;
  auto r = reg.add_health_monitor("primary", monitor);
  auto status = [&](const char* s) {
    return collected(reg, std::string("kysera.health.status{name=primary,status=") + s + ",}");
  };
  CHECK(status("healthy") + status("degraded") + status("unhealthy") == 0);
  db.fail_always(infra::errc::connection_refused);
  CHECK(monitor.check_now().status == infra::health::health_status::unhealthy);
  CHECK(status("unhealthy") == 1);
  CHECK(status("healthy") == 0);
  db.clear_failures();
  (void)monitor.check_now();
  CHECK(status("healthy") == 1);
  CHECK(status("unhealthy") == 0);
}

TEST_CASE("the breaker state series follow the breaker", "[metrics][resilience]") {
  infra::resilience::circuit_breaker b(1, std::chrono::hours(1));
  km::registry reg;
  auto r = reg.add_circuit_breaker("b", b);
  auto state = [&](const char* s) {
    return collected(reg, std::string("kysera.circuit_breaker.state{name=b,state=") + s + ",}");
  };
  CHECK(state("closed") == 1);
  b.force_open();
  CHECK(state("open") == 1);
  CHECK(state("closed") == 0);
  b.reset();
  CHECK(state("closed") == 1);
}

namespace {
/// A database whose transaction runs `fn` on itself between BEGIN and COMMIT.
struct tx_database {
  kysera::test::fake_database inner;
  void execute(std::string_view sql) { inner.execute(sql); }
  void close() { inner.close(); }
  template <class F>
  auto transaction(F&& fn) -> decltype(fn(*this)) {
    inner.execute("BEGIN");
    struct commit {
      kysera::test::fake_database& db;
      ~commit() { db.execute("COMMIT"); }
    } c{inner};
    return fn(*this);
  }
};
}  // namespace

TEST_CASE("statements inside an instrumented transaction are recorded one by one", "[metrics]") {
  tx_database db;
  auto family = std::make_shared<km::operation_duration>(km::operation_attributes{km::db_system::mysql, "shop"});
  auto idb = km::instrument(db, family);
  static_assert(infra::database_with_transaction<decltype(idb)>);
  const int n = idb.transaction([](auto& tx) {
    tx.execute("INSERT INTO orders VALUES (1)");
    tx.execute("UPDATE stock SET n = n - 1");
    return 2;
  });
  CHECK(n == 2);
  table t;
  family->collect(t);
  const std::string base = "db.client.operation.duration{db.system.name=mysql,db.namespace=shop,db.operation.name=";
  CHECK(t.histograms.at(base + "INSERT,}").count == 1);
  CHECK(t.histograms.at(base + "UPDATE,}").count == 1);
  CHECK(t.histograms.size() == 2);  // BEGIN and COMMIT are the session's own
}

TEST_CASE("objects registered by shared_ptr are read while they live and forgotten after", "[metrics]") {
  km::registry reg;
  std::shared_ptr<kysera::test::metrics_support::fake_pool> pool = make_pool(3);
  auto breaker = std::make_shared<infra::resilience::circuit_breaker>();
  reg.add_pool("weak", pool);
  reg.add_circuit_breaker("weak", breaker);
  CHECK_THROWS_AS(reg.add_pool("weak", pool), std::invalid_argument);
  const std::shared_ptr<kysera::test::metrics_support::fake_pool> none;
  CHECK_THROWS_AS(reg.add_pool("null", none), std::invalid_argument);
  CHECK(collected(reg, "db.client.connection.max{db.client.connection.pool.name=weak,}") == 3);
  CHECK(collected(reg, "kysera.circuit_breaker.state{name=weak,state=closed,}") == 1);
  pool.reset();
  breaker.reset();
  table t;
  reg.collect(t);
  CHECK(t.values.empty());
  CHECK(reg.size() == 0);
  auto again = make_pool(1);
  auto r = reg.add_pool("weak", *again);  // the name is free again
  CHECK(r.active());
}

TEST_CASE("user histograms: one series per attribute set, exported with their snapshot", "[metrics]") {
  km::registry reg;
  km::histogram a{0.1}, b{0.1};
  a.record(0.05);
  b.record(0.2);
  b.record(0.3);
  auto ra = reg.add_histogram("job.duration", "s", "Jobs.", {{"queue", "a"}}, a);
  auto rb = reg.add_histogram("job.duration", "s", "Jobs.", {{"queue", "b"}}, b);
  CHECK_THROWS_AS(reg.add_histogram("job.duration", "s", "Jobs.", {{"queue", "a"}}, b), std::invalid_argument);
  CHECK_THROWS_AS(reg.add_histogram("", "s", "Jobs.", {}, b), std::invalid_argument);
  table t;
  reg.collect(t);
  CHECK(t.histograms.at("job.duration{queue=a,}").counts == std::vector<std::uint64_t>{1, 0});
  CHECK(t.histograms.at("job.duration{queue=b,}").counts == std::vector<std::uint64_t>{0, 2});
  CHECK(t.histograms.at("job.duration{queue=b,}").sum == Approx(0.5));
}

TEST_CASE("a breaker's call counts add up across threads", "[metrics][resilience]") {
  infra::resilience::circuit_breaker b(1000000, std::chrono::hours(1));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&b, t] {
      for (int i = 0; i < 5000; ++i) {
        try {
          b.execute([&] {
            if (t == 0 && i % 10 == 0) throw std::runtime_error("x");
            return i;
          });
        } catch (const std::runtime_error&) {
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(b.get_calls() == infra::resilience::circuit_breaker_calls{20000 - 500, 500, 0});
}

TEST_CASE("a pool with record_timings exports its three time histograms and one without none", "[metrics]") {
  auto plain = make_pool(2);
  auto timed = make_pool(2, 0, true);
  km::registry reg;
  auto r1 = reg.add_pool("plain", *plain);
  auto r2 = reg.add_pool("timed", *timed);
  { auto l = plain->acquire(); }
  auto l1 = timed->acquire();
  { auto l2 = timed->acquire(); }
  { auto l3 = timed->acquire(); }
  table t;
  reg.collect(t);
  const std::string p = "{db.client.connection.pool.name=timed,}";
  const auto s = timed->get_statistics();
  CHECK(t.histograms.at("db.client.connection.create_time" + p).count == s.created);
  CHECK(t.histograms.at("db.client.connection.wait_time" + p).count == s.acquired);
  CHECK(t.histograms.at("db.client.connection.use_time" + p).count == 2);  // l1 is still out
  CHECK(t.histograms.at("db.client.connection.use_time" + p).bounds ==
        std::vector<double>(km::operation_duration_buckets.begin(), km::operation_duration_buckets.end()));
  for (const auto& [key, h] : t.histograms) {
    CHECK(key.find("pool.name=plain") == std::string::npos);
  }
  // Each family once, in one run of calls.
  CHECK(std::set<std::string>(t.order.begin(), t.order.end()).size() == t.order.size());

  km::registry only_plain;
  auto r3 = only_plain.add_pool("plain", *plain);
  const auto text = km::to_prometheus(only_plain) + km::to_openmetrics(only_plain);
  CHECK(text.find("create_time") == std::string::npos);
  CHECK(text.find("wait_time") == std::string::npos);
  CHECK(text.find("use_time") == std::string::npos);
}

TEST_CASE("scrapes read a timed pool's histograms while threads use it", "[metrics]") {
  auto pool = make_pool(2, 0, true);
  km::registry reg;
  auto r = reg.add_pool("busy", *pool);
  constexpr int threads = 3, cycles = 1000;
  std::atomic<int> running{threads};
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i) {
    workers.emplace_back([&] {
      for (int k = 0; k < cycles; ++k) {
        try {
          auto l = pool->acquire(std::chrono::seconds(10));
        } catch (const infra::database_error&) {
        }
      }
      running.fetch_sub(1);
    });
  }
  double last = 0;
  bool monotonic = true;
  do {
    table t;
    reg.collect(t);
    const double n = static_cast<double>(t.histograms.at("db.client.connection.wait_time{db.client.connection.pool.name=busy,}").count);
    monotonic = monotonic && n >= last;
    last = n;
  } while (running.load() > 0);
  for (auto& w : workers) w.join();
  CHECK(monotonic);
  table t;
  reg.collect(t);
  CHECK(t.histograms.at("db.client.connection.use_time{db.client.connection.pool.name=busy,}").count ==
        pool->get_statistics().acquired);
}

TEST_CASE("a with_debug wrapper exports its query count and its window's durations", "[metrics][health]") {
  using kysera::test::manual_clock;
  using namespace std::chrono_literals;
  manual_clock::reset();
  kysera::test::fake_database db;
  infra::health::debug_options o;
  o.max_metrics = 4;
  auto dbg = infra::health::with_debug<manual_clock>(db, o);
  km::registry reg;
  auto r = reg.add_debug_database("orders", dbg);
  const auto family_absent = [&](std::string_view name) {
    table t;
    reg.collect(t);
    return std::find(t.order.begin(), t.order.end(), name) == t.order.end();
  };
  CHECK(collected(reg, "kysera.debug.queries{name=orders,}") == 0);
  CHECK(family_absent("kysera.debug.query.duration"));  // no statement yet

  // Six statements of 10, 20, ... 60 ms; the fifth fails. The window keeps the last four.
  for (int i = 1; i <= 6; ++i) {
    db.on_next([i] {
      manual_clock::advance(std::chrono::milliseconds(10 * i));
      if (i == 5) throw infra::database_error(infra::errc::deadlock, "scripted failure", "fake");
    });
    try {
      dbg.execute("SELECT 1");
    } catch (const infra::database_error&) {
    }
  }
  table t;
  reg.collect(t);
  CHECK(t.values.at("kysera.debug.queries{name=orders,}") == 6);
  CHECK(t.values.at("kysera.debug.queries.held{name=orders,}") == 4);
  CHECK(t.values.at("kysera.debug.query.errors{name=orders,}") == 1);
  const auto stat = [&](const char* s) {
    return t.values.at(std::string("kysera.debug.query.duration{name=orders,statistic=") + s + ",}");
  };
  // The window: 30, 40, 50, 60 ms.
  CHECK(stat("avg") == Approx(0.045));
  CHECK(stat("p50") == Approx(0.040));
  CHECK(stat("p95") == Approx(0.060));
  CHECK(stat("p99") == Approx(0.060));
  CHECK(stat("max") == Approx(0.060));

  r.reset();
  CHECK(family_absent("kysera.debug.queries"));
}

TEST_CASE("a with_debug wrapper held by shared_ptr is forgotten when it goes", "[metrics][health]") {
  kysera::test::fake_database db;
  km::registry reg;
  auto dbg = std::make_shared<infra::health::debug_database<kysera::test::fake_database>>(db);
  reg.add_debug_database("weak", dbg);
  dbg->execute("SELECT 1");
  CHECK(collected(reg, "kysera.debug.queries{name=weak,}") == 1);
  dbg.reset();
  table t;
  reg.collect(t);
  CHECK(t.values.count("kysera.debug.queries{name=weak,}") == 0);
}

TEST_CASE("a pool's outage counters are exported as they are in its statistics", "[metrics][pool]") {
  auto o = kysera::test::metrics_support::quiet_pool(2);
  o.connect_backoff_after = 2;
  o.connect_backoff_initial = std::chrono::hours(1);  // the window cannot end during the test
  o.connect_backoff_max = std::chrono::hours(1);
  kysera::test::metrics_support::fake_pool pool(
      []() -> std::unique_ptr<kysera::test::fake_database> {
        throw infra::database_error(infra::errc::connection_refused, "refused", "fake");
      },
      o);
  km::registry reg;
  auto r = reg.add_pool("down", pool);
  for (int i = 0; i < 3; ++i) {
    try {
      (void)pool.acquire(std::chrono::milliseconds(0));
    } catch (const infra::database_error&) {
    }
  }
  const auto st = pool.get_statistics();
  CHECK(st.create_failed == 2);  // the third acquire finds the backoff window open
  CHECK(st.backoffs == 1);
  CHECK(st.throttled == 1);
  table t;
  reg.collect(t);
  const std::string p = "{db.client.connection.pool.name=down,}";
  CHECK(t.values.at("kysera.pool.connect_failures" + p) == static_cast<double>(st.create_failed));
  CHECK(t.values.at("kysera.pool.backoffs" + p) == static_cast<double>(st.backoffs));
  CHECK(t.values.at("kysera.pool.throttled" + p) == static_cast<double>(st.throttled));
  CHECK(t.values.at("kysera.pool.rejected" + p) == 0);
  CHECK(t.values.at("kysera.pool.leaked" + p) == 0);
}
