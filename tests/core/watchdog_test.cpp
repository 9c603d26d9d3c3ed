// detail::watchdog (deadline actions on one timer thread) and the socket helpers that bounded
// pings use with it: firing, disarming in time, disarm waiting for an action that runs, order,
// concurrency, and a real blocked recv() that a socket shutdown ends.

#include "support/catch.hpp"

#include <kysera/infra/detail/socket.hpp>
#include <kysera/infra/detail/watchdog.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <latch>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace detail = kysera::infra::detail;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

namespace {

/// Records when its action ran and wakes whoever waits for it.
struct probe {
  std::mutex mutex;
  std::condition_variable cv;
  bool fired = false;
  clock_type::time_point when{};

  static void action(void* self) noexcept {
    auto* p = static_cast<probe*>(self);
    {
      std::lock_guard lock(p->mutex);
      p->fired = true;
      p->when = clock_type::now();
    }
    p->cv.notify_all();
  }
  /// Waits until it fired, at most `limit`; returns whether it did.
  bool wait_fired(std::chrono::milliseconds limit = 10s) {
    std::unique_lock lock(mutex);
    return cv.wait_for(lock, limit, [&] { return fired; });
  }
  bool has_fired() {
    std::lock_guard lock(mutex);
    return fired;
  }
};

/// A connected loopback TCP pair; closes everything at scope exit.
struct tcp_pair {
  int listener = -1;
  int client = -1;
  int server = -1;
  std::uint16_t listen_port = 0;
  std::uint16_t client_port = 0;

