#pragma once
// Two ways of doing the same thing, timed call by call in alternation on one thread, so that the
// load of a shared machine hits both alike (health_bench, deadline_bench). Separate benchmark runs
// of a loopback round trip differ by more than the costs these benchmarks look for.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <exception>
#include <string>
#include <vector>

namespace kysera::bench {

/// The q-quantile (0 <= q < 1) of `v`, which it reorders.
inline double quantile(std::vector<double>& v, double q) {
  const auto k = static_cast<std::ptrdiff_t>(static_cast<double>(v.size()) * q);
  std::nth_element(v.begin(), v.begin() + k, v.end());
  return v[static_cast<std::size_t>(k)];
}

/// Runs `base()` and `other()` once per iteration, in turns first (a call right after another can
/// find the machine warmer than one after a pause, so neither may always go second), and reports, as counters, the median and the
/// 10th percentile (the intrinsic cost, least disturbed by other load) of each in microseconds,
/// named `<base_name>_us`, `<base_name>_p10_us` and so on, and `other`'s overhead over `base` in
/// percent (`overhead_%`, `overhead_p10_%`) and in nanoseconds (`added_ns`, `added_p10_ns`). With
/// several threads each thread interleaves on its own and the counters are their averages. An
/// exception from either ends the case with its message as the benchmark's error.
template <class Base, class Other>
void interleave(benchmark::State& state, const std::string& base_name, Base&& base,
                const std::string& other_name, Other&& other) {
  std::vector<double> base_ns;
  std::vector<double> other_ns;
  try {
    auto timed = [](auto& f, std::vector<double>& out) {
      const auto t0 = std::chrono::steady_clock::now();
      f();
      out.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count());
    };
    bool base_first = true;
    for (auto _ : state) {
      if (base_first) {
        timed(base, base_ns);
        timed(other, other_ns);
      } else {
        timed(other, other_ns);
        timed(base, base_ns);
      }
      base_first = !base_first;
    }
  } catch (const std::exception& e) {
    state.SkipWithError(e.what());
    return;
  }
  if (base_ns.empty()) return;
  for (const auto& [suffix, q] : {std::pair<std::string, double>{"", 0.5}, {"_p10", 0.1}}) {
    const double b = quantile(base_ns, q);
    const double o = quantile(other_ns, q);
    // Averaged over the threads of a multi-threaded case (each thread interleaves on its own).
    auto avg = [](double v) { return benchmark::Counter(v, benchmark::Counter::kAvgThreads); };
    state.counters[base_name + suffix + "_us"] = avg(b / 1000.0);
    state.counters[other_name + suffix + "_us"] = avg(o / 1000.0);
    state.counters["overhead" + suffix + "_%"] = avg(100.0 * (o - b) / b);
    state.counters["added" + suffix + "_ns"] = avg(o - b);
  }
}

}  // namespace kysera::bench
