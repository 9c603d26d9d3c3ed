#pragma once
/// \file
/// A minimal logging interface: every option struct that logs takes an `infra::logger*`.

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace kysera::infra {

enum class log_level { trace, debug, info, warn, error, fatal };

constexpr std::string_view to_string(log_level level) noexcept {
  switch (level) {
    case log_level::trace: return "trace";
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warn: return "warn";
    case log_level::error: return "error";
    case log_level::fatal: return "fatal";
  }
  return "unknown";
}

/// Thread-safe: `log` may be called from any thread; implementers override `write`, which the
/// base class calls under its own lock, so a sink needs no locking of its own. A `write` that
/// throws is swallowed: logging never fails the caller.
///
///     struct my_sink : kysera::infra::logger {
///       void write(kysera::infra::log_level, std::string_view msg) override { ... }
///     };
class logger {
 public:
  virtual ~logger() = default;

  /// Messages below `level` are dropped. Default: `trace` (all), except the console logger (`info`).
  void set_level(log_level level) noexcept { level_.store(level, std::memory_order_relaxed); }
  log_level level() const noexcept { return level_.load(std::memory_order_relaxed); }
  bool should_log(log_level level) const noexcept { return level >= this->level(); }

  void log(log_level level, std::string_view message) noexcept {
    if (!should_log(level)) return;
    try {
      std::lock_guard lock(mutex_);
      write(level, message);
    } catch (...) {
      // A failing sink must not turn a log call into an error of the caller.
    }
  }

  void trace(std::string_view m) noexcept { log(log_level::trace, m); }
  void debug(std::string_view m) noexcept { log(log_level::debug, m); }
  void info(std::string_view m) noexcept { log(log_level::info, m); }
  void warn(std::string_view m) noexcept { log(log_level::warn, m); }
  void error(std::string_view m) noexcept { log(log_level::error, m); }
  void fatal(std::string_view m) noexcept { log(log_level::fatal, m); }

 protected:
  logger() = default;
  logger(const logger&) = delete;
  logger& operator=(const logger&) = delete;

  /// Called with the base class's lock held; may throw (the exception is swallowed).
  virtual void write(log_level level, std::string_view message) = 0;

 private:
  std::atomic<log_level> level_{log_level::trace};
  std::mutex mutex_;
};

namespace detail {
class console_logger_impl final : public logger {
 public:
  console_logger_impl() { set_level(log_level::info); }

 protected:
  void write(log_level level, std::string_view message) override {
    std::string line = "[kysera:";
    line += to_string(level);
    line += "] ";
    line += message;
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stderr);
  }
};

class silent_logger_impl final : public logger {
 protected:
  void write(log_level, std::string_view) override {}
};
}  // namespace detail

/// Writes each message as one line to stderr, prefixed `[kysera:<level>] `. Thread-safe.
/// Its level starts at `info` (debug and trace are dropped); `console_logger().set_level(...)`
/// changes that for the whole process.
inline logger& console_logger() noexcept {
  static detail::console_logger_impl instance;
  return instance;
}

/// Drops everything. Thread-safe.
inline logger& silent_logger() noexcept {
  static detail::silent_logger_impl instance;
  return instance;
}

/// A logger that forwards to a callable `void(log_level, std::string_view)`. Thread-safe: calls
/// to the callable are serialised.
template <class F>
class callback_logger final : public logger {
 public:
  explicit callback_logger(F fn) : fn_(std::move(fn)) {}

 protected:
  void write(log_level level, std::string_view message) override { fn_(level, message); }

 private:
  F fn_;
};

/// Adapts any `void(log_level, std::string_view)` callable; keep the result alive while it is used.
///
///     auto log = kysera::infra::make_logger([](auto level, std::string_view m) { ... });
///     options.logger = &log;
template <class F>
  requires std::is_invocable_v<F&, log_level, std::string_view>
callback_logger<std::decay_t<F>> make_logger(F&& fn) {
  return callback_logger<std::decay_t<F>>(std::forward<F>(fn));
}

namespace detail {
/// The logger an option struct names, or the console logger where it names none.
inline logger& resolve(logger* l) noexcept { return l ? *l : console_logger(); }
}  // namespace detail

}  // namespace kysera::infra