  tcp_pair() {
    listener = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(listener >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(listener, 1) == 0);
    socklen_t size = sizeof a;
    REQUIRE(::getsockname(listener, reinterpret_cast<sockaddr*>(&a), &size) == 0);
    listen_port = ntohs(a.sin_port);
    client = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(client >= 0);
    REQUIRE(::connect(client, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    server = ::accept(listener, nullptr, nullptr);
    REQUIRE(server >= 0);
    sockaddr_in local{};
    size = sizeof local;
    REQUIRE(::getsockname(client, reinterpret_cast<sockaddr*>(&local), &size) == 0);
    client_port = ntohs(local.sin_port);
  }
  ~tcp_pair() {
    for (int fd : {server, client, listener}) {
      if (fd >= 0) ::close(fd);
    }
  }
  tcp_pair(const tcp_pair&) = delete;
  tcp_pair& operator=(const tcp_pair&) = delete;
};

}  // namespace

TEST_CASE("watchdog runs the action once the deadline has passed", "[core][watchdog]") {
  probe p;
  const auto deadline = clock_type::now() + 30ms;
  detail::watchdog_scope guard(deadline, &probe::action, &p);
  REQUIRE(guard.bounded());
  REQUIRE(p.wait_fired());
  CHECK(p.when >= deadline);
  CHECK(guard.disarm());
  CHECK(guard.disarm());  // idempotent: the same answer again
}

TEST_CASE("watchdog never runs an action disarmed in time", "[core][watchdog]") {
  probe early;
  probe later;
  auto& dog = detail::watchdog::instance();
  const auto now = clock_type::now();
  const std::uint64_t id = dog.arm(now + 300ms, &probe::action, &early);
  CHECK_FALSE(dog.disarm(id));
  // Actions fire in deadline order: once the later one has fired, the earlier would have.
  detail::watchdog_scope guard(now + 350ms, &probe::action, &later);
  REQUIRE(later.wait_fired());
  CHECK_FALSE(early.has_fired());
}

TEST_CASE("watchdog fires several deadlines in their order", "[core][watchdog]") {
  probe a, b, c;
  const auto now = clock_type::now();
  // Armed out of order; the latest first, so the timer thread must be woken for earlier ones.
  detail::watchdog_scope gc(now + 90ms, &probe::action, &c);
  detail::watchdog_scope ga(now + 30ms, &probe::action, &a);
  detail::watchdog_scope gb(now + 60ms, &probe::action, &b);
  REQUIRE(c.wait_fired());
  REQUIRE(a.has_fired());
  REQUIRE(b.has_fired());
  CHECK(a.when <= b.when);
  CHECK(b.when <= c.when);
  CHECK(a.when >= now + 30ms);
  CHECK(c.when >= now + 90ms);
}

TEST_CASE("watchdog wakes for a deadline earlier than the one it sleeps until", "[core][watchdog]") {
  probe far, near;
  // Let the timer thread go to sleep until the far deadline, then arm an earlier one: it must
  // fire near its own deadline, not when the timer thread would have woken anyway.
  detail::watchdog_scope gf(clock_type::now() + 20s, &probe::action, &far);
  REQUIRE(gf.bounded());
  const auto deadline = clock_type::now() + 50ms;
  detail::watchdog_scope gn(deadline, &probe::action, &near);
  REQUIRE(near.wait_fired(15s));
  CHECK(near.when >= deadline);
  CHECK(near.when < deadline + 5s);  // generous for a loaded machine, far below 20 s
  CHECK_FALSE(far.has_fired());
  CHECK_FALSE(gf.disarm());
}

TEST_CASE("watchdog wakes for a deadline armed after an earlier one was armed and disarmed", "[core][watchdog]") {
  // The idle timer thread is notified for the first deadline, which is disarmed before it wakes;
  // a later deadline armed next must still wake it (it once slept on until its idle exit, 60 s).
  auto& dog = detail::watchdog::instance();
  for (int round = 0; round < 20; ++round) {
    probe p;
    const auto now = clock_type::now();
    CHECK_FALSE(dog.disarm(dog.arm(now + 20ms, &probe::action, &p)));
    const auto deadline = now + 40ms;
    detail::watchdog_scope guard(deadline, &probe::action, &p);
    REQUIRE(p.wait_fired(15s));
    CHECK(p.when < deadline + 5s);  // far below the 60 s idle exit
  }
}

TEST_CASE("watchdog disarm of an action that is running waits until it returns", "[core][watchdog]") {
  struct blocking {
    std::latch started{1};
    std::latch release{1};
    std::atomic<bool> finished{false};
    static void action(void* self) noexcept {
      auto* b = static_cast<blocking*>(self);
      b->started.count_down();
      b->release.wait();
      b->finished.store(true);
    }
  } b;
  auto& dog = detail::watchdog::instance();
  const std::uint64_t id = dog.arm(clock_type::now(), &blocking::action, &b);
  b.started.wait();
  std::atomic<bool> finished_when_disarm_returned{false};
  std::atomic<bool> disarm_said_fired{false};
  std::thread t([&] {
    disarm_said_fired.store(dog.disarm(id));
    finished_when_disarm_returned.store(b.finished.load());
  });
  b.release.count_down();
  t.join();
  CHECK(disarm_said_fired.load());
  CHECK(finished_when_disarm_returned.load());
}

TEST_CASE("watchdog_scope with the largest deadline arms nothing", "[core][watchdog]") {
  probe p;
  const std::size_t before = detail::watchdog::instance().armed();
  {
    detail::watchdog_scope guard(clock_type::time_point::max(), &probe::action, &p);
    CHECK(detail::watchdog::instance().armed() == before);
    CHECK(guard.bounded());  // nothing to bound
    CHECK_FALSE(guard.disarm());
  }
  CHECK_FALSE(p.has_fired());
}

TEST_CASE("watchdog is safe to arm and disarm from many threads", "[core][watchdog]") {
  constexpr int threads = 4;
  constexpr int rounds = 2000;
  std::atomic<int> fired{0};
  struct counter {
    static void action(void* self) noexcept { static_cast<std::atomic<int>*>(self)->fetch_add(1); }
  };
  std::atomic<int> reported{0};
  std::latch go(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      go.arrive_and_wait();
      for (int i = 0; i < rounds; ++i) {
        // Every fourth deadline is already due, so some fire while others are disarmed.
        const auto deadline = (i % 4 == t % 4) ? clock_type::now() : clock_type::now() + 1h;
        detail::watchdog_scope guard(deadline, &counter::action, &fired);
        if (guard.disarm()) reported.fetch_add(1);
      }
    });
  }
  for (auto& th : pool) th.join();
  // What disarm reports as fired is exactly what ran: nothing runs after disarm returned.
  CHECK(fired.load() == reported.load());
  CHECK(detail::watchdog::instance().armed() == 0);
}

