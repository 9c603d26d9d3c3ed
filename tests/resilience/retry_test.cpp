// Unit tests: transient classification, backoff arithmetic, with_retry, create_retry_wrapper and
// with_transaction_retry (on a scripted transactional fake). Nothing here sleeps: every retry
// gets a recording sleeper.
#include "support/catch.hpp"
#include "support/fake_database.hpp"
#include "support/manual_clock.hpp"

#include <kysera/infra/resilience.hpp>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <limits>
#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

namespace infra = kysera::infra;
namespace res = kysera::infra::resilience;
using infra::errc;
using namespace std::chrono_literals;

namespace {

infra::database_error db_error(errc code) { return infra::database_error(code, "scripted", "fake"); }

/// The message of the std::invalid_argument that `fn` throws ("" when it throws none).
template <class F>
std::string invalid_argument_message(F&& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

/// Records every wait instead of sleeping.
struct sleep_recorder {
  std::shared_ptr<std::vector<std::chrono::milliseconds>> waits =
      std::make_shared<std::vector<std::chrono::milliseconds>>();
  void operator()(std::chrono::milliseconds d) const { waits->push_back(d); }
};

/// An error type of our own, to check that the original object comes back.
struct marked_error : infra::database_error {
  int attempt;
  explicit marked_error(int a) : infra::database_error(errc::connection_lost, "marked", "fake"), attempt(a) {}
};

/// A `database` with a transaction(fn) that logs BEGIN / COMMIT / ROLLBACK.
struct tx_database {
  std::vector<std::string> log;
  int transactions = 0;
  void execute(std::string_view sql) { log.emplace_back(sql); }
  void close() {}
  template <class F>
  std::invoke_result_t<F&, tx_database&> transaction(F&& fn) {
    using result = std::invoke_result_t<F&, tx_database&>;
    ++transactions;
    log.emplace_back("BEGIN");
    try {
      if constexpr (std::is_void_v<result>) {
        fn(*this);
        log.emplace_back("COMMIT");
      } else {
        result r = fn(*this);
        log.emplace_back("COMMIT");
        return r;
      }
    } catch (...) {
      log.emplace_back("ROLLBACK");
      throw;
    }
  }
};
static_assert(infra::database_with_transaction<tx_database>);

struct any_session_fn {
  template <class Session>
  void operator()(Session&) const {}
};
template <class Db>
concept can_retry_transaction = requires(Db& db) { res::with_transaction_retry(db, any_session_fn{}); };

}  // namespace

// ---------------------------------------------------------------- classification

TEST_CASE("is_transient_error accepts exactly the transient database error codes", "[resilience]") {
  const std::vector<errc> transient{errc::connection_refused, errc::connection_lost,
                                    errc::timeout,            errc::too_many_connections,
                                    errc::serialization_failure, errc::deadlock,
                                    errc::lock_timeout,       errc::busy};
  for (int v = static_cast<int>(errc::connection_refused); v <= static_cast<int>(errc::database_not_found);
       ++v) {
    const auto code = static_cast<errc>(v);
    const bool expected = std::find(transient.begin(), transient.end(), code) != transient.end();
    INFO(infra::to_string(code));
    CHECK(res::is_transient_error(db_error(code)) == expected);
    // A plain system_error in our category is judged the same way.
    CHECK(res::is_transient_error(std::system_error(infra::make_error_code(code))) == expected);
  }
}

TEST_CASE("an outcome_unknown error is never transient nor replay safe", "[resilience]") {
  CHECK_FALSE(res::is_transient_error(db_error(errc::outcome_unknown)));
  CHECK_FALSE(res::is_serialization_error(db_error(errc::outcome_unknown)));
  CHECK_FALSE(res::is_replay_safe_error(db_error(errc::outcome_unknown)));
}

TEST_CASE("is_transient_error accepts socket errors carried by std::system_error", "[resilience]") {
  for (int e : {ECONNREFUSED, ETIMEDOUT, ECONNRESET, EPIPE}) {
    INFO(e);
    CHECK(res::is_transient_error(std::system_error(e, std::generic_category())));
    CHECK(res::is_transient_error(std::system_error(e, std::system_category())));
  }
  CHECK_FALSE(res::is_transient_error(std::system_error(EACCES, std::generic_category())));
  CHECK_FALSE(res::is_transient_error(std::system_error(ENOENT, std::system_category())));
  CHECK_FALSE(res::is_transient_error(std::runtime_error("ECONNRESET")));
  CHECK_FALSE(res::is_transient_error(std::invalid_argument("x")));
  CHECK_FALSE(res::is_transient_error(res::circuit_breaker_error(res::circuit_state::open, 5ms)));
}

TEST_CASE("is_transient_error classifies the TypeScript code strings", "[resilience]") {
  for (const char* code : {"ECONNREFUSED", "ETIMEDOUT", "ECONNRESET", "EPIPE", "57P03", "08006",
                           "08001", "08003", "08004", "40001", "40P01", "ER_LOCK_DEADLOCK",
                           "ER_LOCK_WAIT_TIMEOUT", "ER_CON_COUNT_ERROR", "SQLITE_BUSY",
                           "SQLITE_LOCKED"}) {
    INFO(code);
    CHECK(res::is_transient_error(std::string_view(code)));
    CHECK(res::is_transient_error(std::string(code)));
  }
  // Outcome unknown (08007, 40003), other errors, and near misses are not transient.
  for (const char* code : {"08007", "40003", "23505", "42P01", "econnreset", "ECONNRESET ", "",
                           "SQLITE_CONSTRAINT", "ER_DUP_ENTRY"}) {
    INFO(code);
    CHECK_FALSE(res::is_transient_error(std::string_view(code)));
  }
  static_assert(res::is_transient_error(std::string_view("40001")));
}

TEST_CASE("is_serialization_error accepts only serialization failures and deadlocks", "[resilience]") {
  for (int v = static_cast<int>(errc::connection_refused); v <= static_cast<int>(errc::database_not_found);
       ++v) {
    const auto code = static_cast<errc>(v);
    INFO(infra::to_string(code));
    CHECK(res::is_serialization_error(db_error(code)) ==
          (code == errc::serialization_failure || code == errc::deadlock));
  }
  CHECK_FALSE(res::is_serialization_error(std::runtime_error("40001")));
  CHECK_FALSE(res::is_serialization_error(std::system_error(ECONNRESET, std::generic_category())));
}

TEST_CASE("is_replay_safe_error accepts only errors that prove nothing ran", "[resilience]") {
  CHECK(res::is_replay_safe_error(db_error(errc::connection_refused)));
  CHECK(res::is_replay_safe_error(db_error(errc::too_many_connections)));
  CHECK(res::is_replay_safe_error(db_error(errc::serialization_failure)));
  CHECK(res::is_replay_safe_error(db_error(errc::deadlock)));
  CHECK(res::is_replay_safe_error(db_error(errc::lock_timeout)));
  CHECK(res::is_replay_safe_error(db_error(errc::busy)));
  // The statement may have run: transient, but not safe for non-idempotent work.
  CHECK_FALSE(res::is_replay_safe_error(db_error(errc::connection_lost)));
  CHECK_FALSE(res::is_replay_safe_error(db_error(errc::timeout)));
  CHECK_FALSE(res::is_replay_safe_error(std::system_error(ECONNRESET, std::generic_category())));
  CHECK_FALSE(res::is_replay_safe_error(db_error(errc::query_failed)));
}

TEST_CASE("is_replay_safe_error as should_retry retries only work that cannot have run", "[resilience]") {
  sleep_recorder sleeper;
  int calls = 0;
  res::retry_options writes{.should_retry = res::is_replay_safe_error, .sleep = sleeper};
  CHECK_THROWS_AS(res::with_retry(
                      [&] {
                        ++calls;
                        throw db_error(errc::connection_lost);  // the INSERT may have committed
                      },
                      writes),
                  infra::database_error);
  CHECK(calls == 1);
  calls = 0;
  res::with_retry(
      [&] {
        if (++calls == 1) throw db_error(errc::deadlock);
      },
      writes);
  CHECK(calls == 2);
}

// ---------------------------------------------------------------- backoff

TEST_CASE("backoff doubles from delay and stops at max_delay", "[resilience]") {
  CHECK(res::backoff_delay(100ms, 500ms, true, 0.0, 1, 0.5) == 100ms);
  CHECK(res::backoff_delay(100ms, 500ms, true, 0.0, 2, 0.5) == 200ms);
  CHECK(res::backoff_delay(100ms, 500ms, true, 0.0, 3, 0.5) == 400ms);
  CHECK(res::backoff_delay(100ms, 500ms, true, 0.0, 4, 0.5) == 500ms);
  CHECK(res::backoff_delay(100ms, 500ms, true, 0.0, 5000, 0.5) == 500ms);  // no overflow
  CHECK(res::backoff_delay(0ms, 0ms, true, 0.25, 3, 0.9) == 0ms);
  // Without backoff: delay every time, jitter ignored.
  CHECK(res::backoff_delay(100ms, 500ms, false, 0.25, 7, 0.99) == 100ms);
}

TEST_CASE("jitter spreads a wait around its base but never above max_delay", "[resilience]") {
  // unit 0 is the low end, unit -> 1 the high end.
  CHECK(res::backoff_delay(100ms, 1000ms, true, 0.25, 1, 0.0) == 75ms);
  CHECK(res::backoff_delay(100ms, 1000ms, true, 0.25, 1, 0.999999) == 125ms);
  // At the cap the spread is one-sided: [0.75 cap, cap].
  CHECK(res::backoff_delay(100ms, 300ms, true, 0.25, 3, 0.0) == 225ms);
  CHECK(res::backoff_delay(100ms, 300ms, true, 0.25, 3, 0.999999) == 300ms);
  CHECK(res::backoff_delay(100ms, 300ms, true, 1.0, 9, 0.999999) == 300ms);
  CHECK(res::backoff_delay(100ms, 300ms, true, 1.0, 1, 0.0) == 0ms);
}

TEST_CASE("the per-thread jitter source draws from zero to one", "[resilience]") {
  double low = 1.0;
  double high = 0.0;
  for (int i = 0; i < 10000; ++i) {
    const double u = res::detail::thread_unit_random();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    low = std::min(low, u);
    high = std::max(high, u);
  }
  CHECK(low < 0.01);
  CHECK(high > 0.99);
  // Two threads get different sequences.
  double other = 0;
  std::thread([&] { other = res::detail::thread_unit_random(); }).join();
  CHECK(other != res::detail::thread_unit_random());
}

// ---------------------------------------------------------------- with_retry

TEST_CASE("with_retry waits 100 200 400 then the 500 cap with jitter 0", "[resilience]") {
  sleep_recorder sleeper;
  int calls = 0;
  auto always_fails = [&] {
    ++calls;
    throw db_error(errc::connection_lost);
  };
  res::retry_options options{.max_attempts = 6, .delay = 100ms, .max_delay = 500ms, .jitter = 0.0,
                             .sleep = sleeper};
  CHECK_THROWS_AS(res::with_retry(always_fails, options), infra::database_error);
  CHECK(calls == 6);
  CHECK(*sleeper.waits == std::vector<std::chrono::milliseconds>{100ms, 200ms, 400ms, 500ms, 500ms});
}

TEST_CASE("with_retry keeps every jittered wait within its bounds and under the cap", "[resilience]") {
  sleep_recorder sleeper;
  res::retry_options options{.max_attempts = 4, .delay = 100ms, .max_delay = 300ms, .jitter = 0.25,
                             .sleep = sleeper};
  for (int run = 0; run < 500; ++run) {
    CHECK_THROWS(res::with_retry([] { throw db_error(errc::timeout); }, options));
  }
  REQUIRE(sleeper.waits->size() == 1500);
  const std::chrono::milliseconds low[] = {75ms, 150ms, 225ms};
  const std::chrono::milliseconds high[] = {125ms, 250ms, 300ms};
  std::chrono::milliseconds seen_low[] = {1000ms, 1000ms, 1000ms};
  std::chrono::milliseconds seen_high[] = {0ms, 0ms, 0ms};
  for (std::size_t i = 0; i < sleeper.waits->size(); ++i) {
    const auto k = i % 3;
    const auto w = (*sleeper.waits)[i];
    REQUIRE(w >= low[k]);
    REQUIRE(w <= high[k]);
    seen_low[k] = std::min(seen_low[k], w);
    seen_high[k] = std::max(seen_high[k], w);
  }
  // The draws really spread over the interval (500 draws each).
  for (int k = 0; k < 3; ++k) {
    CHECK(seen_low[k] <= low[k] + 10ms);
    CHECK(seen_high[k] >= high[k] - 10ms);
  }
}

TEST_CASE("with_retry without backoff waits delay every time without jitter", "[resilience]") {
  sleep_recorder sleeper;
  res::retry_options options{.max_attempts = 4, .delay = 70ms, .backoff = false, .jitter = 0.5,
                             .sleep = sleeper};
  CHECK_THROWS(res::with_retry([] { throw db_error(errc::busy); }, options));
  CHECK(*sleeper.waits == std::vector<std::chrono::milliseconds>{70ms, 70ms, 70ms});
}

TEST_CASE("with_retry numbers attempts from 1 and returns the first success", "[resilience]") {
  sleep_recorder sleeper;
  std::vector<int> reported;
  int calls = 0;
  res::retry_options options{.max_attempts = 5, .delay = 1ms, .jitter = 0.0,
                             .on_retry = [&](int attempt, const std::exception& e) {
                               reported.push_back(attempt);
                               CHECK(std::string(e.what()).find("scripted") != std::string::npos);
                             },
                             .sleep = sleeper};
  const int result = res::with_retry(
      [&] {
        if (++calls < 4) throw db_error(errc::deadlock);
        return 42;
      },
      options);
  CHECK(result == 42);
  CHECK(calls == 4);
  CHECK(reported == std::vector<int>{1, 2, 3});
  CHECK(sleeper.waits->size() == 3);
}

TEST_CASE("with_retry asks should_retry only when another attempt remains", "[resilience]") {
  sleep_recorder sleeper;
  int asked = 0;
  int retried = 0;
  res::retry_options options{.max_attempts = 3, .delay = 0ms,
                             .should_retry = [&](const std::exception&) {
                               ++asked;
                               return true;
                             },
                             .on_retry = [&](int, const std::exception&) { ++retried; },
                             .sleep = sleeper};
  // A runtime_error is not transient, but should_retry overrides the default.
  CHECK_THROWS_AS(res::with_retry([] { throw std::runtime_error("x"); }, options), std::runtime_error);
  CHECK(asked == 2);
  CHECK(retried == 2);
}

TEST_CASE("with_retry stops at an error the default predicate calls permanent", "[resilience]") {
  sleep_recorder sleeper;
  int calls = 0;
  bool called_back = false;
  res::retry_options options{.on_retry = [&](int, const std::exception&) { called_back = true; },
                             .sleep = sleeper};
  CHECK_THROWS_AS(res::with_retry(
                      [&] {
                        ++calls;
                        throw db_error(errc::outcome_unknown);
                      },
                      options),
                  infra::database_error);
  CHECK(calls == 1);
  CHECK_FALSE(called_back);
  CHECK(sleeper.waits->empty());
}

TEST_CASE("with_retry rethrows the original error with its dynamic type", "[resilience]") {
  sleep_recorder sleeper;
  int calls = 0;
  res::retry_options options{.max_attempts = 3, .delay = 0ms, .sleep = sleeper};
  try {
    res::with_retry([&]() -> int { throw marked_error(++calls); }, options);
    FAIL("no exception");
  } catch (const marked_error& e) {
    CHECK(e.attempt == 3);  // the last attempt's object, not a copy of the first
    CHECK(e.code() == errc::connection_lost);
  }
  CHECK(calls == 3);
}

TEST_CASE("with_retry lets non-standard exceptions through at once", "[resilience]") {
  sleep_recorder sleeper;
  int calls = 0;
  bool asked = false;
  res::retry_options options{.should_retry = [&](const std::exception&) { return asked = true; },
                             .sleep = sleeper};
  try {
    res::with_retry(
        [&] {
          ++calls;
          throw 42;
        },
        options);
    FAIL("no exception");
  } catch (int value) {
    CHECK(value == 42);
  }
  CHECK(calls == 1);
  CHECK_FALSE(asked);
  CHECK(sleeper.waits->empty());
}

TEST_CASE("with_retry rejects invalid options naming the field before fn runs", "[resilience]") {
  int calls = 0;
  auto fn = [&] { ++calls; };
  auto expect = [&](res::retry_options options, const std::string& field) {
    INFO(field);
    try {
      res::with_retry(fn, options);
      FAIL("accepted invalid options");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()).find(field) != std::string::npos);
    }
  };
  expect({.max_attempts = 0}, "max_attempts");
  expect({.max_attempts = -3}, "max_attempts");
  expect({.delay = -1ms}, "delay");
  expect({.delay = 2000ms, .max_delay = 1000ms}, "max_delay");
  expect({.jitter = -0.1}, "jitter");
  expect({.jitter = 1.5}, "jitter");
  expect({.jitter = std::numeric_limits<double>::quiet_NaN()}, "jitter");
  CHECK(calls == 0);
  // The edges are valid.
  CHECK_NOTHROW(res::with_retry(fn, {.max_attempts = 1, .delay = 0ms, .max_delay = 0ms, .jitter = 1.0}));
  CHECK(calls == 1);
}

