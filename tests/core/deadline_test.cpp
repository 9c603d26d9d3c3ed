// The ambient deadline (deadline.hpp): scopes, nesting, no_deadline, with_deadline, and the
// statement deadline computed from it.

#include "support/catch.hpp"

#include <kysera/infra/deadline.hpp>

#include <chrono>
#include <optional>
#include <thread>

namespace infra = kysera::infra;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

TEST_CASE("deadline: none is set unless a scope sets one", "[deadline]") {
  CHECK_FALSE(infra::current_deadline().has_value());
  const auto at = clock_type::now() + 5s;
  {
    infra::deadline_scope scope(at);
    REQUIRE(infra::current_deadline().has_value());
    CHECK(*infra::current_deadline() == at);
  }
  CHECK_FALSE(infra::current_deadline().has_value());
}

TEST_CASE("deadline: a nested scope keeps the earlier deadline and restores the outer one", "[deadline]") {
  const auto near = clock_type::now() + 1s;
  const auto far = near + 10s;
  infra::deadline_scope outer(near);
  {
    infra::deadline_scope inner(far);  // cannot extend
    CHECK(*infra::current_deadline() == near);
  }
  {
    const auto nearer = near - 500ms;
    infra::deadline_scope inner(nearer);  // may shorten
    CHECK(*infra::current_deadline() == nearer);
  }
  CHECK(*infra::current_deadline() == near);
  {
    infra::deadline_scope lifted(infra::no_deadline);
    CHECK_FALSE(infra::current_deadline().has_value());
  }
  CHECK(*infra::current_deadline() == near);
}

TEST_CASE("deadline: a duration counts from now and saturates", "[deadline]") {
  const auto before = clock_type::now();
  {
    infra::deadline_scope scope(300ms);
    REQUIRE(infra::current_deadline().has_value());
    CHECK(*infra::current_deadline() >= before + 300ms);
    CHECK(*infra::current_deadline() <= clock_type::now() + 300ms);
  }
  {
    infra::deadline_scope scope(std::chrono::hours::max());
    CHECK_FALSE(infra::current_deadline().has_value());  // too far to be one
  }
}

TEST_CASE("deadline: with_deadline sets it for one call and returns its result", "[deadline]") {
  const auto at = clock_type::now() + 2s;
  int r = infra::with_deadline(at, [&] {
    CHECK(*infra::current_deadline() == at);
    return 7;
  });
  CHECK(r == 7);
  CHECK_FALSE(infra::current_deadline().has_value());
  CHECK_THROWS_AS(infra::with_deadline(1s, []() -> int { throw std::runtime_error("x"); }), std::runtime_error);
  CHECK_FALSE(infra::current_deadline().has_value());  // restored on the way out of a throw
  infra::with_deadline(infra::no_deadline, [] { CHECK_FALSE(infra::current_deadline().has_value()); });
}

TEST_CASE("deadline: it is per thread", "[deadline]") {
  infra::deadline_scope scope(1s);
  std::optional<clock_type::time_point> seen = clock_type::now();
  std::thread([&] { seen = infra::current_deadline(); }).join();
  CHECK_FALSE(seen.has_value());
}

TEST_CASE("deadline: a statement runs under the earlier of the ambient and its own deadline", "[deadline]") {
  using infra::detail::statement_deadline_from;
  CHECK(statement_deadline_from(clock_type::duration::zero()) == clock_type::time_point::max());
  const auto before = clock_type::now();
  const auto own = statement_deadline_from(std::chrono::milliseconds(300));
  CHECK(own >= before + 300ms);
  CHECK(own <= clock_type::now() + 300ms);
  const auto at = clock_type::now() + 100ms;
  infra::deadline_scope scope(at);
  CHECK(statement_deadline_from(clock_type::duration::zero()) == at);
  CHECK(statement_deadline_from(std::chrono::milliseconds(300)) == at);
  CHECK(statement_deadline_from(std::chrono::milliseconds(10)) < at);
}
