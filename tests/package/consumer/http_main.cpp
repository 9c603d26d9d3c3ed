// A consumer of the `http` component: serves the probes on a free loopback port and asks itself
// for /livez and /readyz with cpp-httplib's client. Exits 0 when both answer as expected.
#include <kysera/infra/health.hpp>
#include <kysera/infra/http.hpp>

#include <cstdio>

int main() {
  namespace health = kysera::infra::health;
  health::probes probes;
  kysera::infra::http::server endpoint(probes);
  httplib::Client client("127.0.0.1", endpoint.port());
  auto live = client.Get("/livez");
  auto ready = client.Get("/readyz");
  const bool ok = live && live->status == 200 && ready && ready->status == 503;
  std::printf("http: /livez %d, /readyz %d\n", live ? live->status : 0, ready ? ready->status : 0);
  return ok ? 0 : 1;
}
