// What the resilience wrappers add on the success path: a closed circuit breaker's execute(),
// with_retry() and a retry wrapper, each against a direct call of the same function, on one
// thread and on two threads sharing one breaker.
//
//   ./resilience_bench --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//
// Compare the per-iteration time of each wrapper with BM_direct at the same thread count.
#include <benchmark/benchmark.h>

#include <kysera/infra/resilience.hpp>

namespace res = kysera::infra::resilience;

namespace {

// The protected work: kept out of line so that every variant pays for one real call.
[[gnu::noinline]] int work(int x) {
  benchmark::DoNotOptimize(x);
  return x + 1;
}

res::circuit_breaker& shared_breaker() {
  static res::circuit_breaker breaker;  // shared by all threads of a run
  return breaker;
}

void BM_direct(benchmark::State& state) {
  int x = 0;
  for (auto _ : state) {
    x = work(x);
    benchmark::DoNotOptimize(x);
  }
}

void BM_breaker_execute(benchmark::State& state) {
  auto& breaker = shared_breaker();
  int x = 0;
  for (auto _ : state) {
    x = breaker.execute([x] { return work(x); });
    benchmark::DoNotOptimize(x);
  }
  if (state.thread_index() == 0 && !breaker.is_closed()) state.SkipWithError("breaker not closed");
}

void BM_with_retry(benchmark::State& state) {
  const res::retry_options options;  // built once, as a service would keep it
  int x = 0;
  for (auto _ : state) {
    x = res::with_retry([x] { return work(x); }, options);
    benchmark::DoNotOptimize(x);
  }
}

void BM_with_retry_default_options(benchmark::State& state) {
  int x = 0;
  for (auto _ : state) {
    x = res::with_retry([x] { return work(x); });  // a fresh retry_options{} per call
    benchmark::DoNotOptimize(x);
  }
}

void BM_retry_wrapper(benchmark::State& state) {
  auto wrapped = res::create_retry_wrapper(&work);
  int x = 0;
  for (auto _ : state) {
    x = wrapped(x);
    benchmark::DoNotOptimize(x);
  }
}

void BM_retry_around_breaker(benchmark::State& state) {
  auto& breaker = shared_breaker();
  const res::retry_options options;
  int x = 0;
  for (auto _ : state) {
    x = res::with_retry([&] { return breaker.execute([x] { return work(x); }); }, options);
    benchmark::DoNotOptimize(x);
  }
}

}  // namespace

BENCHMARK(BM_direct)->Threads(1)->Threads(2);
BENCHMARK(BM_breaker_execute)->Threads(1)->Threads(2);
BENCHMARK(BM_with_retry)->Threads(1)->Threads(2);
BENCHMARK(BM_with_retry_default_options)->Threads(1)->Threads(2);
BENCHMARK(BM_retry_wrapper)->Threads(1)->Threads(2);
BENCHMARK(BM_retry_around_breaker)->Threads(1)->Threads(2);

BENCHMARK_MAIN();
