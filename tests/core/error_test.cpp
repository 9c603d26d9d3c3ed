#include "support/catch.hpp"

#include <kysera/infra/error.hpp>

#include <string>
#include <system_error>

namespace infra = kysera::infra;

TEST_CASE("errc is an error code enum in its own category", "[core]") {
  static_assert(std::is_error_code_enum_v<infra::errc>);
  std::error_code ec = infra::errc::timeout;
  CHECK(ec.category().name() == std::string("kysera.infra"));
  CHECK(ec == infra::errc::timeout);
  CHECK(ec != infra::errc::deadlock);
  CHECK(ec.message() == "timed out");
}

TEST_CASE("errc maps onto portable std::errc conditions where one fits", "[core]") {
  CHECK(std::error_code(infra::errc::timeout) == std::errc::timed_out);
  CHECK(std::error_code(infra::errc::connection_refused) == std::errc::connection_refused);
  CHECK(std::error_code(infra::errc::deadlock) != std::errc::timed_out);
}

TEST_CASE("database_error carries backend, sqlstate and native code", "[core]") {
  infra::database_error e(infra::errc::deadlock, "deadlock detected", "postgres", "40P01", 0);
  const std::system_error& base = e;
  CHECK(base.code() == infra::errc::deadlock);
  CHECK(e.condition() == infra::errc::deadlock);
  CHECK(e.backend() == "postgres");
  CHECK(e.sqlstate() == "40P01");
  CHECK(e.native_code() == 0);
  CHECK(std::string(e.what()).find("deadlock detected") != std::string::npos);
}

TEST_CASE("every errc value has a name and a message", "[core]") {
  for (int v = static_cast<int>(infra::errc::connection_refused);
       v <= static_cast<int>(infra::errc::database_not_found); ++v) {
    auto e = static_cast<infra::errc>(v);
    CHECK(infra::to_string(e) != "unknown");
    CHECK(std::error_code(e).message() != "unknown kysera.infra error");
  }
}

TEST_CASE("connection errors are the ones that make a session unusable", "[core]") {
  CHECK(infra::is_connection_error(infra::errc::connection_lost));
  CHECK(infra::is_connection_error(infra::errc::outcome_unknown));
  CHECK_FALSE(infra::is_connection_error(infra::errc::deadlock));
  CHECK_FALSE(infra::is_connection_error(infra::errc::query_failed));
}

TEST_CASE("database_error::what() is the message alone, without the code's text appended",
          "[core]") {
  infra::database_error e(infra::errc::invalid_url,
                          "postgres: invalid connection string: port out of range", "postgres");
  CHECK(std::string(e.what()) == "postgres: invalid connection string: port out of range");
  // The code's own text and the portable condition stay one call away.
  CHECK(e.code().message() == "invalid connection string");
  CHECK(e.code().default_error_condition() == std::errc::invalid_argument);
  // Copies share the text.
  infra::database_error copy = e;
  CHECK(std::string(copy.what()) == e.what());
  const std::exception& base = e;
  CHECK(std::string(base.what()) == e.what());
}

TEST_CASE("database_not_found has a name, a message and no portable condition", "[core]") {
  std::error_code ec = infra::errc::database_not_found;
  CHECK(infra::to_string(infra::errc::database_not_found) == "database_not_found");
  CHECK(ec.message() == "database not found");
  CHECK(ec.default_error_condition().category() == infra::error_category());
  CHECK_FALSE(infra::is_connection_error(infra::errc::database_not_found));
}
