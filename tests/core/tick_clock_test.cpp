// The query recorder's time source (detail/tick_clock.hpp): stamps converted to steady_clock time
// and durations agree with steady_clock read around them, whichever source the machine offers
// (TSC ticks where the kernel's clock is the TSC, steady_clock nanoseconds elsewhere).

#include "support/catch.hpp"

#include <kysera/infra/detail/tick_clock.hpp>
#include <kysera/infra/health.hpp>

#include <chrono>
#include <string_view>

namespace infra = kysera::infra;
using tick_clock = infra::detail::tick_clock;
using steady = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

/// Lets at least `d` of steady_clock time pass on this thread.
void spin_for(steady::duration d) {
  const auto until = steady::now() + d;
  while (steady::now() < until) {
  }
}

double ms(steady::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

/// The conversion's allowance over an interval bracketed by steady reads: the rate's error (a
/// bound far above the documented 50 ns / elapsed) plus a microsecond of rounding.
constexpr double slack_ms = 0.001;
constexpr double rate_error = 1e-3;

}  // namespace

TEST_CASE("tick_clock: a stamp converts to a steady time between the reads around it", "[tick_clock]") {
  (void)tick_clock::uses_tsc();  // sets the process's anchor (if no test did)
  spin_for(1ms);
  const auto before = steady::now();
  const auto s = tick_clock::now();
  const auto after = steady::now();
  const tick_clock::converter c;
  const auto t = c.time(s);
  INFO("uses TSC: " << tick_clock::uses_tsc());
  CHECK(ms(t - before) >= -slack_ms);
  CHECK(ms(after - t) >= -slack_ms);
  // And back: the stamp at that time is the stamp (within a tick's rounding either way).
  const auto back = c.at(t);
  CHECK((back >= s ? back - s : s - back) <= (tick_clock::uses_tsc() ? 64u : 0u));
}

TEST_CASE("tick_clock: a duration in ticks agrees with steady_clock around and inside it", "[tick_clock]") {
  const auto outer_start = steady::now();
  const auto s0 = tick_clock::now();
  const auto inner_start = steady::now();
  spin_for(3ms);
  const auto inner_end = steady::now();
  const auto s1 = tick_clock::now();
  const auto outer_end = steady::now();
  const tick_clock::converter c;
  const double got = c.ms(static_cast<double>(s1 - s0));
  INFO("uses TSC: " << tick_clock::uses_tsc() << ", measured " << got << " ms");
  CHECK(got >= ms(inner_end - inner_start) * (1 - rate_error) - slack_ms);
  CHECK(got <= ms(outer_end - outer_start) * (1 + rate_error) + slack_ms);
}

TEST_CASE("tick_clock: times before every stamp and far after map to the ends", "[tick_clock]") {
  const tick_clock::converter c;
  const auto s = tick_clock::now();
  CHECK(c.at(steady::time_point::min()) <= s);
  CHECK(c.at(steady::time_point{}) <= s);
  CHECK(c.at(steady::time_point::max()) > s);
  CHECK(c.at(steady::now() + 1h) > s);
}

TEST_CASE("with_debug on steady_clock: a query's duration and end time agree with steady_clock",
          "[tick_clock][metrics]") {
  struct slow_database {
    void execute(std::string_view) { spin_for(2ms); }
    void close() {}
  } db;
  auto debug = infra::health::with_debug(db);
  const auto outer_start = steady::now();
  debug.execute("SELECT 1");
  const auto outer_end = steady::now();
  const auto entries = debug.query_metrics();
  REQUIRE(entries.size() == 1);
  const auto& m = entries.front();
  CHECK(m.duration >= 2.0 * (1 - rate_error) - slack_ms);
  CHECK(m.duration <= ms(outer_end - outer_start) * (1 + rate_error) + slack_ms);
  CHECK(ms(m.timestamp - outer_start) >= 2.0 * (1 - rate_error) - slack_ms);
  CHECK(ms(outer_end - m.timestamp) >= -slack_ms);
  // The window of get_metrics: the entry ended after outer_start, not after outer_end.
  CHECK(debug.query_samples(outer_start).size() == 1);
  CHECK(debug.query_samples(outer_end + 1ms).empty());
}
