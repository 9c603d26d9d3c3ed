// The HTTP endpoint against real clients: curl sees /readyz go 503 and back to 200 while the test
// PostgreSQL server is stopped and restarted (liveness stays 200), and a real Prometheus server
// scraping /metrics reports up == 1 and the pool gauge the callback wrote from get_metrics()
// (a pool of fake connections with two leased).
// The /metrics text here is a hand-written gauge, so the test pins the endpoint and the scraper alone
// (examples/check_listen.sh scrapes the registry's exposition through complete --listen).

#include "support/catch.hpp"
#include "support/eventually.hpp"
#include "support/servers.hpp"
#include "http/support_curl.hpp"
#include "support/fake_database.hpp"

#include <kysera/infra/adapters/postgres.hpp>
#include <kysera/infra/health.hpp>
#include <kysera/infra/http.hpp>
#include <kysera/infra/pool/connection_pool.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

namespace infra = kysera::infra;
namespace health = kysera::infra::health;
namespace http = kysera::infra::http;
namespace servers = kysera::test::servers;
using kysera::test::eventually;
using kysera::test::curl::get;
using namespace std::chrono_literals;

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("http endpoint: /readyz follows a stopped and restarted PostgreSQL, /livez does not", "[http][postgres]") {
  infra::postgres::connection db(servers::postgres_url());
  health::health_monitor_options mo;
  mo.interval = 200ms;
  mo.timeout = 1s;
  mo.logger = &infra::silent_logger();
  health::health_monitor monitor(db, mo);
  health::probes probes(monitor, {.failure_threshold = 2});
  http::server endpoint(probes);
  const int port = endpoint.port();
  probes.start();
  REQUIRE(eventually([&] { return get(port, "/readyz").status == 200; }));
  CHECK(get(port, "/startupz").status == 200);
  {
    servers::stop_guard stopped("postgres");
    REQUIRE(eventually([&] { return get(port, "/readyz").status == 503; }));
    CHECK(get(port, "/livez").status == 200);
    CHECK(get(port, "/healthz").status == 503);
    CHECK(get(port, "/startupz").status == 200);
    stopped.start();
  }
  REQUIRE(eventually([&] { return get(port, "/readyz").status == 200; }));
  CHECK(get(port, "/healthz").status == 200);
  monitor.stop();
}
#endif

TEST_CASE("http endpoint: a real Prometheus scrapes it (up == 1, the pool gauge as written)", "[http]") {
  if (std::system("command -v prometheus > /dev/null 2>&1") != 0) {
    WARN("prometheus not installed (Debian: prometheus): skipped");
    return;
  }
  health::probes probes;
  // A real pool with two connections leased: the callback writes its get_metrics() by hand.
  infra::pool::connection_pool<kysera::test::fake_database> pool(
      [] { return std::make_unique<kysera::test::fake_database>(); }, {.max_size = 4});
  auto first = pool.acquire();
  auto second = pool.acquire();
  http::server endpoint(probes, {.metrics = [&pool](http::metrics_format f) {
                                   const auto m = pool.get_metrics();
                                   std::string body =
                                       "# HELP kysera_pool_connections Connections by state.\n"
                                       "# TYPE kysera_pool_connections gauge\n"
                                       "kysera_pool_connections{state=\"used\"} " + std::to_string(m.active) + "\n"
                                       "kysera_pool_connections{state=\"idle\"} " + std::to_string(m.idle) + "\n";
                                   if (f == http::metrics_format::openmetrics) {
                                     return http::metrics_text{body + "# EOF\n", std::string(http::openmetrics_content_type)};
                                   }
                                   return http::metrics_text{body, std::string(http::prometheus_content_type)};
                                 }});
  const std::string dir = std::string(KYSERA_TEST_BINARY_DIR) + "/prometheus-it";
  std::system(("rm -rf '" + dir + "' && mkdir -p '" + dir + "'").c_str());
  std::ofstream(dir + "/prometheus.yml") << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                                            "scrape_configs:\n  - job_name: kysera\n    static_configs:\n"
                                            "      - targets: ['127.0.0.1:" << endpoint.port() << "']\n";
  // Prometheus on a free port: ask the kernel for one through a throwaway endpoint.
  int prom_port = 0;
  {
    http::server probe_port(probes);
    prom_port = probe_port.port();
  }
  const std::string start = "cd '" + dir + "' && (prometheus --config.file=prometheus.yml --storage.tsdb.path=data "
                            "--web.listen-address=127.0.0.1:" + std::to_string(prom_port) +
                            " > prometheus.log 2>&1 & echo $! > prometheus.pid)";
  REQUIRE(std::system(start.c_str()) == 0);
  struct stop_prometheus {
    std::string dir;
    ~stop_prometheus() { std::system(("kill $(cat '" + dir + "/prometheus.pid') 2>/dev/null").c_str()); }
  } guard{dir};
  auto query = [&](const std::string& q) {
    return get(prom_port, "/api/v1/query?query=" + q).body;
  };
  CHECK(eventually([&] { return query("up").find(R"("value":[)") != std::string::npos &&
                                 query("up").find(R"(,"1"]})") != std::string::npos; },
                   60s, 200ms));
  const std::string used = "kysera_pool_connections%7Bstate%3D%22used%22%7D";  // {state="used"}
  const std::string expected = R"(,")" + std::to_string(pool.get_metrics().active) + R"("]})";
  CHECK(pool.get_metrics().active == 2);
  CHECK(eventually([&] { return query(used).find(expected) != std::string::npos; }, 60s, 200ms));
}