TEST_CASE("retry defaults match the TypeScript package", "[resilience]") {
  const res::retry_options o;
  CHECK(o.max_attempts == 3);
  CHECK(o.delay == 1000ms);
  CHECK(o.max_delay == 30000ms);
  CHECK(o.backoff);
  CHECK(o.jitter == 0.25);
  CHECK_FALSE(o.should_retry);
  CHECK_FALSE(o.on_retry);
}

TEST_CASE("with_retry returns values references void and move-only results", "[resilience]") {
  static int cell = 1;
  int& ref = res::with_retry([]() -> int& { return cell; });
  CHECK(&ref == &cell);
  static_assert(std::is_same_v<decltype(res::with_retry([]() -> int& { return cell; })), int&>);
  std::unique_ptr<int> p = res::with_retry([] { return std::make_unique<int>(7); });
  CHECK(*p == 7);
  int calls = 0;
  res::with_retry([&] { ++calls; });
  static_assert(std::is_void_v<decltype(res::with_retry([] {}))>);
  CHECK(calls == 1);
}

TEST_CASE("a throwing should_retry or on_retry stops retrying with the original error", "[resilience]") {
  sleep_recorder sleeper;
  int calls = 0;
  auto fn = [&] {
    ++calls;
    throw db_error(errc::connection_lost);
  };
  res::retry_options bad_predicate{.should_retry = [](const std::exception&) -> bool {
                                     throw std::logic_error("predicate bug");
                                   },
                                   .sleep = sleeper};
  CHECK_THROWS_AS(res::with_retry(fn, bad_predicate), infra::database_error);
  CHECK(calls == 1);
  res::retry_options bad_callback{.on_retry = [](int, const std::exception&) { throw 7; },
                                  .sleep = sleeper};
  CHECK_THROWS_AS(res::with_retry(fn, bad_callback), infra::database_error);
  CHECK(calls == 2);
  CHECK(sleeper.waits->empty());
}

