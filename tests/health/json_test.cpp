// to_json(health_check_result): one naming rule (the TypeScript names in snake_case), valid JSON
// for any message.

#include "support/catch.hpp"

#include <kysera/infra/health.hpp>

#include <chrono>
#include <string>

namespace health = kysera::infra::health;
using namespace std::chrono_literals;

namespace {
// 2025-01-31T12:00:00.250Z
std::chrono::system_clock::time_point sample_time() {
  return std::chrono::sys_days{std::chrono::year{2025} / 1 / 31} + 12h + 250ms;
}
}  // namespace

TEST_CASE("to_json names every field after the TypeScript field, in snake_case", "[health]") {
  health::health_check_result r;
  r.status = health::health_status::degraded;
  r.checks.push_back({"Database Connection", health::health_status::degraded,
                      "Connected successfully (123.40 ms)"});
  r.metrics.check_latency = 123.4;
  r.metrics.pool_metrics = kysera::infra::pool::pool_metrics{3, 1, 2, 4, 8};
  r.metrics.database_version = "PostgreSQL 15.8";
  r.timestamp = sample_time();
  CHECK(health::to_json(r) ==
        "{\"status\":\"degraded\","
        "\"checks\":[{\"name\":\"Database Connection\",\"status\":\"degraded\","
        "\"message\":\"Connected successfully (123.40 ms)\"}],"
        "\"errors\":[],"
        "\"metrics\":{\"check_latency\":123.40,"
        "\"pool_metrics\":{\"total_connections\":3,\"active_connections\":2,\"idle_connections\":1,"
        "\"waiting_requests\":4,\"max_connections\":8},"
        "\"database_version\":\"PostgreSQL 15.8\"},"
        "\"timestamp\":\"2025-01-31T12:00:00.250Z\"}");
  // The old kysera-check spelling is gone: the unit is documented, not part of the name.
  CHECK(health::to_json(r).find("check_latency_ms") == std::string::npos);
}

TEST_CASE("to_json leaves out absent figures and lists the errors of a failure", "[health]") {
  health::health_check_result r;
  r.status = health::health_status::unhealthy;
  r.checks.push_back({"Database Connection", health::health_status::unhealthy, "refused"});
  r.errors.push_back("refused");
  r.timestamp = sample_time();
  CHECK(health::to_json(r) ==
        "{\"status\":\"unhealthy\",\"checks\":[{\"name\":\"Database "
        "Connection\",\"status\":\"unhealthy\","
        "\"message\":\"refused\"}],\"errors\":[\"refused\"],\"metrics\":{},"
        "\"timestamp\":\"2025-01-31T12:00:00.250Z\"}");
}

TEST_CASE("to_json escapes quotes, backslashes and control characters and keeps UTF-8",
          "[health]") {
  health::health_check_result r;
  r.errors.push_back("say \"hi\"\\ now\nnext\tline\x01 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  r.timestamp = sample_time();
  const std::string json = health::to_json(r);
  CHECK(json.find(R"("errors":["say \"hi\"\\ now\nnext\tline\u0001 caf)"
                  "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"
                  R"("])") != std::string::npos);
}

TEST_CASE("to_json replaces bytes that are not UTF-8, so the output stays valid JSON", "[health]") {
  health::health_check_result r;
  // Latin-1 "é", a lone continuation byte, a truncated sequence, an overlong "/", a surrogate.
  r.errors.push_back(std::string("caf\xe9 \x80 \xe2\x82 \xc0\xaf \xed\xa0\x80 ok"));
  r.timestamp = sample_time();
  const std::string json = health::to_json(r);
  CHECK(json.find(
            R"("errors":["caf\ufffd \ufffd \ufffd\ufffd \ufffd\ufffd \ufffd\ufffd\ufffd ok"])") !=
        std::string::npos);
}
