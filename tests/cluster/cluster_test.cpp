// cluster<Connection> without servers: a fake connection whose "hosts" are shared in-memory
// nodes the test flips between primary, replica and down, and the manual clock (each probe's
// ping advances it by the node's round trip, so RTTs are exact). Discovery runs by hand
// (discovery_interval 0) except in the tests of the discovery thread itself.
#include "support/catch.hpp"
#include "support/error_of.hpp"
#include "support/eventually.hpp"
#include "support/manual_clock.hpp"

#include <kysera/infra/cluster.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <string>
#include <vector>

namespace infra = kysera::infra;
using kysera::test::error_of;
namespace cl = kysera::infra::cluster;
using kysera::test::eventually;
using kysera::test::manual_clock;
using namespace std::chrono_literals;

namespace {

// One simulated server. Thread-safe.
struct node {
  std::mutex m;
  cl::host_role role = cl::host_role::replica;
  std::optional<std::chrono::milliseconds> lag = 0ms;
  std::chrono::microseconds rtt{1000};
  bool down = false;
  std::vector<std::string> statements;  // what the application connections ran here
  int probes = 0;
  int opened = 0;
};

// The hosts of one test, by URL.
std::map<std::string, std::shared_ptr<node>>& nodes() {
  static std::map<std::string, std::shared_ptr<node>> all;
  return all;
}

infra::database_error refused(const std::string& url) {
  return infra::database_error(infra::errc::connection_refused, "fake: nothing listens at " + url, "fake");
}

// Thread-safe through its node. A connection to one node.
class host_connection {
 public:
  explicit host_connection(const std::string& url) : url_(url), node_(nodes().at(url)) {
    std::lock_guard lock(node_->m);
    if (node_->down) throw refused(url_);
    ++node_->opened;
  }
  void execute(std::string_view sql) {
    std::lock_guard lock(node_->m);
    if (node_->down)
      throw infra::database_error(infra::errc::connection_lost, "fake: server closed the connection", "fake");
    if (sql.rfind("INSERT", 0) == 0 && node_->role != cl::host_role::primary)
      throw infra::database_error(infra::errc::query_failed, "fake: cannot execute INSERT in a read-only transaction",
                                  "fake", "25006");
    node_->statements.emplace_back(sql);
  }
  void ping() {
    std::chrono::microseconds rtt;
    {
      std::lock_guard lock(node_->m);
      if (node_->down) throw infra::database_error(infra::errc::connection_lost, "fake: no answer", "fake");
      rtt = node_->rtt;
    }
    manual_clock::advance(rtt);
  }
  void close() {}
  node& server() { return *node_; }

 private:
  std::string url_;
  std::shared_ptr<node> node_;
};

}  // namespace

template <>
struct kysera::infra::cluster::cluster_traits<host_connection> {
  static std::unique_ptr<host_connection> open(const std::string& url) {
    return std::make_unique<host_connection>(url);
  }
  static std::unique_ptr<host_connection> open_probe(const std::string& url, std::chrono::milliseconds) {
    return std::make_unique<host_connection>(url);
  }
  static probe_result probe(host_connection& c) {
    node& n = c.server();
    std::lock_guard lock(n.m);
    ++n.probes;
    if (n.down) throw infra::database_error(infra::errc::connection_lost, "fake: no answer", "fake");
    return {n.role, n.role == host_role::replica ? n.lag : std::nullopt};
  }
  static bool not_writable(const database_error& e) noexcept { return e.sqlstate() == "25006"; }
};

namespace {

static_assert(cl::cluster_connection<host_connection>);
static_assert(infra::database<cl::cluster<host_connection, manual_clock>>);

using fake_cluster = cl::cluster<host_connection, manual_clock>;

// Three nodes: fake://a (primary), fake://b and fake://c (replicas), fresh for each test.
struct three_hosts {
  std::shared_ptr<node> a = std::make_shared<node>(), b = std::make_shared<node>(), c = std::make_shared<node>();
  three_hosts() {
    manual_clock::reset();
    nodes().clear();
    a->role = cl::host_role::primary;
    a->rtt = 3000us;
    b->rtt = 2000us;
    c->rtt = 1000us;
    nodes()["fake://u:pw@a/db"] = a;
    nodes()["fake://u:pw@b/db"] = b;
    nodes()["fake://u:pw@c/db"] = c;
  }
  std::vector<std::string> urls() const { return {"fake://u:pw@a/db", "fake://u:pw@b/db", "fake://u:pw@c/db"}; }
};

cl::cluster_options manual(cl::cluster_options o = {}) {
  o.discovery_interval = 0ms;
  o.pool.housekeeping_interval = 0ms;
  o.pool.acquire_timeout = 1s;
  return o;
}

}  // namespace