TEST_CASE("a throwing sleeper abandons the retry with its own error", "[resilience]") {
  int calls = 0;
  res::retry_options options{.sleep = [](std::chrono::milliseconds) {
    throw infra::database_error(errc::shutting_down, "stop", "test");
  }};
  try {
    res::with_retry(
        [&] {
          ++calls;
          throw db_error(errc::timeout);
        },
        options);
    FAIL("no exception");
  } catch (const infra::database_error& e) {
    CHECK(e.code() == errc::shutting_down);
  }
  CHECK(calls == 1);
}

TEST_CASE("with_retry sleeps for real with the default sleeper", "[resilience]") {
  int calls = 0;
  const auto start = std::chrono::steady_clock::now();
  const int v = res::with_retry(
      [&] {
        if (++calls == 1) throw db_error(errc::timeout);
        return 5;
      },
      {.delay = 20ms, .jitter = 0.0});
  CHECK(v == 5);
  CHECK(std::chrono::steady_clock::now() - start >= 20ms);
}

// ---------------------------------------------------------------- create_retry_wrapper

namespace {
/// Reports how each attempt received its argument.
struct category_probe {
  std::vector<std::string>* seen;
  int fail_first;
  int operator()(std::string& s) const { return record("lvalue", s); }
  int operator()(const std::string& s) const { return record("const lvalue", s); }
  int operator()(std::string&& s) const { return record("rvalue", s); }
  int record(const char* how, const std::string& s) const {
    seen->push_back(std::string(how) + ":" + s);
    if (static_cast<int>(seen->size()) <= fail_first) throw infra::database_error(errc::busy, "busy");
    return static_cast<int>(s.size());
  }
};
}  // namespace

