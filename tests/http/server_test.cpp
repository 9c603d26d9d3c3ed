// http::server with curl as the client: each endpoint's status code as the probes change, the
// Accept header choosing the metrics format, a drain seen by /readyz, stop() and a busy port.

#include "support/catch.hpp"
#include "health/support_probes.hpp"
#include "http/support_curl.hpp"
#include "support/fake_database.hpp"

#include <kysera/infra/http.hpp>
#include <kysera/infra/shutdown.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>

namespace health = kysera::infra::health;
namespace http = kysera::infra::http;
using kysera::test::health_support::result_of;
namespace sd = kysera::infra::shutdown;
using kysera::test::curl::get;
using namespace std::chrono_literals;

namespace {
http::metrics_text gauge(http::metrics_format f) {
  std::string body = "# HELP kysera_test_gauge A test gauge.\n# TYPE kysera_test_gauge gauge\nkysera_test_gauge 3\n";
  if (f == http::metrics_format::openmetrics) return {body + "# EOF\n", std::string(http::openmetrics_content_type)};
  return {body, std::string(http::prometheus_content_type)};
}
}  // namespace

TEST_CASE("http::server answers each endpoint as the probes change", "[http]") {
  health::probes probes({.failure_threshold = 1});
  http::server endpoint(probes, {.metrics = gauge});
  const int port = endpoint.port();
  REQUIRE(port > 0);
  CHECK(get(port, "/livez").status == 200);
  CHECK(get(port, "/readyz").status == 503);
  CHECK(get(port, "/startupz").status == 503);
  CHECK(get(port, "/healthz").status == 503);
  probes.record(result_of(health::health_status::healthy));
  CHECK(get(port, "/readyz").status == 200);
  CHECK(get(port, "/startupz").status == 200);
  auto h = get(port, "/healthz");
  CHECK(h.status == 200);
  CHECK(h.body.rfind(R"({"status":"pass")", 0) == 0);
  probes.record(result_of(health::health_status::unhealthy));
  CHECK(get(port, "/readyz").status == 503);
  CHECK(get(port, "/livez").status == 200);
  CHECK(get(port, "/nope").status == 404);
  auto m = get(port, "/metrics");
  CHECK(m.status == 200);
  CHECK(m.body.find("# EOF") == std::string::npos);
  auto om = get(port, "/metrics", "-H 'Accept: application/openmetrics-text;version=1.0.0'");
  CHECK(om.body.find("# EOF") != std::string::npos);
  endpoint.stop();
  CHECK(get(port, "/livez").status == 0);
  endpoint.stop();  // idempotent
}

TEST_CASE("http::server attached to a shutdown: /readyz is 503 during the drain, then it stops", "[http]") {
  kysera::test::fake_database db;
  health::probes probes;
  probes.record(result_of(health::health_status::healthy));
  http::server endpoint(probes);
  const int port = endpoint.port();
  std::atomic<int> readyz_during_drain{0};
  sd::shutdown_options o;
  o.logger = &kysera::infra::silent_logger();
  o.drain = 300ms;
  endpoint.attach(o);
  o.on_drain = [&, inner = std::move(o.on_drain)] {
    inner();
    readyz_during_drain = get(port, "/readyz").status;  // the endpoint still serves
  };
  CHECK(get(port, "/readyz").status == 200);
  sd::graceful_shutdown(db, std::move(o));
  CHECK(readyz_during_drain.load() == 503);
  CHECK(get(port, "/livez").status == 0);  // stopped after the drain
  CHECK(db.is_closed());
}

TEST_CASE("http::server rejects a bad port and reports a port in use", "[http]") {
  health::probes probes;
  CHECK_THROWS_AS(http::server(probes, {.port = 70000}), std::invalid_argument);
  http::server first(probes);
  CHECK_THROWS_AS(http::server(probes, {.port = first.port()}), std::system_error);
}
