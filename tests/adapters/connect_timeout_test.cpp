// connect_timeout bounds a connect to a server that accepts the TCP connection and never says a
// word, for every form of connection string. No database server is needed: the test listens on a
// loopback port and never accepts, so the kernel completes the handshake and the client waits for
// a greeting that never comes. A connect that is not bounded is ended by the test itself (it
// accepts and closes the pending connections), so a regression fails instead of hanging.
#include "support/catch.hpp"

#include <kysera/infra/error.hpp>

#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include <kysera/infra/adapters/postgres.hpp>
#endif
#if defined(KYSERA_INFRA_HAS_MYSQL)
#include <kysera/infra/adapters/mysql.hpp>
#endif

#if defined(KYSERA_INFRA_HAS_POSTGRES) || defined(KYSERA_INFRA_HAS_MYSQL)
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <future>
#include <stdexcept>
#include <string>
#include <vector>

namespace infra = kysera::infra;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

namespace {

/// A loopback listener that never accepts; `release()` accepts and closes whatever is pending.
class silent_listener {
 public:
  silent_listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);  // release() never blocks
    if (fd_ < 0) throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 128) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd_);
      throw std::runtime_error("bind/listen failed");
    }
    port_ = ntohs(addr.sin_port);
  }
  ~silent_listener() {
    release();
    ::close(fd_);
  }
  silent_listener(const silent_listener&) = delete;
  silent_listener& operator=(const silent_listener&) = delete;

  unsigned port() const noexcept { return port_; }

  /// Ends every connection waiting in the backlog (their clients read EOF).
  void release() {
    for (int c; (c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) ::close(c);
  }

 private:
  int fd_ = -1;
  unsigned port_ = 0;
};

struct outcome {
  std::string label;
  steady::duration took{};
  bool threw_database_error = false;
  infra::errc code = infra::errc::backend_error;
  std::string message;
};

/// Runs every connect at once (each on its own thread) and returns how each ended. A connect
/// still running at `give_up` is ended by releasing the listener and reported as not bounded.
std::vector<outcome> connect_all(silent_listener& listener,
                                 std::vector<std::pair<std::string, std::function<void()>>> tries,
                                 steady::duration give_up) {
  std::vector<std::future<outcome>> running;
  for (auto& [label, fn] : tries) {
    running.push_back(std::async(std::launch::async, [label = label, fn = std::move(fn)] {
      outcome o;
      o.label = label;
      auto start = steady::now();
      try {
        fn();
        o.message = "connected";
      } catch (const infra::database_error& e) {
        o.threw_database_error = true;
        o.code = e.condition();
        o.message = e.what();
      } catch (const std::exception& e) {
        o.message = e.what();
      }
      o.took = steady::now() - start;
      return o;
    }));
  }
  const auto deadline = steady::now() + give_up;
  bool released = false;
  std::vector<outcome> results;
  for (auto& f : running) {
    if (f.wait_until(deadline) != std::future_status::ready && !released) {
      listener.release();
      released = true;
    }
    while (f.wait_for(50ms) != std::future_status::ready) listener.release();
    results.push_back(f.get());
  }
  return results;
}

void check_bounded(const std::vector<outcome>& results, steady::duration at_least,
                   steady::duration at_most) {
  for (const auto& o : results) {
    CAPTURE(o.label, o.message,
            std::chrono::duration_cast<std::chrono::milliseconds>(o.took).count());
    CHECK(o.threw_database_error);
    CHECK(o.code == infra::errc::timeout);
    CHECK(o.took >= at_least);
    CHECK(o.took <= at_most);
  }
}

}  // namespace

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres connect_timeout bounds a connect to a silent server for every string form",
          "[postgres][regression]") {
  silent_listener listener;
  const std::string p = std::to_string(listener.port());
  const std::vector<std::string> forms{
      "host=127.0.0.1 port=" + p + " dbname=app",
      "host=127.0.0.1 port=" + p + " dbname=app password=",       // empty last value
      "host=127.0.0.1 port=" + p + " dbname=app password=abcd\\",  // trailing backslash
      "dbname=app password='x y' host=127.0.0.1 port=" + p + "\t",
      "postgres://app:pw@127.0.0.1:" + p + "/app",
      "postgres://app:12?a=pw@127.0.0.1:" + p + "/app",  // '?' inside the password
      "postgresql://app@127.0.0.1:" + p + "/app?",
      "postgres://app@127.0.0.1:" + p + "?password=ottb?",
      "postgres://app@127.0.0.1:" + p + "/app?sslmode=disable",
  };
  infra::postgres::connection_options o;
  o.connect_timeout = 1s;  // libpq waits at least 2 s (it raises 1 to 2)
  std::vector<std::pair<std::string, std::function<void()>>> tries;
  for (const auto& text : forms) {
    tries.emplace_back(text, [text, o] { infra::postgres::connection c(text, o); });
  }
  // The string's own connect_timeout wins over the option.
  o.connect_timeout = 30s;
  const std::string own = "postgres://app@127.0.0.1:" + p + "/app?connect_timeout=2";
  tries.emplace_back(own, [own, o] { infra::postgres::connection c(own, o); });
  check_bounded(connect_all(listener, std::move(tries), 10s), 900ms, 2s + 1500ms);
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql connect_timeout bounds a connect to a silent server for every string form",
          "[mysql][regression]") {
  silent_listener listener;
  const std::string p = std::to_string(listener.port());
  infra::mysql::connection_options o;
  o.connect_timeout = 1s;
  std::vector<std::pair<std::string, std::function<void()>>> tries;
  for (std::string text : {"mysql://app:pw@127.0.0.1:" + p + "/shop",
                           "mariadb://app@127.0.0.1:" + p + "/",
                           "mysql://app:p%3Fw@127.0.0.1:" + p + "/shop?read_timeout=30"}) {
    tries.emplace_back(text, [text, o] { infra::mysql::connection c(text, o); });
  }
  infra::mysql::connection_options slow;
  slow.connect_timeout = 30s;
  const std::string own = "mysql://app@127.0.0.1:" + p + "/shop?connect_timeout=1";
  tries.emplace_back(own, [own, slow] { infra::mysql::connection c(own, slow); });
  check_bounded(connect_all(listener, std::move(tries), 10s), 900ms, 1s + 1500ms);
}
#endif
#endif  // KYSERA_INFRA_HAS_POSTGRES || KYSERA_INFRA_HAS_MYSQL
