// http::respond and friends: what each endpoint path answers for given probe states, the metrics
// format an Accept header picks, and HOST:PORT parsing. No HTTP library needed.

#include "support/catch.hpp"
#include "health/support_probes.hpp"

#include <kysera/infra/http/responses.hpp>

#include <stdexcept>
#include <string>

namespace health = kysera::infra::health;
namespace http = kysera::infra::http;
using kysera::test::health_support::result_of;

namespace {
http::metrics_text sample_metrics(http::metrics_format f) {
  if (f == http::metrics_format::openmetrics) {
    return {"# TYPE up gauge\nup 1\n# EOF\n", std::string(http::openmetrics_content_type)};
  }
  return {"# TYPE up gauge\nup 1\n", std::string(http::prometheus_content_type)};
}
}  // namespace

TEST_CASE("http::respond: the probes answer 200 or 503 as their state says", "[health]") {
  health::probes p({.failure_threshold = 1});
  CHECK(http::respond(p, "/livez", "", {}).status == 200);
  CHECK(http::respond(p, "/readyz", "", {}).status == 503);
  CHECK(http::respond(p, "/startupz", "", {}).status == 503);
  p.record(result_of(health::health_status::healthy));
  CHECK(http::respond(p, "/readyz", "", {}).status == 200);
  CHECK(http::respond(p, "/readyz", "", {}).body == "ready\n");
  CHECK(http::respond(p, "/startupz", "", {}).status == 200);
  p.record(result_of(health::health_status::unhealthy));
  CHECK(http::respond(p, "/readyz", "", {}).status == 503);
  CHECK(http::respond(p, "/livez", "", {}).status == 200);
  p.begin_drain();
  CHECK(http::respond(p, "/readyz", "", {}).body == "not ready: shutting down\n");
}

TEST_CASE("http::respond: /healthz is the latest result as health+json", "[health]") {
  health::probes p;
  auto none = http::respond(p, "/healthz", "", {});
  CHECK(none.status == 503);
  CHECK(none.content_type == "application/health+json");
  CHECK(none.body == R"({"status":"fail","output":"no health check has run yet"})");
  p.record(result_of(health::health_status::degraded));
  auto warn = http::respond(p, "/healthz", "", {});
  CHECK(warn.status == 200);
  CHECK(warn.body.rfind(R"({"status":"warn")", 0) == 0);
  p.record(result_of(health::health_status::unhealthy));
  CHECK(http::respond(p, "/healthz", "", {}).status == 503);
}

TEST_CASE("http::respond: /metrics asks the callback for the format the Accept header names", "[health]") {
  health::probes p;
  auto text = http::respond(p, "/metrics", "text/plain", sample_metrics);
  CHECK(text.status == 200);
  CHECK(text.content_type == http::prometheus_content_type);
  auto om = http::respond(p, "/metrics",
                          "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
                          "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                          sample_metrics);
  CHECK(om.content_type == http::openmetrics_content_type);
  CHECK(om.body.find("# EOF") != std::string::npos);
  CHECK(http::respond(p, "/metrics", "", {}).status == 404);
  auto failing = http::respond(p, "/metrics", "", [](http::metrics_format) -> http::metrics_text {
    throw std::runtime_error("registry gone");
  });
  CHECK(failing.status == 500);
  CHECK(failing.body == "metrics failed: registry gone\n");
  CHECK(http::respond(p, "/other", "", sample_metrics).status == 404);
}

TEST_CASE("http::metrics_format_for prefers OpenMetrics only when it is asked for", "[health]") {
  CHECK(http::metrics_format_for("") == http::metrics_format::prometheus);
  CHECK(http::metrics_format_for("*/*") == http::metrics_format::prometheus);
  CHECK(http::metrics_format_for("text/plain, application/openmetrics-text") == http::metrics_format::openmetrics);
  CHECK(http::metrics_format_for("application/openmetrics-text;q=0, text/plain") == http::metrics_format::prometheus);
}

TEST_CASE("http::parse_listen_address reads HOST:PORT and rejects the rest", "[health]") {
  auto a = http::parse_listen_address("127.0.0.1:9464");
  CHECK(a.host == "127.0.0.1");
  CHECK(a.port == 9464);
  auto b = http::parse_listen_address("[::1]:0");
  CHECK(b.host == "::1");
  CHECK(b.port == 0);
  for (const char* bad : {"", "9464", ":9464", "host:", "host:x", "host:65536", "host:-1", "host:80x"}) {
    CHECK_THROWS_AS(http::parse_listen_address(bad), std::invalid_argument);
  }
}
