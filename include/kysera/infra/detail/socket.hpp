#pragma once
/// \file
/// Socket helpers for bounding a driver call on the calling thread: the watchdog action that
/// shuts a session's socket down (the blocked read returns at once, the driver reports a lost
/// connection), and, for drivers that do not tell their socket, finding it by its TCP ports.

#include <cstdint>
#include <optional>
#include <string_view>

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#define KYSERA_INFRA_HAS_SOCKET_SHUTDOWN 1
#endif
#if defined(__linux__)
#include <dirent.h>
#include <netinet/in.h>
#include <cstdlib>
#endif

#include "port.hpp"

namespace kysera::infra::detail {

/// Whether this platform can cut a blocked socket call short from another thread.
inline constexpr bool can_shut_sockets_down =
#if defined(KYSERA_INFRA_HAS_SOCKET_SHUTDOWN)
    true;
#else
    false;
#endif

/// Whether `find_tcp_socket` can find anything here (Linux only).
inline constexpr bool can_find_tcp_sockets =
#if defined(__linux__)
    true;
#else
    false;
#endif

/// Not thread-safe (owned by one session, which serialises its calls): a descriptor of our own
/// for a session's socket, a close-on-exec duplicate of the driver's.
/// The watchdog shuts the socket down through it, whatever the driver does with its own
/// descriptor meanwhile (a driver closes it when a session fails, and the number may then be
/// reused for something else; the duplicate keeps referring to the session's socket until it is
/// closed). Costs one descriptor per session. Move-only; closes its descriptor when destroyed.
class socket_handle {
 public:
  socket_handle() = default;
  ~socket_handle() { reset(); }
  socket_handle(socket_handle&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  socket_handle& operator=(socket_handle&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  socket_handle(const socket_handle&) = delete;
  socket_handle& operator=(const socket_handle&) = delete;

  /// A duplicate of `fd` when it is a socket; empty when it is not or duplicating fails.
  static socket_handle duplicate(int fd) noexcept {
    socket_handle h;
#if defined(KYSERA_INFRA_HAS_SOCKET_SHUTDOWN)
    struct stat st {};
    if (fd >= 0 && ::fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode)) h.fd_ = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
#else
    (void)fd;
#endif
    return h;
  }

  bool valid() const noexcept { return fd_ >= 0; }
  int get() const noexcept { return fd_; }

  void reset() noexcept {
#if defined(KYSERA_INFRA_HAS_SOCKET_SHUTDOWN)
    if (fd_ >= 0) (void)::close(fd_);
#endif
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

/// A watchdog action: `shutdown(SHUT_RDWR)` on the `socket_handle` that `context` points to. The
/// connection on the socket ends and a read blocked on it (through any descriptor) returns at
/// once; the descriptors stay open until their owners close them.
inline void shut_socket_down(void* context) noexcept {
#if defined(KYSERA_INFRA_HAS_SOCKET_SHUTDOWN)
  const auto& socket = *static_cast<const socket_handle*>(context);
  if (socket.valid()) (void)::shutdown(socket.get(), SHUT_RDWR);
#else
  (void)context;
#endif
}

#if defined(__linux__)
/// The port of a socket address, or nullopt for a non-IP one.
inline std::optional<std::uint16_t> ip_port(const sockaddr_storage& a) noexcept {
  if (a.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in&>(a).sin_port);
  if (a.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6&>(a).sin6_port);
  return std::nullopt;
}
#endif

/// The descriptor of this process's one TCP socket whose local port is `local_port` and whose
/// peer's port is `peer_port`; -1 when there is none, more than one, or the platform cannot
/// tell (only Linux can: it lists /proc/self/fd). The server reports the client's port of a
/// session, so this finds the socket of a driver that does not expose it. Costs two system calls
/// per open descriptor of the process.
inline int find_tcp_socket(std::uint16_t local_port, std::uint16_t peer_port) noexcept {
#if defined(__linux__)
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return -1;
  const int own = ::dirfd(dir);
  int found = -1;
  int matches = 0;
  while (const dirent* e = ::readdir(dir)) {
    char* end = nullptr;
    const long n = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || n < 0 || n == own) continue;
    const int fd = static_cast<int>(n);
    sockaddr_storage local{};
    socklen_t size = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &size) != 0) continue;
    if (ip_port(local) != local_port) continue;
    sockaddr_storage peer{};
    size = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &size) != 0) continue;
    if (ip_port(peer) != peer_port) continue;
    int type = 0;
    size = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &size) != 0 || type != SOCK_STREAM) continue;
    found = fd;
    ++matches;
  }
  ::closedir(dir);
  return matches == 1 ? found : -1;
#else
  (void)local_port;
  (void)peer_port;
  return -1;
#endif
}

/// The port at the end of a "host:port" text as servers report a client ("127.0.0.1:53012",
/// "localhost:53012"); nullopt when there is none (a Unix socket client is reported as "localhost").
inline std::optional<std::uint16_t> trailing_port(std::string_view host_and_port) noexcept {
  const auto colon = host_and_port.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == host_and_port.size()) return std::nullopt;
  const port_number port = parse_port(host_and_port.substr(colon + 1));
  if (port.result != port_number::status::ok || port.value == 0) return std::nullopt;
  return port.value;
}

}  // namespace kysera::infra::detail
