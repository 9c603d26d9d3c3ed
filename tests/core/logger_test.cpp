#include "support/catch.hpp"

#include <kysera/infra/logger.hpp>

#include <string>
#include <utility>
#include <vector>

namespace infra = kysera::infra;

TEST_CASE("make_logger forwards level and message to the callable", "[core]") {
  std::vector<std::pair<infra::log_level, std::string>> seen;
  auto log = infra::make_logger(
      [&](infra::log_level level, std::string_view m) { seen.emplace_back(level, std::string(m)); });
  log.info("hello");
  log.error("boom");
  REQUIRE(seen.size() == 2);
  CHECK(seen[0] == std::pair{infra::log_level::info, std::string("hello")});
  CHECK(seen[1].first == infra::log_level::error);
}

TEST_CASE("messages below the logger's level are dropped", "[core]") {
  int calls = 0;
  auto log = infra::make_logger([&](infra::log_level, std::string_view) { ++calls; });
  log.set_level(infra::log_level::warn);
  log.debug("no");
  log.info("no");
  log.warn("yes");
  log.fatal("yes");
  CHECK(calls == 2);
}

TEST_CASE("a throwing sink never fails the caller", "[core]") {
  auto log = infra::make_logger([](infra::log_level, std::string_view) { throw 42; });
  CHECK_NOTHROW(log.error("x"));
}

TEST_CASE("log levels have lower-case names", "[core]") {
  CHECK(infra::to_string(infra::log_level::trace) == "trace");
  CHECK(infra::to_string(infra::log_level::warn) == "warn");
  CHECK(infra::to_string(infra::log_level::fatal) == "fatal");
  CHECK(&infra::detail::resolve(nullptr) == &infra::console_logger());
  CHECK(&infra::detail::resolve(&infra::silent_logger()) == &infra::silent_logger());
}

TEST_CASE("make_logger and console_logger start at one default threshold: info", "[core]") {
  std::vector<infra::log_level> seen;
  auto log = infra::make_logger([&](infra::log_level level, std::string_view) { seen.push_back(level); });
  CHECK(infra::default_log_level == infra::log_level::info);
  CHECK(log.level() == infra::default_log_level);
  CHECK(infra::console_logger().level() == infra::default_log_level);
  log.trace("dropped");
  log.debug("dropped");
  log.info("kept");
  log.warn("kept");
  CHECK(seen == std::vector<infra::log_level>{infra::log_level::info, infra::log_level::warn});
  log.set_level(infra::log_level::debug);
  log.debug("kept now");
  CHECK(seen.size() == 3);
}

TEST_CASE("set_default_logger is what every null logger field means, until reset", "[core]") {
  std::vector<std::string> seen;
  auto mine = infra::make_logger([&](infra::log_level, std::string_view m) { seen.emplace_back(m); });
  CHECK(&infra::default_logger() == &infra::console_logger());
  infra::logger* previous = infra::set_default_logger(&mine);
  CHECK(previous == nullptr);
  CHECK(&infra::default_logger() == &mine);
  CHECK(&infra::detail::resolve(nullptr) == &mine);
  CHECK(&infra::detail::resolve(&infra::silent_logger()) == &infra::silent_logger());  // an explicit one wins
  infra::detail::resolve(nullptr).warn("to mine");
  CHECK(seen == std::vector<std::string>{"to mine"});
  CHECK(infra::set_default_logger(nullptr) == &mine);
  CHECK(&infra::detail::resolve(nullptr) == &infra::console_logger());
}