TEST_CASE("create_retry_wrapper keeps argument and return types", "[resilience]") {
  sleep_recorder sleeper;
  int failures_left = 1;
  auto wrapped = res::create_retry_wrapper(
      [&](int& counter, std::string text, const std::string& suffix) -> std::string& {
        ++counter;
        if (failures_left-- > 0) throw db_error(errc::connection_refused);
        static std::string out;
        out = text + suffix;
        return out;
      },
      {.delay = 0ms, .sleep = sleeper});
  int counter = 0;
  const std::string suffix = "!";
  std::string& out = wrapped(counter, std::string("hello"), suffix);
  static_assert(std::is_same_v<decltype(wrapped(counter, std::string(), suffix)), std::string&>);
  CHECK(out == "hello!");  // the retry still saw the whole string: not moved away by attempt 1
  CHECK(counter == 2);     // the lvalue reference reached the caller's int on both attempts
  CHECK(wrapped.options().delay == 0ms);
  // Conversions the function accepts are accepted by the wrapper too.
  CHECK(wrapped(counter, "ab", std::string("c")) == "abc");
  // Usable where a std::function of the same signature is expected.
  std::function<std::string&(int&, std::string, const std::string&)> f = wrapped;
  CHECK(f(counter, "x", suffix) == "x!");
}

