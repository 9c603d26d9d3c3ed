// to_json(health_check_result): the application/health+json shape plus our fields (the
// TypeScript names in snake_case), valid JSON for any message, checked with a real JSON parser.

#include "support/catch.hpp"

#include <kysera/infra/health.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include <unistd.h>

namespace health = kysera::infra::health;
using namespace std::chrono_literals;

namespace {
// 2025-01-31T12:00:00.250Z
std::chrono::system_clock::time_point sample_time() {
  return std::chrono::sys_days{std::chrono::year{2025} / 1 / 31} + 12h + 250ms;
}

/// Runs python3's json module on `json` with the assertions in `python` (the document is `r`);
/// returns the exit status (0: it parsed and every assertion held; 77: no python3 here).
int python_check(const std::string& json, const std::string& python) {
  if (std::system("command -v python3 > /dev/null 2>&1") != 0) return 77;
  // One file pair per process and call: ctest runs test cases in parallel processes.
  static int calls = 0;
  const std::string base = std::string(KYSERA_TEST_BINARY_DIR) + "/json_test_" + std::to_string(::getpid()) +
                           "_" + std::to_string(++calls);
  std::ofstream(base + ".json", std::ios::binary) << json;
  std::ofstream(base + ".py") << "import json, sys\n"
                                 "r = json.load(open(sys.argv[1], encoding='utf-8'))\n"
                              << python << "\n";
  const std::string command = "python3 '" + base + ".py' '" + base + ".json'";
  const int rc = std::system(command.c_str());
  std::remove((base + ".json").c_str());
  std::remove((base + ".py").c_str());
  return rc;
}
}  // namespace

TEST_CASE("to_json writes the application/health+json shape with our fields after it", "[health]") {
  health::health_check_result r;
  r.status = health::health_status::degraded;
  r.checks.push_back({"Database Connection", health::health_status::degraded,
                      "Connected successfully (123.40 ms)"});
  r.metrics.check_latency = 123.4;
  r.metrics.pool_metrics = kysera::infra::pool::pool_metrics{3, 1, 2, 4, 8};
  r.metrics.database_version = "PostgreSQL 15.8";
  r.timestamp = sample_time();
  const std::string json = health::to_json(r);
  CHECK(json ==
        "{\"status\":\"warn\","
        "\"checks\":{\"database:responseTime\":[{\"componentId\":\"Database Connection\","
        "\"componentType\":\"datastore\",\"status\":\"warn\",\"observedValue\":123.40,"
        "\"observedUnit\":\"ms\",\"output\":\"Connected successfully (123.40 ms)\","
        "\"time\":\"2025-01-31T12:00:00.250Z\"}],"
        "\"pool:connections\":[{\"componentType\":\"component\",\"observedValue\":3,"
        "\"observedUnit\":\"connections\",\"time\":\"2025-01-31T12:00:00.250Z\"}]},"
        "\"errors\":[],"
        "\"metrics\":{\"check_latency\":123.40,"
        "\"pool_metrics\":{\"total_connections\":3,\"active_connections\":2,\"idle_connections\":1,"
        "\"waiting_requests\":4,\"max_connections\":8},"
        "\"database_version\":\"PostgreSQL 15.8\"},"
        "\"timestamp\":\"2025-01-31T12:00:00.250Z\"}");
  CHECK(health::health_json_media_type == "application/health+json");
  const int rc = python_check(json,
                              "assert r['status'] == 'warn', r\n"
                              "c = r['checks']['database:responseTime'][0]\n"
                              "assert c['observedValue'] == 123.4 and c['observedUnit'] == 'ms', c\n"
                              "assert r['checks']['pool:connections'][0]['observedValue'] == 3, r\n"
                              "assert r['metrics']['pool_metrics']['max_connections'] == 8, r");
  if (rc != 77) CHECK(rc == 0);
}

TEST_CASE("to_json maps healthy to pass and leaves out a passing check's output", "[health]") {
  health::health_check_result r;
  r.status = health::health_status::healthy;
  r.checks.push_back({"Database Connection", health::health_status::healthy, "Connected successfully (0.42 ms)"});
  r.metrics.check_latency = 0.42;
  r.timestamp = sample_time();
  CHECK(health::to_json(r) ==
        "{\"status\":\"pass\",\"checks\":{\"database:responseTime\":[{\"componentId\":\"Database Connection\","
        "\"componentType\":\"datastore\",\"status\":\"pass\",\"observedValue\":0.42,\"observedUnit\":\"ms\","
        "\"time\":\"2025-01-31T12:00:00.250Z\"}]},\"errors\":[],\"metrics\":{\"check_latency\":0.42},"
        "\"timestamp\":\"2025-01-31T12:00:00.250Z\"}");
}

