#pragma once
// Polling with a deadline: the one way tests wait for something another thread does when there
// is no latch or callback to wait on.
#include <chrono>
#include <thread>

namespace kysera::test {

/// Calls `done()` until it returns true or `limit` has passed, pausing `poll` between calls;
/// returns the last result (so a condition that becomes true exactly at the deadline counts).
/// `done` runs on the calling thread; `poll` only spaces the calls, it synchronises nothing.
///
///     REQUIRE(kysera::test::eventually([&] { return pool.get_metrics().waiting == 1; }));
template <class Done>
bool eventually(Done&& done, std::chrono::milliseconds limit = std::chrono::seconds(20),
                std::chrono::milliseconds poll = std::chrono::milliseconds(1)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace kysera::test
