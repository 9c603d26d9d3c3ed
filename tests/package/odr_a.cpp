// ODR check, part 1: this file and odr_b.cpp both include everything and use inline functions,
// templates and function-local statics; linking them into one program must succeed and they
// must share one instance of each singleton.
#include <kysera/infra.hpp>

#include "support/catch.hpp"

namespace infra = kysera::infra;

const std::error_category* odr_category_b();
infra::logger* odr_console_b();
std::string odr_breaker_state_b();

TEST_CASE("two translation units including everything link into one program", "[package]") {
  CHECK(&infra::error_category() == odr_category_b());
  CHECK(&infra::console_logger() == odr_console_b());
  CHECK(odr_breaker_state_b() == std::string(infra::resilience::to_string(infra::resilience::circuit_state::closed)));
}

// The README's 30-second tour, compiled (not run) so the front page cannot rot.
#if defined(KYSERA_INFRA_HAS_POSTGRES)
namespace {
using namespace std::chrono_literals;
[[maybe_unused]] void readme_tour() {
  using conn = infra::postgres::connection;
  infra::pool::connection_pool<conn> db(
      [] { return std::make_unique<conn>("postgres://app:secret@127.0.0.1:5432/app"); },
      {.max_size = 8, .acquire_timeout = 5s});

  auto health = infra::check_database_health(db, infra::create_metrics_pool(db));

  infra::health_monitor monitor(db, {.interval = 10s});
  monitor.start([](const infra::health_check_result&) {});

  infra::circuit_breaker breaker(5, 30s);
  auto rows = breaker.execute([&] {
    return infra::with_retry([&] { return db.execute("SELECT id FROM jobs"); }, {.delay = 100ms});
  });

  auto shutdown = infra::shutdown::create_shutdown_controller(db,
      {.timeout = 10s, .on_shutdown = [&] { monitor.stop(); }});
  shutdown.register_signals();
}
}  // namespace
#endif
