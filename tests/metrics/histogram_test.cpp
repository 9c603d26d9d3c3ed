#include <kysera/infra/metrics/histogram.hpp>
#include <kysera/infra/metrics/operation_duration.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

namespace km = kysera::infra::metrics;
using namespace std::chrono_literals;

TEST_CASE("a histogram counts each value in the first bucket whose bound it does not exceed", "[metrics]") {
  km::histogram h;
  h.record(1ms);       // exactly on 0.001: first bucket
  h.record(1001us);    // just above: second
  h.record(0.05);      // exactly on 0.05 as seconds
  h.record(20s);       // above every bound: +Inf
  h.record(-1.0);      // negative: first bucket, adds nothing to the sum
  const auto s = h.snapshot();
  REQUIRE(s.bounds.size() == 9);
  REQUIRE(s.counts.size() == 10);
  CHECK(s.counts == std::vector<std::uint64_t>{2, 1, 0, 1, 0, 0, 0, 0, 0, 1});
  CHECK(s.count == 5);
  CHECK(s.cumulative(3) == 4);
  CHECK(s.cumulative(9) == 5);
  CHECK(s.sum == Approx(0.001 + 0.001001 + 0.05 + 20.0));
}

TEST_CASE("a histogram's bounds are checked", "[metrics]") {
  CHECK_THROWS_AS(km::histogram({1.0, 1.0}), std::invalid_argument);
  CHECK_THROWS_AS(km::histogram({2.0, 1.0}), std::invalid_argument);
  CHECK_THROWS_AS(km::histogram({1.0, std::numeric_limits<double>::infinity()}), std::invalid_argument);
  std::vector<double> many(16);
  for (std::size_t i = 0; i < many.size(); ++i) many[i] = static_cast<double>(i);
  CHECK_THROWS_AS(km::histogram(std::span<const double>(many)), std::invalid_argument);
  km::histogram custom{0.5};
  custom.record(0.6);
  CHECK(custom.snapshot().counts == std::vector<std::uint64_t>{0, 1});
}

TEST_CASE("concurrent records all count", "[metrics]") {
  km::histogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < 10000; ++i) h.record(2ms);
    });
  }
  for (auto& t : threads) t.join();
  const auto s = h.snapshot();
  CHECK(s.count == 40000);
  CHECK(s.counts[1] == 40000);
  CHECK(s.sum == Approx(80.0));
}

TEST_CASE("the operation name is the statement's first keyword from a bounded set", "[metrics]") {
  using km::detail::operation_index;
  using km::detail::operation_names;
  CHECK(operation_names[operation_index("select 1")] == "SELECT");
  CHECK(operation_names[operation_index("  -- note\n /* x */ Insert into t")] == "INSERT");
  CHECK(operation_names[operation_index("(SELECT 1) UNION (SELECT 2)")] == "SELECT");
  CHECK(operation_names[operation_index("WITH x AS (SELECT 1) SELECT * FROM x")] == "WITH");
  CHECK(operation_index("frobnicate") == km::detail::no_operation);
  CHECK(operation_index("SELECTED") == km::detail::no_operation);
  CHECK(operation_index("/* unterminated") == km::detail::no_operation);
  CHECK(operation_index("") == km::detail::no_operation);
}
