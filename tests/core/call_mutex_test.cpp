// detail::call_mutex, the recursive lock of every adapter connection: recursion, exclusion,
// a timed wait that gives up at its deadline, and wake-ups that are never lost.

#include "support/catch.hpp"

#include <kysera/infra/detail/call_mutex.hpp>

#include <atomic>
#include <chrono>
#include <latch>
#include <mutex>
#include <thread>
#include <vector>

using kysera::infra::detail::call_mutex;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

TEST_CASE("call_mutex is recursive for its owner and exclusive for everyone else", "[core][call_mutex]") {
  call_mutex m;
  m.lock();
  REQUIRE(m.try_lock());                            // the owner again
  REQUIRE(m.try_lock_until(clock_type::now()));     // and again, without waiting
  bool other_got_it = true;
  std::thread([&] { other_got_it = m.try_lock(); }).join();
  CHECK_FALSE(other_got_it);
  m.unlock();
  m.unlock();
  std::thread([&] { other_got_it = m.try_lock(); }).join();
  CHECK_FALSE(other_got_it);  // still held once
  m.unlock();
  std::thread([&] {
    other_got_it = m.try_lock();
    if (other_got_it) m.unlock();
  }).join();
  CHECK(other_got_it);
}

TEST_CASE("call_mutex try_lock_until gives up at its deadline while another thread holds it",
          "[core][call_mutex]") {
  call_mutex m;
  std::latch held(1);
  std::latch release(1);
  std::thread holder([&] {
    std::lock_guard lock(m);
    held.count_down();
    release.wait();
  });
  held.wait();
  const auto deadline = clock_type::now() + 100ms;
  const bool got = m.try_lock_until(deadline);
  const auto returned = clock_type::now();
  release.count_down();
  holder.join();
  CHECK_FALSE(got);
  CHECK(returned >= deadline);
  CHECK(returned < deadline + 750ms);
  // Free again: taken at once, even with a deadline that has passed.
  REQUIRE(m.try_lock_until(clock_type::now() - 1s));
  m.unlock();
}

TEST_CASE("call_mutex hands over to a thread waiting with a deadline as soon as it is released",
          "[core][call_mutex]") {
  call_mutex m;
  m.lock();
  std::latch waiting(1);
  std::atomic<bool> got{false};
  std::thread waiter([&] {
    waiting.count_down();
    got.store(m.try_lock_until(clock_type::now() + 30s));
    if (got.load()) m.unlock();
  });
  waiting.wait();
  m.unlock();
  waiter.join();  // well before 30 s: the release woke it
  CHECK(got.load());
}

TEST_CASE("call_mutex serialises many threads, timed and untimed, without losing a wake-up",
          "[core][call_mutex]") {
  call_mutex m;
  constexpr int threads = 4;
  constexpr int rounds = 3000;
  long counter = 0;  // guarded by m; a lost exclusion shows as a wrong total (and under TSan)
  std::atomic<int> timed_out{0};
  std::latch go(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      go.arrive_and_wait();
      for (int i = 0; i < rounds; ++i) {
        if (t % 2 == 0) {
          std::lock_guard lock(m);
          std::lock_guard again(m);  // recursion inside
          ++counter;
        } else if (m.try_lock_until(clock_type::now() + 10s)) {
          ++counter;
          m.unlock();
        } else {
          timed_out.fetch_add(1);
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(timed_out.load() == 0);
  CHECK(counter == static_cast<long>(threads) * rounds);
}
