#pragma once
/// \file
/// The signal machinery under `register_shutdown_handlers` and the controller (internal): the
/// async-signal-safe handler that writes the signal's number to a self-pipe, the process-wide
/// `signal_slot`, and `signal_registration`, which installs the handlers, runs the thread that
/// reads the pipe, and restores the previous dispositions.

#if !defined(__unix__) && !defined(__APPLE__)
#error "kysera/infra/shutdown/detail/signal_thread.hpp needs POSIX signals (Linux, macOS)"
#endif

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "../../detail/process_wide.hpp"

namespace kysera::infra::shutdown::detail {

/// "SIGTERM" for the usual signals, "signal N" for the others.
inline std::string signal_name(int sig) {
  // clang-format off
  switch (sig) {
    case SIGHUP: return "SIGHUP";
    case SIGINT: return "SIGINT";
    case SIGQUIT: return "SIGQUIT";
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGUSR2: return "SIGUSR2";
    case SIGPIPE: return "SIGPIPE";
    case SIGALRM: return "SIGALRM";
    case SIGCHLD: return "SIGCHLD";
    case SIGCONT: return "SIGCONT";
    case SIGTSTP: return "SIGTSTP";
    case SIGTTIN: return "SIGTTIN";
    case SIGTTOU: return "SIGTTOU";
    case SIGWINCH: return "SIGWINCH";
    case SIGXCPU: return "SIGXCPU";
    case SIGXFSZ: return "SIGXFSZ";
    case SIGKILL: return "SIGKILL";
    case SIGSTOP: return "SIGSTOP";
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGFPE: return "SIGFPE";
    case SIGILL: return "SIGILL";
    case SIGTRAP: return "SIGTRAP";
    case SIGSYS: return "SIGSYS";
    case SIGABRT: return "SIGABRT";
    default: return "signal " + std::to_string(sig);
  }
  // clang-format on
}

/// Checks the list (std::invalid_argument naming the field) and drops duplicates.
inline std::vector<int> validate_signals(const std::vector<int>& signals) {
  const std::string field = "register_shutdown_options.signals";
  if (signals.empty()) throw std::invalid_argument(field + " must name at least one signal");
  std::vector<int> result;
  for (int sig : signals) {
    // Bytes 0 and 255 are the self-pipe's control bytes, so a signal number must lie between.
    if (sig <= 0 || sig >= NSIG || sig >= 255) {
      throw std::invalid_argument(field + ": " + std::to_string(sig) + " is not a signal number");
    }
    if (sig == SIGKILL || sig == SIGSTOP) {
      throw std::invalid_argument(field + ": " + signal_name(sig) + " cannot be caught");
    }
    if (sig == SIGSEGV || sig == SIGBUS || sig == SIGFPE || sig == SIGILL || sig == SIGTRAP ||
        sig == SIGSYS || sig == SIGABRT) {
      throw std::invalid_argument(field + ": " + signal_name(sig) +
                                  " reports a program error and cannot start a shutdown");
    }
    if (std::find(result.begin(), result.end(), sig) == result.end()) result.push_back(sig);
  }
  return result;
}

/// The write end of the self-pipe, read by the signal handler (a lock-free atomic, so reading it
/// is async-signal-safe). -1 until the first registration creates the pipe.
inline std::atomic<int> signal_pipe_write_fd{-1};
/// The process that registered. A child made by fork() (without exec) inherits the handlers but
/// not the shutdown thread; its signals must not reach the parent's pipe.
inline std::atomic<pid_t> signal_owner_pid{0};
static_assert(std::atomic<int>::is_always_lock_free);
static_assert(std::atomic<pid_t>::is_always_lock_free);

/// The handler installed for the listed signals: one write(2) of the signal's number, nothing
/// else. In a forked child it falls back to the default action instead (sigaction, getpid and
/// kill are async-signal-safe; the re-sent signal is delivered when the handler returns).
inline void on_shutdown_signal(int sig) noexcept {
  const int saved_errno = errno;
  if (::getpid() != signal_owner_pid.load()) {
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    ::sigemptyset(&default_action.sa_mask);
    ::sigaction(sig, &default_action, nullptr);
    ::kill(::getpid(), sig);
  } else if (const int fd = signal_pipe_write_fd.load(); fd >= 0) {
    const auto byte = static_cast<unsigned char>(sig);
    while (::write(fd, &byte, 1) < 0 && errno == EINTR) {
    }
  }
  errno = saved_errno;
}

inline constexpr unsigned char stop_byte = 0;  // asks the signal thread to return

/// Thread-safe and async-signal-safe where a handler touches it. Process-wide registration
/// bookkeeping: one set of shutdown handlers per process. Never
/// destroyed (allocated once and kept), so it is usable during static destruction. The self-pipe
/// is created once and never closed: a handler that is still running while its registration
/// ends can then never write into a reused file descriptor.
struct signal_slot {
  std::mutex mutex;
  bool held = false;
  int read_fd = -1;
  int write_fd = -1;
  std::shared_ptr<void> permanent;  // the state `register_shutdown_handlers` keeps for good

  // One per process even across -fvisibility=hidden shared libraries: two copies would each
  // install their own SIGTERM/SIGINT handlers and the later one would silence the earlier.
  KYSERA_INFRA_PROCESS_WIDE static signal_slot& get() {
    static signal_slot* slot = new signal_slot;
    return *slot;
  }

