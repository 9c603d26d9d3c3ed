// The helper process of the signal tests (built as kysera-shutdown-child, not part of
// test-shutdown). `kysera-shutdown-child SCENARIO` sets up one scenario, prints "mark:ready" and
// waits for signals. Everything it reports goes to stdout as lines: "mark:<event>" from the
// scenario, "log:<level>:<message>" from the shutdown's logger. The parent test reads them and
// the exit status.
#include <kysera/infra/shutdown.hpp>

#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

namespace infra = kysera::infra;
namespace sd = kysera::infra::shutdown;
using namespace std::chrono_literals;

namespace {

/// One line on stdout with a single write(2), so lines from several threads never interleave.
void say(std::string_view prefix, std::string_view text) {
  std::string line(prefix);
  line += text;
  line += '\n';
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    const ssize_t n = ::write(1, p, left);
    if (n <= 0) return;
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

void mark(std::string_view event) {
  say("mark:", event);
}

/// Blocks the calling thread for good (the shutdown's threads have every signal blocked).
[[noreturn]] void block_forever() {
  for (;;) ::pause();
}

/// Reads one byte from stdin: the parent's "go on".
void wait_for_parent() {
  char c = 0;
  while (::read(0, &c, 1) < 0) {
  }
}

/// A database that reports what is done to it.
struct marker_database {
  bool fail_close = false;
  bool hang_close = false;
  void execute(std::string_view) {}
  void close() {
    mark("close");
    if (hang_close) block_forever();
    if (fail_close)
      throw infra::database_error(infra::errc::connection_lost, "close failed", "fake");
  }
};

/// Like a pool whose leases do not come back in time.
struct late_timed_database {
  void execute(std::string_view) {}
  void close() { mark("close"); }
  bool close_for(std::chrono::milliseconds) {
    mark("close_for");
    return false;
  }
};
static_assert(infra::database_with_timed_close<late_timed_database>);

// Application handlers for signals the shutdown does not own (async-signal-safe: write only).
extern "C" void app_usr1(int) {
  const char text[] = "mark:app-usr1\n";
  if (::write(1, text, sizeof text - 1) < 0) {
  }
}
extern "C" void app_usr2(int) {
  const char text[] = "mark:app-usr2\n";
  if (::write(1, text, sizeof text - 1) < 0) {
  }
}

void install_app_handler(int sig, void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  sigaction(sig, &action, nullptr);
}

[[noreturn]] void wait_for_signals() {
  mark("ready");
  block_forever();
}

sd::register_shutdown_options base_options(infra::logger& log) {
  sd::register_shutdown_options options;
  options.timeout = 10s;
  options.logger = &log;
  options.on_shutdown = [] { mark("on_shutdown"); };
  return options;
}

int run(std::string_view scenario) {
  static auto log = infra::make_logger([](infra::log_level level, std::string_view message) {
    std::string prefix = "log:";
    prefix += infra::to_string(level);
    prefix += ':';
    say(prefix, message);
  });
  static marker_database db;
  auto options = base_options(log);

  if (scenario == "default") {
    sd::register_shutdown_handlers(db, options);
    wait_for_signals();
  }
  if (scenario == "failing-on-shutdown") {
    options.on_shutdown = [] {
      mark("on_shutdown");
      throw std::runtime_error("boom");
    };
    sd::register_shutdown_handlers(db, options);
    wait_for_signals();
  }
  if (scenario == "failing-close") {
    db.fail_close = true;
    sd::register_shutdown_handlers(db, options);
    wait_for_signals();
  }
  if (scenario == "hanging-on-shutdown") {
    options.timeout = 300ms;
    options.on_shutdown = [] {
      mark("on_shutdown");
      block_forever();
    };
    sd::register_shutdown_handlers(db, options);
    wait_for_signals();
  }
  if (scenario == "hanging-close") {
    options.timeout = 300ms;
    db.hang_close = true;
    sd::register_shutdown_handlers(db, options);
    wait_for_signals();
  }
  if (scenario == "slow-on-shutdown") {
    options.on_shutdown = [] {
      mark("on_shutdown");
      wait_for_parent();
      mark("on_shutdown-released");
    };
    sd::register_shutdown_handlers(db, options);
    wait_for_signals();
  }
  if (scenario == "custom-signals") {
    options.signals = {SIGUSR1, SIGHUP};
    sd::register_shutdown_handlers(db, options);
    wait_for_signals();
  }
  if (scenario == "app-handlers") {
    install_app_handler(SIGUSR2, app_usr2);  // before the registration
    sd::register_shutdown_handlers(db, options);
    install_app_handler(SIGUSR1, app_usr1);  // after it
    wait_for_signals();
  }
  if (scenario == "late-timed-close") {
    static late_timed_database timed;
    sd::register_shutdown_handlers(timed, options);
    wait_for_signals();
  }
  if (scenario == "register-twice") {
    sd::register_shutdown_handlers(db, options);
    try {
      sd::register_shutdown_handlers(db, options);
      mark("registered-twice");
    } catch (const std::logic_error& e) {
      mark(std::string("logic_error:") + e.what());
    }
    auto controller = sd::create_shutdown_controller(db, options);
    try {
      controller.register_signals();
      mark("controller-registered");
    } catch (const std::logic_error&) {
      mark("controller:logic_error");
    }
    wait_for_signals();
  }
  if (scenario == "controller-signal") {
    static sd::shutdown_controller* current = nullptr;
    options.on_shutdown = [] {
      mark("on_shutdown");
      mark(current->is_shutting_down() ? "shutting-down:yes" : "shutting-down:no");
    };
    static auto controller = sd::create_shutdown_controller(db, options);
    current = &controller;
    mark(controller.is_shutting_down() ? "before:yes" : "before:no");
    controller.register_signals();
    try {
      controller.register_signals();
      mark("registered-twice");
    } catch (const std::logic_error&) {
      mark("second-register:logic_error");
    }
    wait_for_signals();
  }
  if (scenario == "controller-execute-then-signal") {
    auto controller = sd::create_shutdown_controller(db, options);
    controller.register_signals();
    controller.execute();
    mark("executed");
    wait_for_signals();
  }
  if (scenario == "controller-destroyed") {
    install_app_handler(SIGUSR1, app_usr1);
    {
      auto first =
          sd::create_shutdown_controller(db, {.timeout = 10s,
                                              .on_shutdown = [] { mark("first:on_shutdown"); },
                                              .logger = &log,
                                              .signals = {SIGUSR1, SIGTERM}});
      first.register_signals();
      auto moved = std::move(first);  // the registration travels with the state
      mark("registered");
    }
    mark("destroyed");
    sd::register_shutdown_handlers(db, options);
    mark("registered-again");
    wait_for_signals();
  }
  if (scenario == "forked") {
    sd::register_shutdown_handlers(db, options);
    const pid_t pid = ::fork();
    if (pid == 0) {  // the forked copy: only async-signal-safe calls from here on
      const char text[] = "mark:grandchild-ready\n";
      if (::write(1, text, sizeof text - 1) < 0) {
      }
      for (;;) ::pause();
    }
    std::thread([pid] {
      int raw = 0;
      ::waitpid(pid, &raw, 0);
      mark(WIFSIGNALED(raw) ? "grandchild-ended:signal " + std::to_string(WTERMSIG(raw))
                            : "grandchild-ended:exit " + std::to_string(WEXITSTATUS(raw)));
    }).detach();
    mark("grandchild:" + std::to_string(pid) + ";");
    wait_for_signals();
  }
  if (scenario == "signal-during-execute") {
    // The thread running on_shutdown blocks the signals the test sends while it waits in
    // read(2), so they reach the thread in execute(). Under ThreadSanitizer a signal caught by a
    // thread blocked in read(2) runs its handler only when the read returns (here: after the 10 s
    // shutdown timeout); one caught in a condition-variable wait runs at once.
    options.on_shutdown = [] {
      sigset_t shutdown_signals;
      sigemptyset(&shutdown_signals);
      sigaddset(&shutdown_signals, SIGTERM);
      sigaddset(&shutdown_signals, SIGINT);
      ::pthread_sigmask(SIG_BLOCK, &shutdown_signals, nullptr);
      mark("on_shutdown");
      wait_for_parent();
      mark("on_shutdown-released");
    };
    auto controller = sd::create_shutdown_controller(db, options);
    controller.register_signals();
    mark("ready");
    controller.execute();
    mark("execute-returned");
    return 0;
  }
  mark("unknown-scenario");
  return 64;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: kysera-shutdown-child SCENARIO\n");
    return 64;
  }
  try {
    return run(argv[1]);
  } catch (const std::exception& e) {
    mark(std::string("exception:") + e.what());
    return 70;
  }
}
