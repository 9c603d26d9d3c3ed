#pragma once
// A child process for the signal tests: spawned with posix_spawn (default dispositions, empty
// signal mask), stdin from a pipe, stdout and stderr merged into one pipe that the parent reads.
// Every wait has a deadline; a child that overruns it is killed, so a bug cannot hang the suite.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

extern char** environ;

namespace kysera::test {

class child_process {
 public:
  using clock = std::chrono::steady_clock;

  struct exit_status {
    bool exited = false;     // ended through exit/_Exit
    int code = -1;           // its status, when exited
    bool signalled = false;  // killed by a signal
    int signal = 0;          // that signal, when signalled
    clock::time_point at;    // when the parent saw it end
  };

  explicit child_process(const std::vector<std::string>& args) {
    // Writing to a child that died must fail with EPIPE, not kill the test process.
    std::signal(SIGPIPE, SIG_IGN);
    int in[2];
    int out[2];
    make_pipe(in);
    make_pipe(out);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in[0], 0);
    posix_spawn_file_actions_adddup2(&actions, out[1], 1);
    posix_spawn_file_actions_adddup2(&actions, out[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int rc = posix_spawn(&pid_, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(in[0]);
    ::close(out[1]);
    stdin_fd_ = in[1];
    out_fd_ = out[0];
    if (rc != 0) {
      ::close(stdin_fd_);
      ::close(out_fd_);
      throw std::system_error(rc, std::generic_category(), "posix_spawn " + args.front());
    }
  }

  ~child_process() {
    if (!status_) {
      ::kill(pid_, SIGKILL);
      int raw = 0;
      ::waitpid(pid_, &raw, 0);
    }
    ::close(stdin_fd_);
    ::close(out_fd_);
  }

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const noexcept { return pid_; }

  void send(int sig) {
    if (::kill(pid_, sig) != 0) throw std::system_error(errno, std::generic_category(), "kill");
  }

  void write_stdin(std::string_view text) {
    if (::write(stdin_fd_, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
      throw std::system_error(errno, std::generic_category(), "write to child");
    }
  }

  /// Reads output until it holds `needle` `times` times; false when the deadline or the end of
  /// the output came first.
  bool wait_for(std::string_view needle,
                std::chrono::milliseconds timeout = std::chrono::seconds(20), int times = 1) {
    const auto deadline = clock::now() + timeout;
    while (count(needle) < times) {
      if (!read_some(deadline)) return count(needle) >= times;
    }
    return true;
  }

  /// Reads everything until the child ends, then reaps it. On overrun the child is killed and
  /// std::nullopt returned.
  std::optional<exit_status> wait_exit(
      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    const auto deadline = clock::now() + timeout;
    while (!status_) {
      int raw = 0;
      const pid_t r = ::waitpid(pid_, &raw, WNOHANG);
      if (r == pid_) {
        exit_status s;
        s.at = clock::now();
        s.exited = WIFEXITED(raw);
        s.code = s.exited ? WEXITSTATUS(raw) : -1;
        s.signalled = WIFSIGNALED(raw);
        s.signal = s.signalled ? WTERMSIG(raw) : 0;
        status_ = s;
        break;
      }
      if (clock::now() >= deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &raw, 0);
        status_ = exit_status{};
        return std::nullopt;
      }
      // Poll the output in short slices so the exit is noticed promptly.
      read_some(std::min(deadline, clock::now() + std::chrono::milliseconds(20)));
    }
    while (read_some(clock::now() + std::chrono::milliseconds(200))) {
    }
    return status_;
  }

  const std::string& output() const noexcept { return output_; }

  /// How many times `needle` occurs in the output so far.
  int count(std::string_view needle) const {
    int n = 0;
    for (auto pos = output_.find(needle); pos != std::string::npos;
         pos = output_.find(needle, pos + needle.size())) {
      ++n;
    }
    return n;
  }

  /// Position of the first `needle` (npos when absent), for order checks.
  std::size_t position(std::string_view needle) const { return output_.find(needle); }

 private:
  static void make_pipe(int (&fds)[2]) {
    if (::pipe(fds) != 0) throw std::system_error(errno, std::generic_category(), "pipe");
    ::fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    ::fcntl(fds[1], F_SETFD, FD_CLOEXEC);
  }

  /// Waits for output until `deadline`; false at the deadline or at end of output.
  bool read_some(clock::time_point deadline) {
    if (eof_) return false;
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
      if (left.count() < 0) return false;
      pollfd p{out_fd_, POLLIN, 0};
      const int r = ::poll(&p, 1, static_cast<int>(left.count()));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      char buffer[4096];
      const ssize_t n = ::read(out_fd_, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        eof_ = true;
        return false;
      }
      output_.append(buffer, static_cast<std::size_t>(n));
      return true;
    }
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int out_fd_ = -1;
  bool eof_ = false;
  std::string output_;
  std::optional<exit_status> status_;
};

}  // namespace kysera::test