TEST_CASE("cluster options are validated, naming the field", "[cluster]") {
  three_hosts t;
  auto bad = [&](auto change) {
    auto o = manual();
    change(o);
    try {
      fake_cluster c(t.urls(), o);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(bad([](auto& o) { o.discovery_interval = -1ms; }).find("discovery_interval") != std::string::npos);
  CHECK(bad([](auto& o) { o.probe_timeout = 0ms; }).find("probe_timeout") != std::string::npos);
  CHECK(bad([](auto& o) { o.max_replication_lag = -1ms; }).find("max_replication_lag") != std::string::npos);
  CHECK(bad([](auto& o) { o.pool.max_size = 0; }).find("max_size") != std::string::npos);
  CHECK_THROWS_AS(fake_cluster({}, manual()), std::invalid_argument);
}

TEST_CASE("discovery names the primary and the replicas, with lag, round trip and safe names", "[cluster]") {
  three_hosts t;
  t.b->lag = 1500ms;
  fake_cluster c(t.urls(), manual());  // the constructor runs the first round
  auto s = c.state();
  REQUIRE(s->hosts.size() == 3);
  CHECK(s->rounds == 1);
  REQUIRE(s->primary == 0u);
  CHECK(s->hosts[0].role == cl::host_role::primary);
  CHECK(s->hosts[1].role == cl::host_role::replica);
  CHECK(s->hosts[2].role == cl::host_role::replica);
  CHECK(s->hosts[0].replication_lag == 0ms);
  CHECK(s->hosts[1].replication_lag == 1500ms);
  CHECK(s->hosts[0].round_trip == 3000us);
  CHECK(s->hosts[2].round_trip == 1000us);
  CHECK(s->hosts[1].eligible_replica);
  CHECK(s->hosts[0].name == "fake://u:***@a/db");
  CHECK(s->hosts[0].probes == 1);
  c.discover();
  CHECK(c.state()->rounds == 2);
  CHECK(c.state()->hosts[0].probes == 2);
}

TEST_CASE("statements go to the primary, replica() to the nearest replica, and back to the primary without one", "[cluster]") {
  three_hosts t;
  fake_cluster c(t.urls(), manual());
  c.execute("INSERT 1");
  CHECK(t.a->statements == std::vector<std::string>{"INSERT 1"});
  {
    auto r = c.replica();
    CHECK(r.host() == 2u);  // c answers fastest
    r->execute("SELECT 1");
  }
  CHECK(t.c->statements == std::vector<std::string>{"SELECT 1"});
  CHECK(c.replica_or_primary().host() == 2u);
  CHECK(c.primary().host() == 0u);

  t.b->down = true;
  t.c->down = true;
  c.discover();
  CHECK(c.state()->hosts[1].role == cl::host_role::down);
  CHECK_FALSE(c.state()->hosts[1].last_error.empty());
  auto e = error_of([&] { (void)c.replica(); });
  CHECK(e.code() == infra::errc::connection_refused);
  CHECK(std::string(e.what()).find("no usable replica") != std::string::npos);
  CHECK(c.replica_or_primary().host() == 0u);
}

TEST_CASE("round robin takes the usable replicas in turn", "[cluster]") {
  three_hosts t;
  auto o = manual();
  o.selection = cl::replica_selection::round_robin;
  fake_cluster c(t.urls(), o);
  std::map<std::size_t, int> seen;
  for (int i = 0; i < 10; ++i) ++seen[c.replica().host()];
  CHECK(seen.size() == 2);
  CHECK(seen[1] == 5);
  CHECK(seen[2] == 5);
  seen.clear();
  for (int i = 0; i < 10; ++i) ++seen[c.replica_or_primary().host()];
  CHECK(seen[1] == 5);
  CHECK(seen[2] == 5);
}

TEST_CASE("replicas over max_replication_lag or of unknown lag are skipped unless the limit is 0", "[cluster]") {
  three_hosts t;
  t.c->lag = 61s;   // over the default 60 s
  t.b->lag = std::nullopt;
  {
    fake_cluster c(t.urls(), manual());
    CHECK_FALSE(c.state()->hosts[2].eligible_replica);
    CHECK_FALSE(c.state()->hosts[1].eligible_replica);
    CHECK(c.replica_or_primary().host() == 0u);
    auto h = cl::check_cluster_health(c);
    CHECK(h.status == infra::health::health_status::degraded);
    REQUIRE(h.checks.size() == 3);
    CHECK(h.checks[0].status == infra::health::health_status::healthy);
    CHECK(h.checks[2].message.find("lagging") != std::string::npos);
  }
  auto o = manual();
  o.max_replication_lag = 0ms;
  fake_cluster c(t.urls(), o);
  CHECK(c.replica().host() == 2u);
  CHECK(cl::check_cluster_health(*c.state(), 0ms).status == infra::health::health_status::healthy);
}

TEST_CASE("without a primary, primary() and execute() fail at once with connection_refused", "[cluster]") {
  three_hosts t;
  t.a->role = cl::host_role::replica;
  fake_cluster c(t.urls(), manual());
  CHECK_FALSE(c.state()->primary);
  const auto before = std::chrono::steady_clock::now();
  auto e = error_of([&] { c.execute("INSERT 1"); });
  CHECK(std::chrono::steady_clock::now() - before < 500ms);  // not the pool's acquire_timeout
  CHECK(e.code() == infra::errc::connection_refused);
  CHECK(std::string(e.what()).find("no primary") != std::string::npos);
  auto h = cl::check_cluster_health(*c.state(), c.options().max_replication_lag);
  CHECK(h.status == infra::health::health_status::unhealthy);
}

TEST_CASE("two hosts claiming the primary role: the previous primary stays, else none", "[cluster]") {
  three_hosts t;
  fake_cluster c(t.urls(), manual());
  t.b->role = cl::host_role::primary;
  c.discover();
  CHECK(c.state()->primary == 0u);
  t.a->down = true;
  c.discover();
  CHECK(c.state()->primary == 1u);
  t.a->down = false;  // the old primary comes back as a primary too
  c.discover();
  CHECK(c.state()->primary == 1u);
}

TEST_CASE("a not-writable error takes the host out of the primary role and rediscovery follows the failover",
          "[cluster]") {
  three_hosts t;
  std::vector<cl::role_change> changes;
  auto o = manual();
  o.on_role_change = [&](const cl::role_change& ch) { changes.push_back(ch); };
  fake_cluster c(t.urls(), o);
  CHECK(changes.size() == 3);  // unknown -> primary / replica / replica
  changes.clear();

  // Failover behind the cluster's back: a is demoted, b promoted.
  t.a->role = cl::host_role::replica;
  t.b->role = cl::host_role::primary;
  auto e = error_of([&] { c.execute("INSERT 2"); });
  CHECK(e.sqlstate() == "25006");
  auto s = c.state();
  CHECK_FALSE(s->primary);  // at once, before any probe
  CHECK(s->hosts[0].suspect);
  CHECK(s->hosts[0].last_error.find("read-only") != std::string::npos);
  CHECK(error_of([&] { (void)c.primary(); }).code() == infra::errc::connection_refused);

  c.discover();
  s = c.state();
  REQUIRE(s->primary == 1u);
  CHECK_FALSE(s->hosts[0].suspect);
  REQUIRE(changes.size() == 2);
  CHECK(changes[0].host == 0u);
  CHECK(changes[0].from == cl::host_role::primary);
  CHECK(changes[0].to == cl::host_role::replica);
  CHECK(changes[1].to == cl::host_role::primary);
  c.execute("INSERT 3");
  CHECK(t.b->statements == std::vector<std::string>{"INSERT 3"});

  c.discover();  // nothing changed: nothing reported again
  CHECK(changes.size() == 2);
}

TEST_CASE("other errors keep the routing as it is", "[cluster]") {
  three_hosts t;
  fake_cluster c(t.urls(), manual());
  auto e = error_of([&] {
    c.with_primary([](host_connection&) -> int {
      throw infra::database_error(infra::errc::query_failed, "syntax error", "fake", "42601");
    });
  });
  CHECK(e.sqlstate() == "42601");
  CHECK(c.state()->primary == 0u);
  CHECK(c.state()->hosts[0].last_error == "syntax error");
}

TEST_CASE("a primary that went away is taken out and its replacement found", "[cluster]") {
  three_hosts t;
  fake_cluster c(t.urls(), manual());
  c.execute("INSERT 1");
  t.a->down = true;
  auto e = error_of([&] { c.execute("INSERT 2"); });
  CHECK(e.code() == infra::errc::connection_lost);
  CHECK_FALSE(c.state()->primary);
  t.c->role = cl::host_role::primary;
  c.discover();
  CHECK(c.state()->hosts[0].role == cl::host_role::down);
  REQUIRE(c.state()->primary == 2u);
  c.execute("INSERT 3");
  CHECK(t.c->statements.back() == "INSERT 3");
  auto h = cl::check_cluster_health(*c.state(), c.options().max_replication_lag);
  CHECK(h.status == infra::health::health_status::degraded);  // a is down
  CHECK(h.metrics.check_latency == 1.0);                         // c's round trip, ms
}

TEST_CASE("the discovery thread probes every interval, wakes at once on an error, stops at once", "[cluster]") {
  three_hosts t;
  auto o = manual();
  o.discovery_interval = 20ms;
  {
    fake_cluster c(t.urls(), o);
    CHECK(eventually([&] { return c.state()->rounds >= 3; }, 20s));
  }
  o.discovery_interval = std::chrono::hours(1);
  std::latch promoted(1);
  o.on_role_change = [&](const cl::role_change& ch) {
    if (ch.host == 1 && ch.to == cl::host_role::primary) promoted.count_down();
  };
  const auto start = std::chrono::steady_clock::now();
  {
    fake_cluster c(t.urls(), o);
    t.a->role = cl::host_role::replica;
    t.b->role = cl::host_role::primary;
    CHECK_THROWS_AS(c.execute("INSERT 1"), infra::database_error);
    promoted.wait();  // only the error can have caused a round within the hour
    CHECK(c.state()->primary == 1u);
  }  // the destructor must not wait out the hour
  CHECK(std::chrono::steady_clock::now() - start < 60s);
}

TEST_CASE("routing stays consistent while discovery follows roles that change under load", "[cluster]") {
  three_hosts t;
  auto o = manual();
  o.discovery_interval = 5ms;  // the thread runs rounds too, alongside the explicit ones below
  o.pool.max_size = 8;
  fake_cluster c(t.urls(), o);
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0}, reads{0}, refused{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (!stop.load()) {
        try {
          c.execute("INSERT x");
          ++writes;
        } catch (const infra::database_error& e) {
          if (e.code() == infra::errc::connection_refused || e.sqlstate() == "25006") ++refused;
        }
        auto l = c.replica_or_primary();
        l->execute("SELECT 1");
        ++reads;
      }
    });
  }
  REQUIRE(eventually([&] { return writes.load() > 0; }));
  for (int flip = 0; flip < 50; ++flip) {
    const int seen = reads.load();
    REQUIRE(eventually([&] { return reads.load() > seen + 4; }));  // the workers run between flips
    const bool to_b = flip % 2 == 0;
    {
      std::scoped_lock lock(t.a->m, t.b->m);
      t.a->role = to_b ? cl::host_role::replica : cl::host_role::primary;
      t.b->role = to_b ? cl::host_role::primary : cl::host_role::replica;
    }
    c.discover();
    const auto s = c.state();
    const std::size_t expected = to_b ? 1u : 0u;
    // Or already taken out again: a worker that leased this host two flips ago may report its
    // 25006 from then only now (a late report errs on the side of sending no writes).
    CHECK((s->primary == expected || (!s->primary && s->hosts[expected].suspect)));
  }
  stop = true;
  for (auto& w : workers) w.join();
  c.discover();
  CHECK(c.state()->primary == 0u);  // the last flip (49) made a the primary again
  CHECK(writes.load() > 0);
  CHECK(reads.load() > 0);
  // Every write that reached a host ran on the primary of that moment (the fake refuses others).
  CHECK(c.state()->rounds >= 51);
}

TEST_CASE("the role-change callback may call into the cluster", "[cluster]") {
  three_hosts t;
  fake_cluster* self = nullptr;
  int nested = 0;
  auto o = manual();
  o.on_role_change = [&](const cl::role_change& ch) {
    if (self == nullptr || ch.to != cl::host_role::primary) return;
    CHECK(self->state()->primary == ch.host);  // already published
    self->discover();                          // a round from inside the callback: no deadlock
    ++nested;
  };
  fake_cluster c(t.urls(), o);
  self = &c;
  t.a->role = cl::host_role::replica;
  t.c->role = cl::host_role::primary;
  c.discover();
  CHECK(nested == 1);
  CHECK(c.state()->rounds == 3);
  c.close();
  c.close();  // idempotent
  CHECK(error_of([&] { (void)c.primary(); }).code() == infra::errc::pool_closed);
}
