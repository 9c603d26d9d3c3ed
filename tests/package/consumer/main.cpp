// A consumer of the installed (or embedded) library: one health check per URL given.
// Exits 0 when every check is healthy or degraded, 1 otherwise. It also runs one check on the
// shipped test double, so the testing headers are installed and usable.
#include <kysera/infra.hpp>
#include <kysera/infra/testing/fake_database.hpp>
#include <kysera/infra/testing/manual_clock.hpp>

#include <cstdio>
#include <string>
#include <string_view>

namespace infra = kysera::infra;

template <class Connection>
static bool check(const std::string& url) {
  try {
    Connection db(url);
    auto result = infra::health::check_database_health(db);
    std::printf("%s: %s\n", std::string(Connection::backend_name).c_str(),
                std::string(infra::health::to_string(result.status)).c_str());
    return result.status != infra::health::health_status::unhealthy;
  } catch (const std::exception& e) {
    std::printf("%s: error: %s\n", std::string(Connection::backend_name).c_str(), e.what());
    return false;
  }
}

int main(int argc, char** argv) {
  bool ok = argc > 1;
  {
    namespace testing = infra::testing;
    testing::manual_clock::reset();
    testing::fake_database fake;
    fake.fail_next(infra::errc::connection_lost);
    const auto failed = infra::health::perform_health_check<testing::manual_clock>(fake);
    const auto healthy = infra::health::perform_health_check<testing::manual_clock>(fake);
    const bool doubles_ok = failed.status == infra::health::health_status::unhealthy &&
                            healthy.status == infra::health::health_status::healthy;
    std::printf("testing doubles: %s\n", doubles_ok ? "ok" : "wrong");
    ok = doubles_ok && ok;
  }
  for (int i = 1; i < argc; ++i) {
    std::string url = argv[i];
    std::string_view scheme = std::string_view(url).substr(0, url.find(':'));
    if (scheme == "sqlite") {
#if defined(KYSERA_INFRA_HAS_SQLITE)
      ok = check<infra::sqlite::connection>(url) && ok;
#else
      std::printf("sqlite: adapter not linked\n");
      ok = false;
#endif
    } else if (scheme == "postgres" || scheme == "postgresql") {
#if defined(KYSERA_INFRA_HAS_POSTGRES)
      ok = check<infra::postgres::connection>(url) && ok;
#else
      std::printf("postgres: adapter not linked\n");
      ok = false;
#endif
    } else if (scheme == "mysql" || scheme == "mariadb") {
#if defined(KYSERA_INFRA_HAS_MYSQL)
      ok = check<infra::mysql::connection>(url) && ok;
#else
      std::printf("mysql: adapter not linked\n");
      ok = false;
#endif
    } else {
      std::printf("%s: unknown scheme\n", url.c_str());
      ok = false;
    }
  }
  return ok ? 0 : 1;
}
