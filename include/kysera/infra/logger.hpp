#pragma once
/// \file
/// A minimal logging interface: every option struct that logs takes an `infra::logger*`; a null
/// one means the process-wide default (`set_default_logger`, initially `console_logger()`).

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "detail/process_wide.hpp"

namespace kysera::infra {

enum class log_level { trace, debug, info, warn, error, fatal };

/// The level every logger starts at, ours and those made with `make_logger` alike: info, warn,
/// error and fatal pass; debug and trace are dropped until `set_level` lowers it.
inline constexpr log_level default_log_level = log_level::info;

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

  /// Messages below `level` are dropped. Every logger starts at `default_log_level` (info).
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
  std::atomic<log_level> level_{default_log_level};
  std::mutex mutex_;
};

namespace detail {
class console_logger_impl final : public logger {
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
/// Its level starts at `default_log_level` (info: debug and trace are dropped);
/// `console_logger().set_level(...)` changes that for the whole process.
KYSERA_INFRA_PROCESS_WIDE inline logger& console_logger() noexcept {
  static detail::console_logger_impl instance;
  return instance;
}

/// Drops everything. Thread-safe.
KYSERA_INFRA_PROCESS_WIDE inline logger& silent_logger() noexcept {
  static detail::silent_logger_impl instance;
  return instance;
}

/// Thread-safe: calls to the callable are serialised. A logger that forwards to a callable
/// `void(log_level, std::string_view)`.
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
// Shared across shared libraries (process_wide.hpp), so `set_default_logger` reaches them all.
KYSERA_INFRA_PROCESS_WIDE inline std::atomic<logger*>& default_logger_slot() noexcept {
  static std::atomic<logger*> slot{nullptr};
  return slot;
}
}  // namespace detail

/// The logger every null `logger` field means: the one given to `set_default_logger`, else
/// `console_logger()`. Thread-safe.
inline logger& default_logger() noexcept {
  logger* l = detail::default_logger_slot().load(std::memory_order_acquire);
  return l ? *l : console_logger();
}

/// Makes `l` the process-wide default: every option struct whose `logger` is null (monitors,
/// breakers, pools, health checks, shutdown) logs to it. Set it at startup, before creating the
/// objects that log: most look the default up at each message, but a shutdown controller or
/// signal registration takes it when it is made. Null restores `console_logger()`. Returns the
/// previous one (null for the console logger). Thread-safe; `l` must outlive every use, so keep
/// it alive (a static) until the end of the process.
///
///     static auto log = kysera::infra::make_logger([](auto level, std::string_view m) { ... });
///     kysera::infra::set_default_logger(&log);
inline logger* set_default_logger(logger* l) noexcept {
  return detail::default_logger_slot().exchange(l, std::memory_order_acq_rel);
}

namespace detail {
/// The logger an option struct names, or the default logger where it names none.
inline logger& resolve(logger* l) noexcept { return l ? *l : default_logger(); }
}  // namespace detail

}  // namespace kysera::infra