  /// Creates the self-pipe on first use (close-on-exec, non-blocking). Caller holds `mutex`.
  void ensure_pipe() {
    if (read_fd >= 0) return;
    int fds[2];
#if defined(__linux__)
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      throw std::system_error(errno, std::generic_category(), "kysera shutdown: pipe2");
    }
#else
    if (::pipe(fds) != 0)
      throw std::system_error(errno, std::generic_category(), "kysera shutdown: pipe");
    for (int fd : fds) {
      ::fcntl(fd, F_SETFD, FD_CLOEXEC);
      ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    }
#endif
    read_fd = fds[0];
    write_fd = fds[1];
    signal_pipe_write_fd.store(write_fd);
  }

  /// Throws away bytes left by an earlier registration. Caller holds `mutex`.
  void drain() const noexcept {
    unsigned char buffer[64];
    while (::read(read_fd, buffer, sizeof buffer) > 0) {
    }
  }
};

/// Not thread-safe itself (owned by `shutdown_state`, which serialises access). One active set
/// of handlers: installs them, runs the thread that reads the self-pipe and calls
/// `on_signal(sig)` for each signal, and restores the previous dispositions. At most one exists
/// per process at a time; constructing a second throws `std::logic_error`.
class signal_registration {
 public:
  signal_registration(std::vector<int> signals, std::function<void(int)> on_signal)
      : signals_(std::move(signals)), on_signal_(std::move(on_signal)) {
    auto& slot = signal_slot::get();
    std::lock_guard lock(slot.mutex);
    if (slot.held) {
      throw std::logic_error(
          "kysera shutdown: shutdown signal handlers are already registered in this process");
    }
    slot.ensure_pipe();
    slot.drain();
    signal_owner_pid.store(::getpid());
    read_fd_ = slot.read_fd;
    write_fd_ = slot.write_fd;

    // The thread starts with every signal blocked, so handlers never interrupt it and the
    // threads it starts (the shutdown's) inherit that mask.
    sigset_t all;
    sigset_t previous_mask;
    ::sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &previous_mask);
    try {
      thread_ = std::thread([this] { read_loop(); });
    } catch (...) {
      ::pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);
      throw;
    }
    ::pthread_sigmask(SIG_SETMASK, &previous_mask, nullptr);

    struct sigaction action {};
    action.sa_handler = &on_shutdown_signal;
    ::sigemptyset(&action.sa_mask);
    for (int sig : signals_) ::sigaddset(&action.sa_mask, sig);
    action.sa_flags = SA_RESTART;
    previous_.resize(signals_.size());
    for (std::size_t i = 0; i < signals_.size(); ++i) {
      if (::sigaction(signals_[i], &action, &previous_[i]) != 0) {
        const int error = errno;
        for (std::size_t j = 0; j < i; ++j) ::sigaction(signals_[j], &previous_[j], nullptr);
        restored_ = true;
        stop_thread();
        throw std::system_error(
            error, std::generic_category(),
            "kysera shutdown: cannot install a handler for " + signal_name(signals_[i]));
      }
    }
    slot.held = true;
  }

  ~signal_registration() {
    restore();
    stop_thread();
    auto& slot = signal_slot::get();
    std::lock_guard lock(slot.mutex);
    slot.held = false;
  }

  signal_registration(const signal_registration&) = delete;
  signal_registration& operator=(const signal_registration&) = delete;

  /// Puts the previous dispositions back (once; later calls do nothing). A signal whose handler
  /// the application replaced after the registration keeps the application's. Thread-safe.
  void restore() noexcept {
    std::lock_guard lock(mutex_);
    if (restored_) return;
    restored_ = true;
    for (std::size_t i = 0; i < signals_.size(); ++i) {
      struct sigaction current {};
      ::sigaction(signals_[i], nullptr, &current);
      if ((current.sa_flags & SA_SIGINFO) == 0 && current.sa_handler == &on_shutdown_signal) {
        ::sigaction(signals_[i], &previous_[i], nullptr);
      }
    }
  }

 private:
  void stop_thread() noexcept {
    if (!thread_.joinable()) return;
    const unsigned char byte = stop_byte;
    for (;;) {
      if (::write(write_fd_, &byte, 1) == 1) break;
      if (errno == EAGAIN) {
        pollfd p{write_fd_, POLLOUT, 0};
        ::poll(&p, 1, 100);
      } else if (errno != EINTR) {
        break;
      }
    }
    thread_.join();
  }

  void read_loop() noexcept {
    for (;;) {
      pollfd p{read_fd_, POLLIN, 0};
      if (::poll(&p, 1, -1) < 0) continue;  // EINTR, or a transient ENOMEM/EAGAIN: try again
      unsigned char buffer[64];
      const auto n = ::read(read_fd_, buffer, sizeof buffer);
      for (ssize_t i = 0; i < n; ++i) {
        if (buffer[i] == stop_byte) return;
        on_signal_(buffer[i]);
      }
    }
  }

  std::vector<int> signals_;
  std::function<void(int)> on_signal_;  // called on the signal thread
  std::vector<struct sigaction> previous_;
  std::mutex mutex_;
  bool restored_ = false;
  int read_fd_ = -1;
  int write_fd_ = -1;
  std::thread thread_;
};

}  // namespace kysera::infra::shutdown::detail
