#pragma once
// Helpers of the reliability suite (bad input catalogue and secrets test): catching an expected
// exception and returning its message, a bounded "must not hang" runner, a capturing logger, a
// collector of every text the library produced, and the secret scanner that greps them.

#include "support/catch.hpp"

#include <kysera/infra/detail/url.hpp>
#include <kysera/infra/error.hpp>
#include <kysera/infra/logger.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <typeinfo>
#include <utility>
#include <vector>

namespace kysera::test::reliability {

/// What a call threw, summarised for assertions: nothing, a database_error (with its code), an
/// invalid_argument, another std::exception, or something else.
struct outcome {
  enum class kind { none, database_error, invalid_argument, logic_error, other_std, non_std };
  kind what = kind::none;
  std::optional<infra::errc> code;  ///< for database_error
  std::string message;              ///< what()
  std::string type;                 ///< typeid name, for diagnostics

  bool threw() const noexcept { return what != kind::none; }
  bool is(infra::errc c) const noexcept { return what == kind::database_error && code == c; }
  /// "database_error[invalid_url]: message" (for INFO lines).
  std::string describe() const {
    switch (what) {
      case kind::none: return "no exception";
      case kind::database_error:
        return "database_error[" + std::string(infra::to_string(*code)) + "]: " + message;
      case kind::invalid_argument: return "invalid_argument: " + message;
      case kind::logic_error: return "logic_error (" + type + "): " + message;
      case kind::other_std: return type + ": " + message;
      case kind::non_std: return "a non-std exception";
    }
    return "?";
  }
};

/// Runs `fn` and reports what it threw (never lets anything escape).
template <class F>
outcome capture(F&& fn) {
  outcome o;
  try {
    std::forward<F>(fn)();
  } catch (const infra::database_error& e) {
    o.what = outcome::kind::database_error;
    o.code = e.condition();
    o.message = e.what();
    o.type = typeid(e).name();
  } catch (const std::invalid_argument& e) {
    o.what = outcome::kind::invalid_argument;
    o.message = e.what();
    o.type = typeid(e).name();
  } catch (const std::logic_error& e) {
    o.what = outcome::kind::logic_error;
    o.message = e.what();
    o.type = typeid(e).name();
  } catch (const std::exception& e) {
    o.what = outcome::kind::other_std;
    o.message = e.what();
    o.type = typeid(e).name();
  } catch (...) {
    o.what = outcome::kind::non_std;
  }
  return o;
}

/// Asserts that `fn` throws `std::invalid_argument` whose message names `field`.
#define KYSERA_INFRA_REQUIRE_INVALID(field, ...)                                     \
  do {                                                                               \
    auto kysera_outcome_ = ::kysera::test::reliability::capture([&] { __VA_ARGS__; }); \
    INFO("expected invalid_argument naming '" << (field) << "', got "               \
                                              << kysera_outcome_.describe());        \
    CHECK(kysera_outcome_.what ==                                                    \
          ::kysera::test::reliability::outcome::kind::invalid_argument);             \
    CHECK(kysera_outcome_.message.find(field) != std::string::npos);                 \
  } while (false)

/// Runs `fn` on a helper thread and waits at most `limit` for it. A call that does not return in
/// time ends the test process with a message (a hang is a failure, and the hung thread cannot be
/// reclaimed); otherwise whatever `fn` threw is rethrown here. Use it around calls that must never
/// hang: close/stop/execute-after-close and the like.
template <class F>
void run_bounded(const char* label, std::chrono::milliseconds limit, F&& fn) {
  struct state {
    std::mutex mutex;
    std::condition_variable cv;
    bool done = false;
    std::exception_ptr error;
  };
  auto s = std::make_shared<state>();
  std::function<void()> body = std::forward<F>(fn);
  std::thread([s, body = std::move(body)] {
    std::exception_ptr error;
    try {
      body();
    } catch (...) {
      error = std::current_exception();
    }
    {
      std::lock_guard lock(s->mutex);
      s->error = error;
      s->done = true;
    }
    s->cv.notify_all();
  }).detach();
  std::unique_lock lock(s->mutex);
  if (!s->cv.wait_for(lock, limit, [&] { return s->done; })) {
    std::fprintf(stderr, "HANG: '%s' did not return within %lld ms\n", label,
                 static_cast<long long>(limit.count()));
    std::fflush(nullptr);
    std::_Exit(3);
  }
  if (s->error) std::rethrow_exception(s->error);
}

/// A thread-safe list of labelled texts: every message, log line and result the library produced
/// during a test, to be grepped for secrets at the end.
class text_collector {
 public:
  void add(std::string label, std::string text) {
    std::lock_guard lock(mutex_);
    entries_.emplace_back(std::move(label), std::move(text));
  }
  void add(std::string label, const outcome& o) {
    if (o.threw()) add(std::move(label), o.describe());
  }
  std::vector<std::pair<std::string, std::string>> entries() const {
    std::lock_guard lock(mutex_);
    return entries_;
  }
  std::size_t size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }
  /// How many entries have a label starting with `prefix`.
  std::size_t count(std::string_view prefix) const {
    std::lock_guard lock(mutex_);
    std::size_t n = 0;
    for (const auto& e : entries_) {
      if (std::string_view(e.first).substr(0, prefix.size()) == prefix) ++n;
    }
    return n;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::string, std::string>> entries_;
};

/// A logger (made with `infra::make_logger`) that copies every line into `sink`, labelled
/// "log:<name>:<level>". Keep it alive while the options that point at it are in use.
///
///     auto log = collecting_logger(sink, "pool");
///     options.logger = &log;
inline auto collecting_logger(text_collector& sink, std::string name) {
  return infra::make_logger([&sink, name = std::move(name)](infra::log_level level, std::string_view message) {
    sink.add("log:" + name + ":" + std::string(infra::to_string(level)), std::string(message));
  });
}

/// RFC 3986 percent-encoding of everything but unreserved characters (upper-case hex): the
/// library's own, as the adapters use it.
using infra::detail::percent_encode;

/// The same with lower-case hex digits (a driver may echo either form).
inline std::string percent_encode_lower(std::string_view value) {
  std::string out = percent_encode(value);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '%' && i + 2 < out.size()) {
      for (std::size_t k = i + 1; k <= i + 2; ++k) {
        if (out[k] >= 'A' && out[k] <= 'F') out[k] = static_cast<char>(out[k] - 'A' + 'a');
      }
    }
  }
  return out;
}