TEST_CASE("create_retry_wrapper forwards perfectly on the final attempt only", "[resilience]") {
  sleep_recorder sleeper;
  std::vector<std::string> seen;
  auto wrapped = res::create_retry_wrapper(category_probe{&seen, 2},
                                           {.max_attempts = 3, .delay = 0ms, .sleep = sleeper});
  CHECK(wrapped(std::string("abc")) == 3);
  CHECK(seen == std::vector<std::string>{"lvalue:abc", "lvalue:abc", "rvalue:abc"});

  seen.clear();
  auto first_try = res::create_retry_wrapper(category_probe{&seen, 0}, {.max_attempts = 1});
  CHECK(first_try(std::string("xy")) == 2);  // one attempt only: it is the final one
  CHECK(seen == std::vector<std::string>{"rvalue:xy"});

  seen.clear();
  const std::string constant = "k";
  std::string mutable_arg = "m";
  auto wrapped2 = res::create_retry_wrapper(category_probe{&seen, 0});
  wrapped2(constant);
  wrapped2(mutable_arg);
  CHECK(seen == std::vector<std::string>{"const lvalue:k", "lvalue:m"});
}

TEST_CASE("create_retry_wrapper validates its options once at construction", "[resilience]") {
  CHECK(invalid_argument_message([] { res::create_retry_wrapper([] {}, {.max_attempts = 0}); })
            .find("retry_options.max_attempts") != std::string::npos);
  CHECK(invalid_argument_message([] { res::create_retry_wrapper([] {}, {.jitter = 2.0}); })
            .find("retry_options.jitter") != std::string::npos);
}

