#pragma once
/// \file
/// `spdlog_logger`: the library's log lines into an spdlog logger. Part of the optional CMake
/// component `spdlog` (target `kysera::infra-spdlog`); the core does not depend on spdlog.
///
///     #include <kysera/infra/logger/spdlog.hpp>
///     static kysera::infra::spdlog_logger log;  // spdlog::default_logger()
///     kysera::infra::set_default_logger(&log);

#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>
#include <utility>

#include "../logger.hpp"

namespace kysera::infra {

/// Thread-safe: forwards each message to an spdlog logger (serialised by our base class; spdlog
/// loggers with `_mt` sinks are thread-safe anyway). Levels map one to one (`fatal` is spdlog's
/// `critical`). The spdlog logger's own level and sinks decide what is written: this logger
/// passes every level on (its own threshold starts at trace), so set levels in spdlog as usual.
/// A failing sink is swallowed like any of our sinks.
class spdlog_logger final : public logger {
 public:
  /// Writes to `target` (default: spdlog's default logger at construction); kept alive here.
  explicit spdlog_logger(std::shared_ptr<spdlog::logger> target = spdlog::default_logger())
      : target_(std::move(target)) {
    set_level(log_level::trace);
  }

  const std::shared_ptr<spdlog::logger>& target() const noexcept { return target_; }

  static constexpr spdlog::level::level_enum to_spdlog(log_level level) noexcept {
    switch (level) {
      case log_level::trace:
        return spdlog::level::trace;
      case log_level::debug:
        return spdlog::level::debug;
      case log_level::info:
        return spdlog::level::info;
      case log_level::warn:
        return spdlog::level::warn;
      case log_level::error:
        return spdlog::level::err;
      case log_level::fatal:
        return spdlog::level::critical;
    }
    return spdlog::level::err;
  }

 protected:
  void write(log_level level, std::string_view message) override {
    if (!target_) return;
    // The string_view overload: the message is not a format string (braces stay as they are).
    target_->log(to_spdlog(level), spdlog::string_view_t(message.data(), message.size()));
  }

 private:
  std::shared_ptr<spdlog::logger> target_;
};

}  // namespace kysera::infra