TEST_CASE("to_json leaves out absent figures and gives a failure's first error as output", "[health]") {
  health::health_check_result r;
  r.status = health::health_status::unhealthy;
  r.checks.push_back({"Database Connection", health::health_status::unhealthy, "refused"});
  r.errors.push_back("refused");
  r.timestamp = sample_time();
  CHECK(health::to_json(r) ==
        "{\"status\":\"fail\",\"output\":\"refused\",\"checks\":{\"database:responseTime\":[{\"componentId\":"
        "\"Database Connection\",\"componentType\":\"datastore\",\"status\":\"fail\",\"output\":\"refused\","
        "\"time\":\"2025-01-31T12:00:00.250Z\"}]},\"errors\":[\"refused\"],\"metrics\":{},"
        "\"timestamp\":\"2025-01-31T12:00:00.250Z\"}");
}

TEST_CASE("to_json groups checks of one name under one key, so no key repeats", "[health]") {
  health::health_check_result r;
  r.status = health::health_status::healthy;
  r.checks.push_back({"cache", health::health_status::healthy, "a"});
  r.checks.push_back({"queue", health::health_status::degraded, "slow"});
  r.checks.push_back({"cache", health::health_status::unhealthy, "b"});
  r.timestamp = sample_time();
  const std::string json = health::to_json(r);
  CHECK(json.find("\"checks\":{\"cache\":[{\"componentId\":\"cache\",\"status\":\"pass\",\"time\"") !=
        std::string::npos);
  const int rc = python_check(json,
                              "assert [c['status'] for c in r['checks']['cache']] == ['pass', 'fail'], r\n"
                              "assert r['checks']['queue'][0]['output'] == 'slow', r");
  if (rc != 77) CHECK(rc == 0);
}

TEST_CASE("to_json escapes quotes, backslashes and control characters and keeps UTF-8", "[health]") {
  health::health_check_result r;
  r.status = health::health_status::unhealthy;
  const std::string message = "say \"hi\"\\ now\nnext\tline\x01 caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
  r.checks.push_back({"Database Connection", health::health_status::unhealthy, message});
  r.errors.push_back(message);
  r.timestamp = sample_time();
  const std::string json = health::to_json(r);
  CHECK(json.find(R"("errors":["say \"hi\"\\ now\nnext\tline\u0001 caf)"
                  "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"
                  R"("])") != std::string::npos);
  const int rc = python_check(json,
                              "m = 'say \"hi\"\\\\ now\\nnext\\tline\\x01 caf\\u00e9 \\u20ac \\U0001F600'\n"
                              "assert r['errors'] == [m] and r['output'] == m, r\n"
                              "assert r['checks']['database:responseTime'][0]['output'] == m, r");
  if (rc != 77) CHECK(rc == 0);
}

TEST_CASE("to_json replaces bytes that are not UTF-8, so the output stays valid JSON", "[health]") {
  health::health_check_result r;
  // Latin-1 "é", a lone continuation byte, a truncated sequence, an overlong "/", a surrogate.
  r.errors.push_back(std::string("caf\xe9 \x80 \xe2\x82 \xc0\xaf \xed\xa0\x80 ok"));
  r.checks.push_back({"bad \xff name", health::health_status::degraded, "x\xfey"});
  r.timestamp = sample_time();
  const std::string json = health::to_json(r);
  CHECK(json.find(
            R"("errors":["caf\ufffd \ufffd \ufffd\ufffd \ufffd\ufffd \ufffd\ufffd\ufffd ok"])") !=
        std::string::npos);
  const int rc = python_check(json,
                              "assert r['errors'] == ['caf\\ufffd \\ufffd \\ufffd\\ufffd \\ufffd\\ufffd "
                              "\\ufffd\\ufffd\\ufffd ok'], r\n"
                              "assert r['checks']['bad \\ufffd name'][0]['output'] == 'x\\ufffdy', r");
  if (rc != 77) CHECK(rc == 0);
}