TEST_CASE("trailing_port reads the port a server reports for a client", "[core][watchdog]") {
  CHECK(detail::trailing_port("127.0.0.1:53012") == std::uint16_t{53012});
  CHECK(detail::trailing_port("localhost:1") == std::uint16_t{1});
  CHECK(detail::trailing_port("::1:65535") == std::uint16_t{65535});
  CHECK_FALSE(detail::trailing_port("localhost").has_value());  // a Unix socket client
  CHECK_FALSE(detail::trailing_port("host:").has_value());
  CHECK_FALSE(detail::trailing_port("host:65536").has_value());
  CHECK_FALSE(detail::trailing_port("host:0").has_value());
  CHECK_FALSE(detail::trailing_port("host:12a").has_value());
  CHECK_FALSE(detail::trailing_port("").has_value());
}

TEST_CASE("find_tcp_socket finds this process's socket by its two ports", "[core][watchdog]") {
  if constexpr (!detail::can_find_tcp_sockets) {
    WARN("only Linux lists a process's sockets");
    return;
  }
  tcp_pair pair;
  CHECK(detail::find_tcp_socket(pair.client_port, pair.listen_port) == pair.client);
  // The accepted end has the ports the other way round.
  CHECK(detail::find_tcp_socket(pair.listen_port, pair.client_port) == pair.server);
  const std::uint16_t other = pair.client_port == 65535 ? 65534 : static_cast<std::uint16_t>(pair.client_port + 1);
  CHECK(detail::find_tcp_socket(other, pair.listen_port) == -1);
  CHECK(detail::find_tcp_socket(pair.client_port, 1) == -1);
}

TEST_CASE("a watchdog that shuts a socket down ends a recv blocked on it", "[core][watchdog]") {
  if constexpr (!detail::can_shut_sockets_down) {
    WARN("no socket shutdown on this platform");
    return;
  }
  tcp_pair pair;  // the server end never sends: recv on the client blocks until the shutdown
  auto socket = detail::socket_handle::duplicate(pair.client);
  REQUIRE(socket.valid());
  CHECK(socket.get() != pair.client);  // a descriptor of its own
  const auto deadline = clock_type::now() + 50ms;
  detail::watchdog_scope guard(deadline, &detail::shut_socket_down, &socket);
  char byte = 0;
  const auto n = ::recv(pair.client, &byte, 1, 0);
  const auto returned = clock_type::now();
  CHECK(n == 0);  // end of stream: the connection is over
  CHECK(returned >= deadline);
  CHECK(guard.disarm());
}

TEST_CASE("a socket handle keeps its socket when the driver closes its descriptor and the number is reused",
          "[core][watchdog]") {
  if constexpr (!detail::can_shut_sockets_down) {
    WARN("no socket shutdown on this platform");
    return;
  }
  tcp_pair first;
  auto socket = detail::socket_handle::duplicate(first.client);
  REQUIRE(socket.valid());
  // The driver closes its descriptor (a failed session) and the number goes to another connection.
  const int number = first.client;
  ::close(first.client);
  first.client = -1;
  tcp_pair second;
  REQUIRE(::dup2(second.client, number) == number);
  first.client = number;  // closed with `first`
  detail::shut_socket_down(&socket);
  // The session's socket ended: its peer reads end of stream...
  char in = 0;
  CHECK(::recv(first.server, &in, 1, 0) == 0);
  // ...and the connection that took the number still works through it.
  const char out = 'x';
  REQUIRE(::send(number, &out, 1, 0) == 1);
  REQUIRE(::recv(second.server, &in, 1, 0) == 1);
  CHECK(in == 'x');
}

TEST_CASE("a socket handle is empty for what is not a socket, and moves", "[core][watchdog]") {
  CHECK_FALSE(detail::socket_handle::duplicate(-1).valid());
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  CHECK_FALSE(detail::socket_handle::duplicate(pipe_fds[0]).valid());
  ::close(pipe_fds[0]);
  ::close(pipe_fds[1]);
  tcp_pair pair;
  auto a = detail::socket_handle::duplicate(pair.client);
  REQUIRE(a.valid());
  const int fd = a.get();
  detail::socket_handle b = std::move(a);
  CHECK_FALSE(a.valid());
  CHECK(b.get() == fd);
  b.reset();
  CHECK_FALSE(b.valid());
  CHECK(::fcntl(fd, F_GETFD) == -1);  // closed
}