TEST_CASE("a retry wrapper with a mutable function object keeps its state", "[resilience]") {
  auto counter = res::create_retry_wrapper([n = 0]() mutable { return ++n; });
  CHECK(counter() == 1);
  CHECK(counter() == 2);
}

// ---------------------------------------------------------------- with_transaction_retry

TEST_CASE("with_transaction_retry reruns the whole transaction after a serialization failure", "[resilience]") {
  tx_database db;
  sleep_recorder sleeper;
  int runs = 0;
  const int result = res::with_transaction_retry(
      db,
      [&](tx_database& tx) {
        tx.execute("UPDATE a");
        if (++runs == 1) throw db_error(errc::serialization_failure);
        tx.execute("UPDATE b");
        return 11;
      },
      {.sleep = sleeper});
  CHECK(result == 11);
  CHECK(db.transactions == 2);
  CHECK(db.log == std::vector<std::string>{"BEGIN", "UPDATE a", "ROLLBACK", "BEGIN", "UPDATE a",
                                           "UPDATE b", "COMMIT"});
  // The default first delay is 100 ms (+-25 % jitter).
  REQUIRE(sleeper.waits->size() == 1);
  CHECK(sleeper.waits->front() >= 75ms);
  CHECK(sleeper.waits->front() <= 125ms);
}

TEST_CASE("with_transaction_retry retries deadlocks and gives up after max_attempts", "[resilience]") {
  tx_database db;
  sleep_recorder sleeper;
  CHECK_THROWS_AS(res::with_transaction_retry(
                      db, [](tx_database&) { throw db_error(errc::deadlock); },
                      {.max_attempts = 4, .jitter = 0.0, .sleep = sleeper}),
                  infra::database_error);
  CHECK(db.transactions == 4);
  CHECK(*sleeper.waits == std::vector<std::chrono::milliseconds>{100ms, 200ms, 400ms});
}

TEST_CASE("with_transaction_retry leaves other errors alone", "[resilience]") {
  sleep_recorder sleeper;
  for (errc code : {errc::connection_lost, errc::outcome_unknown, errc::busy, errc::lock_timeout,
                    errc::constraint_violation}) {
    INFO(infra::to_string(code));
    tx_database db;
    CHECK_THROWS_AS(res::with_transaction_retry(
                        db, [&](tx_database&) { throw db_error(code); }, {.sleep = sleeper}),
                    infra::database_error);
    CHECK(db.transactions == 1);
  }
  CHECK(sleeper.waits->empty());
}

TEST_CASE("with_transaction_retry takes retry_options and a custom predicate", "[resilience]") {
  sleep_recorder sleeper;
  tx_database db;
  int runs = 0;
  // A plain retry_options is used as given: its own 1000 ms delay.
  res::retry_options plain{.jitter = 0.0, .sleep = sleeper};
  res::with_transaction_retry(db, [&](tx_database&) {
    if (++runs == 1) throw db_error(errc::deadlock);
  }, plain);
  CHECK(*sleeper.waits == std::vector<std::chrono::milliseconds>{1000ms});
  // should_retry widens what is retried, e.g. SQLite busy.
  runs = 0;
  const auto r = res::with_transaction_retry(
      db,
      [&](tx_database&) -> std::string {
        if (++runs < 3) throw db_error(errc::busy);
        return "done";
      },
      {.should_retry = [](const std::exception& e) { return res::is_transient_error(e); },
       .sleep = sleeper});
  CHECK(r == "done");
  CHECK(runs == 3);
  CHECK(res::transaction_retry_options{}.delay == 100ms);
}

TEST_CASE("with_transaction_retry validates options and needs a transaction capability", "[resilience]") {
  tx_database db;
  const std::string message = invalid_argument_message(
      [&] { res::with_transaction_retry(db, [](tx_database&) {}, {.max_attempts = 0}); });
  CHECK(message.find("transaction_retry_options.max_attempts") != std::string::npos);
  CHECK(db.transactions == 0);
  static_assert(!can_retry_transaction<kysera::test::minimal_database>);
  static_assert(can_retry_transaction<tx_database>);
}

TEST_CASE("with_retry around a fake database recovers from scripted failures", "[resilience]") {
  kysera::test::fake_database db;
  db.fail_next(errc::connection_lost);
  db.fail_next(errc::too_many_connections);
  sleep_recorder sleeper;
  res::with_retry([&] { db.execute("SELECT 1"); }, {.delay = 10ms, .jitter = 0.0, .sleep = sleeper});
  CHECK(db.execute_count() == 3);
  CHECK(*sleeper.waits == std::vector<std::chrono::milliseconds>{10ms, 20ms});
}

// ---------------------------------------------------------------- issue 17: outages, breaker, give-up

