#pragma once
// What the integration children of the shutdown tests (child_pg_main.cpp, child_mysql_main.cpp)
// share: their output lines ("mark:<event>" from the scenario, "log:<level>:<message>" from the
// logger handed to the pool and the shutdown), and the main thread's wait for signals.

#include <kysera/infra/logger.hpp>

#include <unistd.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace kysera::test::shutdown_child {

/// One line on stdout with a single write(2), so lines from several threads never interleave.
inline void say(std::string_view prefix, std::string_view text) {
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

inline void mark(std::string_view event) { say("mark:", event); }

/// Blocks the calling thread for good (the shutdown's threads have every signal blocked).
[[noreturn]] inline void block_forever() {
  for (;;) ::pause();
}

/// A logger that prints every message as "log:<level>:<message>".
inline infra::logger& child_logger() {
  static auto log = infra::make_logger([](infra::log_level level, std::string_view message) {
    std::string prefix = "log:";
    prefix += infra::to_string(level);
    prefix += ':';
    say(prefix, message);
  });
  return log;
}

}  // namespace kysera::test::shutdown_child
