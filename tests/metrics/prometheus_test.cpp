#include <kysera/infra/metrics.hpp>

#include "support/catch.hpp"
#include "support_metrics.hpp"

#include <chrono>
#include <string>

namespace km = kysera::infra::metrics;
using kysera::test::metrics_support::make_pool;
using kysera::test::metrics_support::scene;

namespace {
km::visitor::time_point at(double seconds) {
  return km::visitor::time_point(std::chrono::duration_cast<km::visitor::time_point::duration>(
      std::chrono::duration<double>(seconds)));
}
}  // namespace

TEST_CASE("the text format: dots to underscores, unit suffixes, _total, escaped labels", "[metrics]") {
  std::string out;
  km::prometheus_writer w(out);
  const km::attribute a[] = {{"db.client.connection.pool.name", "a\"b\\c\nd"}};
  w.on_gauge({"db.client.connection.max", "{connection}", "Max.\nSecond line \\ here"}, a, 10);
  w.on_counter({"kysera.retry.calls", "{call}", "Calls."}, a, 3, at(1.5));
  km::histogram h{0.5, 1.0};
  h.record(0.25);
  h.record(2.0);
  w.on_histogram({"db.client.operation.duration", "s", "Duration."}, {}, h.snapshot(), at(2));
  w.finish();
  CHECK(out ==
        "# HELP db_client_connection_max Max.\\nSecond line \\\\ here\n"
        "# TYPE db_client_connection_max gauge\n"
        "db_client_connection_max{db_client_connection_pool_name=\"a\\\"b\\\\c\\nd\"} 10\n"
        "# HELP kysera_retry_calls_total Calls.\n"
        "# TYPE kysera_retry_calls_total counter\n"
        "kysera_retry_calls_total{db_client_connection_pool_name=\"a\\\"b\\\\c\\nd\"} 3\n"
        "# HELP db_client_operation_duration_seconds Duration.\n"
        "# TYPE db_client_operation_duration_seconds histogram\n"
        "db_client_operation_duration_seconds_bucket{le=\"0.5\"} 1\n"
        "db_client_operation_duration_seconds_bucket{le=\"1.0\"} 1\n"
        "db_client_operation_duration_seconds_bucket{le=\"+Inf\"} 2\n"
        "db_client_operation_duration_seconds_sum 2.25\n"
        "db_client_operation_duration_seconds_count 2\n");
}

TEST_CASE("OpenMetrics: UNIT, _created, quoted HELP and # EOF", "[metrics]") {
  std::string out;
  km::prometheus_writer w(out, km::exposition_format::openmetrics);
  w.on_counter({"db.client.connection.timeouts", "{timeout}", "Say \"when\"."}, {}, 4, at(1.5));
  km::histogram h{1.0};
  h.record(0.5);
  w.on_histogram({"job.duration", "s", "Jobs."}, {}, h.snapshot(), at(2));
  w.finish();
  CHECK(out ==
        "# HELP db_client_connection_timeouts Say \\\"when\\\".\n"
        "# TYPE db_client_connection_timeouts counter\n"
        "db_client_connection_timeouts_total 4\n"
        "db_client_connection_timeouts_created 1.5\n"
        "# HELP job_duration_seconds Jobs.\n"
        "# TYPE job_duration_seconds histogram\n"
        "# UNIT job_duration_seconds seconds\n"
        "job_duration_seconds_bucket{le=\"1.0\"} 1\n"
        "job_duration_seconds_bucket{le=\"+Inf\"} 1\n"
        "job_duration_seconds_sum 0.5\n"
        "job_duration_seconds_count 1\n"
        "job_duration_seconds_created 2\n"
        "# EOF\n");
}

TEST_CASE("a registry scrape shows a pool's gauges as get_metrics() reports them", "[metrics]") {
  auto pool = make_pool(4);
  km::registry reg;
  auto r = reg.add_pool("main", *pool);
  auto lease = pool->acquire();
  const auto text = km::to_prometheus(reg);
  const auto m = pool->get_metrics();
  CHECK(text.find("db_client_connection_count{db_client_connection_pool_name=\"main\",db_client_connection_state=\"used\"} " +
                  std::to_string(m.active) + "\n") != std::string::npos);
  CHECK(text.find("db_client_connection_max{db_client_connection_pool_name=\"main\"} 4\n") != std::string::npos);
  CHECK(km::to_openmetrics(reg).ends_with("# EOF\n"));
  CHECK(km::content_type(km::exposition_format::prometheus_text) == "text/plain; version=0.0.4; charset=utf-8");
}

TEST_CASE("a timed pool's histograms come out as *_seconds histograms in both formats", "[metrics]") {
  scene s;  // its pool "timed" opened 2 connections, handed out 3 leases and has 1 still out
  const auto text = km::to_prometheus(s.reg);
  const auto om = km::to_openmetrics(s.reg);
  const std::string label = "{db_client_connection_pool_name=\"timed\"}";
  for (const std::string name : {"create_time", "wait_time", "use_time"}) {
    const std::string family = "db_client_connection_" + name + "_seconds";
    CHECK(text.find("# TYPE " + family + " histogram\n") != std::string::npos);
    CHECK(om.find("# TYPE " + family + " histogram\n") != std::string::npos);
    CHECK(om.find("# UNIT " + family + " seconds\n") != std::string::npos);
    CHECK(text.find(family + "_bucket{db_client_connection_pool_name=\"timed\",le=\"+Inf\"}") != std::string::npos);
    CHECK(om.find(family + "_created" + label) != std::string::npos);
  }
  CHECK(text.find("db_client_connection_create_time_seconds_count" + label + " 2\n") != std::string::npos);
  CHECK(text.find("db_client_connection_wait_time_seconds_count" + label + " 3\n") != std::string::npos);
  CHECK(text.find("db_client_connection_use_time_seconds_count" + label + " 2\n") != std::string::npos);
  // The other pools do not record timings.
  CHECK(text.find("create_time_seconds_count{db_client_connection_pool_name=\"main\"}") == std::string::npos);
}
