// shutdown_controller in this process: execute() idempotency and concurrent callers, the shared
// state, option validation, and the one-registration-per-process rule (signals are registered
// but never raised here; the signal paths run in child processes, see signals_test.cpp).
#include "support/catch.hpp"
#include "support/fake_database.hpp"
#include "support_log.hpp"

#include <kysera/infra/shutdown.hpp>

#include <signal.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace infra = kysera::infra;
namespace sd = kysera::infra::shutdown;
using kysera::test::fake_database;
using kysera::test::log_capture;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;

namespace {

sd::register_shutdown_options options_with(log_capture& log) {
  sd::register_shutdown_options options;
  options.logger = &log;
  options.timeout = 20s;
  return options;
}

/// The handler currently installed for `sig`.
void (*handler_of(int sig))(int) {
  struct sigaction current {};
  sigaction(sig, nullptr, &current);
  return current.sa_handler;
}

void application_handler(int) {}

void install(int sig, void (*handler)(int)) {
  struct sigaction action {};
  action.sa_handler = handler;
  sigemptyset(&action.sa_mask);
  sigaction(sig, &action, nullptr);
}

/// Opens a gate once; threads wait on it.
struct gate {
  std::promise<void> promise;
  std::shared_future<void> future = promise.get_future().share();
  void open() { promise.set_value(); }
  void wait() const { future.wait(); }
};

}  // namespace

static_assert(std::is_nothrow_move_constructible_v<sd::shutdown_controller>);
static_assert(std::is_nothrow_move_assignable_v<sd::shutdown_controller>);
static_assert(!std::is_copy_constructible_v<sd::shutdown_controller>);

TEST_CASE("execute runs the shutdown once and reports the same outcome afterwards", "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  int calls = 0;
  options.on_shutdown = [&] { ++calls; };
  auto controller = sd::create_shutdown_controller(db, options);
  CHECK_FALSE(controller.is_shutting_down());
  controller.execute();
  controller.execute();
  controller.execute();
  CHECK(calls == 1);
  CHECK(db.close_calls() == 1);
  CHECK(controller.is_shutting_down());
  CHECK(log.contains("info: Shutdown requested"));
  CHECK(log.contains("info: Shutdown complete"));
}

TEST_CASE("is_shutting_down is true from the moment the shutdown starts", "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  std::atomic<const sd::shutdown_controller*> current{nullptr};
  std::atomic<int> seen{-1};
  options.on_shutdown = [&] { seen = current.load()->is_shutting_down() ? 1 : 0; };
  auto controller = sd::create_shutdown_controller(db, options);
  current = &controller;
  controller.execute();
  CHECK(seen == 1);
}

TEST_CASE("a concurrent second execute waits for the first and rethrows its error", "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  gate release;
  std::atomic<int> calls{0};
  options.on_shutdown = [&] {
    ++calls;
    release.wait();
    throw std::runtime_error("drain failed");
  };
  auto controller = sd::create_shutdown_controller(db, options);

  auto first = std::async(std::launch::async, [&] { controller.execute(); });
  REQUIRE(log.wait_for("info: Running on_shutdown"));
  CHECK(controller.is_shutting_down());
  auto second = std::async(std::launch::async, [&] { controller.execute(); });
  // The second caller announces that it waits; only then does the first one finish.
  REQUIRE(log.wait_for("Shutdown already in progress; waiting for it to finish"));
  CHECK(second.wait_for(0s) == std::future_status::timeout);
  release.open();

  // Both see the error of the one shutdown that ran (the second could not have invented it:
  // it did not exist until the first caller's on_shutdown threw).
  CHECK_THROWS_WITH(first.get(), Contains("on_shutdown threw: drain failed"));
  try {
    second.get();
    FAIL("the second execute did not throw");
  } catch (const sd::shutdown_error& e) {
    CHECK(e.stage() == sd::shutdown_stage::on_shutdown);
    CHECK_THAT(e.what(), Contains("on_shutdown threw: drain failed"));
  }
  CHECK(calls == 1);
  CHECK(db.close_calls() == 1);
  // And a later call reports the same again.
  CHECK_THROWS_AS(controller.execute(), sd::shutdown_error);
  CHECK(calls == 1);
}

