// collect_cluster_metrics: the gauges of a cluster_state, through the Prometheus writer.
#include "support/catch.hpp"

#include <kysera/infra/cluster.hpp>
#include <kysera/infra/metrics/prometheus.hpp>
#include <kysera/infra/metrics/registry.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <string>

namespace cl = kysera::infra::cluster;
namespace metrics = kysera::infra::metrics;
using namespace std::chrono_literals;

TEST_CASE("cluster gauges: lag and round trip per host, role as 0/1", "[cluster][metrics]") {
  cl::cluster_state s;
  s.hosts.push_back({.name = "postgres://app:***@db1/app", .role = cl::host_role::primary,
                     .replication_lag = 0ms, .round_trip = 1500us});
  s.hosts.push_back({.name = "postgres://app:***@db2/app", .role = cl::host_role::replica,
                     .replication_lag = 2500ms, .round_trip = 500us});
  s.hosts.push_back({.name = "postgres://app:***@db3/app", .role = cl::host_role::down});
  s.primary = 0;
  std::string text;
  metrics::prometheus_writer w(text);
  cl::collect_cluster_metrics(s, "main", w);
  w.finish();
  INFO(text);
  CHECK(text.find("# TYPE kysera_cluster_host_replication_lag_seconds gauge") != std::string::npos);
  CHECK(text.find("kysera_cluster_host_replication_lag_seconds{name=\"main\",host=\"postgres://app:***@db2/app\"} 2.5") !=
        std::string::npos);
  CHECK(text.find("kysera_cluster_host_round_trip_seconds{name=\"main\",host=\"postgres://app:***@db1/app\"} 0.0015") !=
        std::string::npos);
  CHECK(text.find("kysera_cluster_host_role{name=\"main\",host=\"postgres://app:***@db3/app\",role=\"down\"} 1") !=
        std::string::npos);
  CHECK(text.find("kysera_cluster_host_role{name=\"main\",host=\"postgres://app:***@db3/app\",role=\"primary\"} 0") !=
        std::string::npos);
  // A host that is down has no lag and no round trip series.
  CHECK(text.find("replication_lag_seconds{name=\"main\",host=\"postgres://app:***@db3/app\"}") == std::string::npos);
  CHECK(text.find("round_trip_seconds{name=\"main\",host=\"postgres://app:***@db3/app\"}") == std::string::npos);
}

TEST_CASE("cluster gauges of several clusters come family by family", "[cluster][metrics]") {
  cl::cluster_state a, b;
  a.hosts.push_back({.name = "a1", .role = cl::host_role::primary, .replication_lag = 0ms, .round_trip = 1ms});
  b.hosts.push_back({.name = "b1", .role = cl::host_role::replica, .replication_lag = 1s, .round_trip = 2ms});
  const std::array<cl::cluster_metrics_source, 2> both{{{"orders", &a}, {"users", &b}}};
  std::string text;
  metrics::prometheus_writer w(text);
  cl::collect_cluster_metrics(both, w);
  INFO(text);
  // One header per family: the two clusters' series are not interleaved by family.
  const auto count = [&](std::string_view needle) {
    std::size_t n = 0;
    for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
    return n;
  };
  CHECK(count("# TYPE kysera_cluster_host_replication_lag_seconds") == 1);
  CHECK(count("# TYPE kysera_cluster_host_round_trip_seconds") == 1);
  CHECK(count("# TYPE kysera_cluster_host_role") == 1);
  CHECK(text.find("kysera_cluster_host_replication_lag_seconds{name=\"users\",host=\"b1\"} 1") != std::string::npos);
}

namespace {
/// Stands in for a cluster: the registry reads only its state() snapshot.
struct snapshot_holder {
  std::shared_ptr<const cl::cluster_state> snapshot;
  std::shared_ptr<const cl::cluster_state> state() const { return snapshot; }
};
}  // namespace

TEST_CASE("a registered cluster's gauges come with the registry's scrape, and go with its registration",
          "[cluster][metrics]") {
  auto s = std::make_shared<cl::cluster_state>();
  s->hosts.push_back({.name = "db1", .role = cl::host_role::primary, .replication_lag = 0ms, .round_trip = 1ms});
  s->hosts.push_back({.name = "db2", .role = cl::host_role::replica, .replication_lag = 3s, .round_trip = 2ms});
  s->primary = 0;
  snapshot_holder orders{s};
  snapshot_holder users{s};
  metrics::registry reg;
  auto r1 = reg.add_cluster("orders", orders);
  auto r2 = reg.add_cluster("users", users);
  std::string text = metrics::to_prometheus(reg);
  INFO(text);
  CHECK(text.find("kysera_cluster_host_replication_lag_seconds{name=\"orders\",host=\"db2\"} 3") != std::string::npos);
  CHECK(text.find("kysera_cluster_host_role{name=\"users\",host=\"db1\",role=\"primary\"} 1") != std::string::npos);
  std::size_t headers = 0;
  for (auto p = text.find("# TYPE kysera_cluster_host_role "); p != std::string::npos;
       p = text.find("# TYPE kysera_cluster_host_role ", p + 1)) {
    ++headers;
  }
  CHECK(headers == 1);  // both clusters' series in one family
  r1.reset();
  text = metrics::to_prometheus(reg);
  CHECK(text.find("name=\"orders\"") == std::string::npos);
  CHECK(text.find("name=\"users\"") != std::string::npos);
}