TEST_CASE("is_retryable_before_commit accepts the errors raised before COMMIT was sent", "[resilience]") {
  for (errc code : {errc::serialization_failure, errc::deadlock, errc::connection_refused, errc::connection_lost,
                    errc::too_many_connections, errc::busy}) {
    INFO(infra::to_string(code));
    CHECK(res::is_retryable_before_commit(db_error(code)));
  }
  for (errc code : {errc::outcome_unknown, errc::timeout, errc::lock_timeout, errc::constraint_violation,
                    errc::authentication_failed, errc::query_failed, errc::circuit_open, errc::cancelled}) {
    INFO(infra::to_string(code));
    CHECK_FALSE(res::is_retryable_before_commit(db_error(code)));
  }
  CHECK_FALSE(res::is_retryable_before_commit(std::runtime_error("x")));
}

TEST_CASE("outage_retry_options reruns a transaction through a restart but never an unknown outcome", "[resilience]") {
  const res::transaction_retry_options preset = res::outage_retry_options();
  CHECK(preset.max_attempts == 6);
  CHECK(preset.delay == 250ms);
  CHECK(preset.max_delay == 5000ms);
  CHECK(preset.wait_for_circuit);
  for (errc code : {errc::connection_refused, errc::connection_lost, errc::too_many_connections, errc::busy}) {
    INFO(infra::to_string(code));
    // The default gives up on the first failure of a restart...
    {
      tx_database db;
      sleep_recorder sleeper;
      CHECK_THROWS_AS(res::with_transaction_retry(db, [&](tx_database&) { throw db_error(code); }, {.sleep = sleeper}),
                      infra::database_error);
      CHECK(db.transactions == 1);
    }
    // ...the preset reruns the whole transaction until the database is back.
    tx_database db;
    sleep_recorder sleeper;
    auto o = res::outage_retry_options();
    o.jitter = 0.0;
    o.sleep = sleeper;
    int runs = 0;
    const int n = res::with_transaction_retry(
        db,
        [&](tx_database& tx) {
          tx.execute("INSERT INTO orders");
          if (++runs < 4) throw db_error(code);
          return runs;
        },
        o);
    CHECK(n == 4);
    CHECK(db.transactions == 4);
    CHECK(*sleeper.waits == std::vector<std::chrono::milliseconds>{250ms, 500ms, 1000ms});
  }
  // A COMMIT whose session broke may have committed: one attempt, never a second order.
  tx_database db;
  auto o = res::outage_retry_options();
  o.sleep = sleep_recorder{};
  CHECK_THROWS_AS(res::with_transaction_retry(db, [](tx_database&) { throw db_error(errc::outcome_unknown); }, o),
                  infra::database_error);
  CHECK(db.transactions == 1);
}

namespace {
/// A sleeper that moves the manual clock instead of waiting, and records each wait.
struct clock_sleeper {
  std::shared_ptr<std::vector<std::chrono::milliseconds>> waits =
      std::make_shared<std::vector<std::chrono::milliseconds>>();
  void operator()(std::chrono::milliseconds d) const {
    waits->push_back(d);
    kysera::test::manual_clock::advance(d);
  }
};
}  // namespace

TEST_CASE("with_retry waits for the breaker's retry_after when wait_for_circuit is on", "[resilience]") {
  kysera::test::manual_clock::reset();
  res::basic_circuit_breaker<kysera::test::manual_clock> breaker(1, 5000ms);
  int calls = 0;
  auto attempt = [&] {
    return breaker.execute([&] {
      if (++calls == 1) throw db_error(errc::connection_lost);  // opens the circuit (threshold 1)
      return 7;
    });
  };

  SECTION("off (the default): the first rejection ends the retry") {
    clock_sleeper sleeper;
    CHECK_THROWS_AS(res::with_retry(attempt, {.max_attempts = 3, .delay = 100ms, .jitter = 0.0, .sleep = sleeper}),
                    res::circuit_breaker_error);
    CHECK(calls == 1);
    CHECK(*sleeper.waits == std::vector<std::chrono::milliseconds>{100ms});
  }
  SECTION("on: the retry sleeps until the probe is due, and the probe succeeds") {
    clock_sleeper sleeper;
    std::vector<int> retried;
    const int v = res::with_retry(attempt, {.max_attempts = 3, .delay = 100ms, .jitter = 0.0,
                                            .on_retry = [&](int k, const std::exception&) { retried.push_back(k); },
                                            .sleep = sleeper, .wait_for_circuit = true});
    CHECK(v == 7);
    CHECK(calls == 2);
    // 100 ms backoff after the failure, then the rest of reset_time after the rejection.
    CHECK(*sleeper.waits == std::vector<std::chrono::milliseconds>{100ms, 4900ms});
    CHECK(retried == std::vector<int>{1, 2});
    CHECK(breaker.is_closed());
  }
}