TEST_CASE("a concurrent second execute returns only after the database is closed", "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  gate release;
  options.on_shutdown = [&] { release.wait(); };
  auto controller = sd::create_shutdown_controller(db, options);

  auto first = std::async(std::launch::async, [&] { controller.execute(); });
  REQUIRE(log.wait_for("info: Running on_shutdown"));
  auto second = std::async(std::launch::async, [&] {
    controller.execute();
    return db.close_calls();
  });
  REQUIRE(log.wait_for("Shutdown already in progress; waiting for it to finish"));
  release.open();
  CHECK(second.get() == 1);
  first.get();
  CHECK(db.close_calls() == 1);
}

TEST_CASE("many concurrent execute calls run one shutdown and all see its outcome", "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  std::atomic<int> calls{0};
  options.on_shutdown = [&] {
    ++calls;
    throw std::runtime_error("once");
  };
  auto controller = sd::create_shutdown_controller(db, options);
  gate go;
  std::vector<std::future<std::string>> callers;
  for (int i = 0; i < 8; ++i) {
    callers.push_back(std::async(std::launch::async, [&]() -> std::string {
      go.wait();
      try {
        controller.execute();
        return "returned";
      } catch (const sd::shutdown_error& e) {
        return e.what();
      }
    }));
  }
  go.open();
  for (auto& c : callers) CHECK_THAT(c.get(), Contains("on_shutdown threw: once"));
  CHECK(calls == 1);
  CHECK(db.close_calls() == 1);
}

TEST_CASE("a timed-out execute reports the timeout to every caller", "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  options.timeout = 150ms;
  auto release = std::make_shared<gate>();
  options.on_shutdown = [release] { release->wait(); };
  auto controller = sd::create_shutdown_controller(db, options);
  CHECK_THROWS_WITH(controller.execute(), Contains("timed out after 150 ms"));
  try {
    controller.execute();
    FAIL("the second execute did not throw");
  } catch (const sd::shutdown_error& e) {
    CHECK(e.timed_out());
  }
  CHECK(db.close_calls() == 0);
  release->open();
}

TEST_CASE("a controller is movable and a moved-from one refuses to work", "[shutdown]") {
  fake_database db;
  log_capture log;
  auto original = sd::create_shutdown_controller(db, options_with(log));
  auto moved = std::move(original);
  CHECK_FALSE(original.is_shutting_down());  // NOLINT(bugprone-use-after-move): pinned behaviour
  CHECK_THROWS_AS(original.execute(), std::logic_error);
  CHECK_THROWS_AS(original.register_signals(), std::logic_error);
  moved.execute();
  CHECK(moved.is_shutting_down());
  CHECK(db.close_calls() == 1);

  fake_database other_db;
  auto other = sd::create_shutdown_controller(other_db, options_with(log));
  other = std::move(moved);
  CHECK(other.is_shutting_down());
  other.execute();
  CHECK(db.close_calls() == 1);
  CHECK(other_db.close_calls() == 0);
}

TEST_CASE("invalid shutdown options throw invalid_argument naming the field", "[shutdown]") {
  fake_database db;
  auto attempt = [&](sd::register_shutdown_options options) {
    (void)sd::create_shutdown_controller(db, std::move(options));
  };
  sd::register_shutdown_options options;
  options.timeout = 0ms;
  CHECK_THROWS_WITH(attempt(options), Contains("register_shutdown_options.timeout"));
  options = {};
  options.signals = {};
  CHECK_THROWS_WITH(attempt(options), Contains("register_shutdown_options.signals"));
  for (int bad : {SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, 0, -3, 4096}) {
    options.signals = {SIGTERM, bad};
    CAPTURE(bad);
    CHECK_THROWS_AS(attempt(options), std::invalid_argument);
  }
  options.signals = {SIGKILL};
  CHECK_THROWS_WITH(attempt(options), Contains("SIGKILL cannot be caught"));
  // register_shutdown_handlers validates before it registers anything.
  options.signals = {SIGUSR2, SIGKILL};
  CHECK_THROWS_AS(sd::register_shutdown_handlers(db, options), std::invalid_argument);
  CHECK(handler_of(SIGUSR2) == SIG_DFL);
  CHECK(db.close_calls() == 0);
}