/// Every form of each secret that must never appear: as given, percent-encoded (both cases).
inline std::vector<std::string> secret_forms(const std::vector<std::string>& secrets) {
  std::vector<std::string> forms;
  auto add = [&](std::string s) {
    if (s.empty()) return;
    for (const auto& f : forms) {
      if (f == s) return;
    }
    forms.push_back(std::move(s));
  };
  for (const auto& s : secrets) {
    add(s);
    add(percent_encode(s));
    add(percent_encode_lower(s));
  }
  return forms;
}

/// The first secret form found in `text`, if any.
inline std::optional<std::string> find_secret(std::string_view text, const std::vector<std::string>& forms) {
  for (const auto& f : forms) {
    if (text.find(f) != std::string_view::npos) return f;
  }
  return std::nullopt;
}

/// Asserts that no collected text contains any form of any secret (one CHECK per text, so a
/// failure names every leaking text).
inline void require_no_secret(const text_collector& sink, const std::vector<std::string>& secrets) {
  const auto forms = secret_forms(secrets);
  for (const auto& [label, text] : sink.entries()) {
    auto leaked = find_secret(text, forms);
    INFO("text '" << label << "': " << text);
    CHECK_FALSE(leaked.has_value());
  }
}

/// Redirects the process's stderr (fd 2) into a temporary file while it lives, so a test can grep
/// everything written there (the console logger, driver notices). On destruction the captured
/// text is copied back to the real stderr, so nothing (e.g. a sanitizer report) is lost.
class stderr_capture {
 public:
  stderr_capture() {
    std::fflush(stderr);
    file_ = std::tmpfile();
    if (file_ == nullptr) throw std::runtime_error("stderr_capture: tmpfile failed");
    // Close-on-exec: a server that a test (re)starts must not inherit the real stderr, or the
    // test runner would wait for that pipe to close long after the test ended.
    ::fcntl(::fileno(file_), F_SETFD, FD_CLOEXEC);
    saved_ = ::fcntl(2, F_DUPFD_CLOEXEC, 3);
    if (saved_ < 0 || ::dup2(::fileno(file_), 2) < 0) {
      std::fclose(file_);
      throw std::runtime_error("stderr_capture: dup failed");
    }
  }
  ~stderr_capture() {
    std::string captured = text();
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    std::fclose(file_);
    if (!captured.empty()) std::fwrite(captured.data(), 1, captured.size(), stderr);
  }
  stderr_capture(const stderr_capture&) = delete;
  stderr_capture& operator=(const stderr_capture&) = delete;

  /// Everything written to stderr so far.
  std::string text() const {
    std::fflush(stderr);
    std::string out;
    const int fd = ::fileno(file_);
    char buffer[4096];
    off_t offset = 0;
    for (;;) {
      const ssize_t n = ::pread(fd, buffer, sizeof buffer, offset);
      if (n <= 0) break;
      out.append(buffer, static_cast<std::size_t>(n));
      offset += n;
    }
    return out;
  }

 private:
  std::FILE* file_ = nullptr;
  int saved_ = -1;
};

/// Sets an environment variable for the lifetime of the object, then restores it.
class scoped_env {
 public:
  scoped_env(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = std::string(old);
    if (value) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~scoped_env() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  scoped_env(const scoped_env&) = delete;
  scoped_env& operator=(const scoped_env&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

}  // namespace kysera::test::reliability