TEST_CASE("wait_for_circuit waits the backoff while a probe runs and never beyond max_delay", "[resilience]") {
  sleep_recorder sleeper;
  int calls = 0;
  CHECK(res::with_retry(
            [&] {
              ++calls;
              if (calls == 1) throw res::circuit_breaker_error(res::circuit_state::half_open, 0ms);
              if (calls == 2) throw res::circuit_breaker_error(res::circuit_state::open, 60000ms);
              return calls;
            },
            {.delay = 100ms, .max_delay = 1000ms, .jitter = 0.0, .sleep = sleeper, .wait_for_circuit = true}) == 3);
  CHECK(*sleeper.waits == std::vector<std::chrono::milliseconds>{100ms, 1000ms});
  // A rejection still uses up an attempt.
  calls = 0;
  CHECK_THROWS_AS(res::with_retry([&] { ++calls; throw res::circuit_breaker_error(res::circuit_state::open, 10ms); },
                                  {.max_attempts = 2, .sleep = sleeper, .wait_for_circuit = true}),
                  res::circuit_breaker_error);
  CHECK(calls == 2);
}

TEST_CASE("on_give_up sees the final failure once, so on_retry plus on_give_up count every failed attempt", "[resilience]") {
  sleep_recorder sleeper;
  int retries = 0;
  std::vector<std::pair<int, std::string>> gave_up;
  res::retry_options o{.max_attempts = 3, .on_retry = [&](int, const std::exception&) { ++retries; }, .sleep = sleeper,
                       .on_give_up = [&](int attempts, const std::exception& e) { gave_up.emplace_back(attempts, e.what()); }};

  SECTION("attempts ran out") {
    int k = 0;
    CHECK_THROWS_AS(res::with_retry([&] { throw marked_error(++k); }, o), marked_error);
    CHECK(retries == 2);
    REQUIRE(gave_up.size() == 1);
    CHECK(gave_up[0].first == 3);
    CHECK(retries + static_cast<int>(gave_up.size()) == k);
  }
  SECTION("an error not worth a retry") {
    CHECK_THROWS_AS(res::with_retry([]() -> int { throw db_error(errc::constraint_violation); }, o), infra::database_error);
    CHECK(retries == 0);
    REQUIRE(gave_up.size() == 1);
    CHECK(gave_up[0].first == 1);
  }
  SECTION("success: no give-up") {
    int k = 0;
    CHECK(res::with_retry([&] { if (++k < 2) throw db_error(errc::timeout); return k; }, o) == 2);
    CHECK(retries == 1);
    CHECK(gave_up.empty());
  }
  SECTION("a throwing hook does not replace the error") {
    o.on_give_up = [](int, const std::exception&) { throw std::logic_error("hook"); };
    CHECK_THROWS_AS(res::with_retry([]() -> int { throw db_error(errc::constraint_violation); }, o), infra::database_error);
  }
  SECTION("with_transaction_retry has it too") {
    tx_database db;
    int attempts_seen = 0;
    CHECK_THROWS_AS(res::with_transaction_retry(db, [](tx_database&) { throw db_error(errc::deadlock); },
                                                {.max_attempts = 2, .sleep = sleeper,
                                                 .on_give_up = [&](int attempts, const std::exception&) { attempts_seen = attempts; }}),
                    infra::database_error);
    CHECK(attempts_seen == 2);
  }
}

// ---------------------------------------------------------------- the ambient deadline

TEST_CASE("with_retry starts no attempt whose wait would run into the ambient deadline", "[resilience][deadline]") {
  int attempts = 0;
  std::vector<std::chrono::milliseconds> waits;
  res::retry_options o;
  o.max_attempts = 10;
  o.delay = 1000ms;
  o.backoff = false;
  o.sleep = [&](std::chrono::milliseconds d) { waits.push_back(d); };
  auto fail = [&]() -> int {
    ++attempts;
    throw infra::database_error(errc::connection_lost, "lost", "fake");
  };
  {
    infra::deadline_scope scope(300ms);  // a 1 s wait would end after it
    try {
      (void)res::with_retry(fail, o);
      FAIL("expected the last error");
    } catch (const infra::database_error& e) {
      CHECK(e.code() == errc::connection_lost);  // the last error, unchanged
    }
    CHECK(attempts == 1);
    CHECK(waits.empty());
  }
  attempts = 0;
  {
    infra::deadline_scope scope(1h);  // far enough: the retry runs all its attempts
    CHECK_THROWS_AS(res::with_retry(fail, o), infra::database_error);
    CHECK(attempts == 10);
    CHECK(waits.size() == 9);
  }
}

TEST_CASE("with_retry under a deadline that has passed makes one attempt only", "[resilience][deadline]") {
  int attempts = 0;
  res::retry_options o;
  o.max_attempts = 5;
  o.delay = 0ms;
  o.sleep = [](std::chrono::milliseconds) {};
  infra::deadline_scope scope(std::chrono::steady_clock::now() - 1ms);
  CHECK_THROWS_AS(res::with_retry(
                      [&]() -> int {
                        ++attempts;
                        throw infra::database_error(errc::timeout, "cut", "fake");
                      },
                      o),
                  infra::database_error);
  CHECK(attempts == 1);
}