TEST_CASE("one process has one set of shutdown handlers, and a controller gives its set back",
          "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  options.signals = {SIGUSR2, SIGUSR2};  // duplicates are harmless
  const auto term_before = handler_of(SIGTERM);
  REQUIRE(handler_of(SIGUSR2) == SIG_DFL);
  {
    auto first = sd::create_shutdown_controller(db, options);
    first.register_signals();
    CHECK(handler_of(SIGUSR2) != SIG_DFL);
    CHECK(handler_of(SIGTERM) == term_before);  // not in the list: untouched
    CHECK(log.contains("debug: Shutdown handlers registered for SIGUSR2"));

    CHECK_THROWS_AS(first.register_signals(), std::logic_error);
    auto second = sd::create_shutdown_controller(db, options);
    CHECK_THROWS_WITH(second.register_signals(), Contains("already registered"));
    CHECK_THROWS_AS(sd::register_shutdown_handlers(db, options), std::logic_error);
    CHECK_FALSE(second.is_shutting_down());
  }
  CHECK(handler_of(SIGUSR2) == SIG_DFL);
  // The slot is free again.
  auto third = sd::create_shutdown_controller(db, options);
  third.register_signals();
  CHECK(handler_of(SIGUSR2) != SIG_DFL);
  third = sd::create_shutdown_controller(db, options);  // the old registration ends here
  CHECK(handler_of(SIGUSR2) == SIG_DFL);
  CHECK(db.close_calls() == 0);
}

TEST_CASE("when execute finishes the previous handlers come back", "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  options.signals = {SIGUSR2};
  auto controller = sd::create_shutdown_controller(db, options);
  controller.register_signals();
  CHECK(handler_of(SIGUSR2) != SIG_DFL);
  controller.execute();
  CHECK(handler_of(SIGUSR2) == SIG_DFL);
  CHECK(db.close_calls() == 1);
  // Still registered: the process keeps one set until the controller is gone.
  auto other = sd::create_shutdown_controller(db, options);
  CHECK_THROWS_AS(other.register_signals(), std::logic_error);
}

TEST_CASE("a handler the application installed after the registration survives its end",
          "[shutdown]") {
  fake_database db;
  log_capture log;
  auto options = options_with(log);
  options.signals = {SIGUSR1, SIGUSR2};
  {
    auto controller = sd::create_shutdown_controller(db, options);
    controller.register_signals();
    install(SIGUSR2, &application_handler);
  }
  CHECK(handler_of(SIGUSR1) == SIG_DFL);               // ours: restored
  CHECK(handler_of(SIGUSR2) == &application_handler);  // theirs: kept
  install(SIGUSR2, SIG_DFL);
}

TEST_CASE("a controller with a timeout too large for the clock completes its shutdown", "[shutdown]") {
  for (auto timeout : {std::chrono::milliseconds::max(), std::chrono::milliseconds(std::chrono::hours(24 * 365 * 300))}) {
    INFO("timeout " << timeout.count() << " ms");
    fake_database db;
    log_capture log;
    auto options = options_with(log);
    options.timeout = timeout;
    int calls = 0;
    options.on_shutdown = [&] { ++calls; };
    auto controller = sd::create_shutdown_controller(db, options);
    CHECK_NOTHROW(controller.execute());
    CHECK_NOTHROW(controller.execute());  // idempotent, same (successful) outcome
    CHECK(calls == 1);
    CHECK(db.close_calls() == 1);
    CHECK(controller.is_shutting_down());
    CHECK_FALSE(log.contains("timed out"));
  }
}
