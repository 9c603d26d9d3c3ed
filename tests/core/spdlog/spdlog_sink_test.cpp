// The spdlog sink (component `spdlog`), against the installed spdlog (Debian's libspdlog-dev).
#include "support/catch.hpp"

#include <kysera/infra/logger/spdlog.hpp>
#include <kysera/infra/resilience/circuit_breaker.hpp>

#include <spdlog/sinks/ostream_sink.h>

#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

namespace infra = kysera::infra;

namespace {
struct spdlog_fixture {
  std::ostringstream out;
  std::shared_ptr<spdlog::logger> target;
  spdlog_fixture() {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out);
    sink->set_pattern("%l|%v");
    target = std::make_shared<spdlog::logger>("kysera-test", sink);
    target->set_level(spdlog::level::trace);
  }
};
}  // namespace

TEST_CASE("spdlog_logger writes every level to the spdlog logger", "[core]") {
  spdlog_fixture f;
  infra::spdlog_logger log(f.target);
  log.trace("t");
  log.debug("d");
  log.info("i");
  log.warn("w {} not a format");
  log.error("e");
  log.fatal("f");
  CHECK(f.out.str() ==
        "trace|t\ndebug|d\ninfo|i\nwarning|w {} not a format\nerror|e\ncritical|f\n");
}

TEST_CASE("spdlog's own level decides what the spdlog sink writes", "[core]") {
  spdlog_fixture f;
  f.target->set_level(spdlog::level::warn);
  infra::spdlog_logger log(f.target);
  log.info("dropped by spdlog");
  log.warn("kept");
  CHECK(f.out.str() == "warning|kept\n");
}

TEST_CASE("as the default logger, the spdlog sink receives the library's messages", "[core]") {
  spdlog_fixture f;
  infra::spdlog_logger log(f.target);
  infra::logger* previous = infra::set_default_logger(&log);
  infra::resilience::circuit_breaker breaker(
      {.threshold = 1,
       .reset_time = std::chrono::seconds(60),
       .on_state_change = [](infra::resilience::circuit_state, infra::resilience::circuit_state) {
         throw std::runtime_error("callback bug");
       }});
  breaker.force_open();
  infra::set_default_logger(previous);
  CHECK(f.out.str() == "warning|circuit breaker: on_state_change threw (ignored): callback bug\n");
}
