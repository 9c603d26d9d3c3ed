#pragma once
// The test servers' URLs for the benchmarks that use them (health_bench, deadline_bench).

#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

namespace kysera::bench {

/// A URL from the environment, or from <KYSERA_TEST_SERVER_DIR>/server.env.
inline std::optional<std::string> server_url(const char* key) {
  if (const char* v = std::getenv(key); v && *v) return std::string(v);
  const char* dir = std::getenv("KYSERA_TEST_SERVER_DIR");
  if (!dir || !*dir) return std::nullopt;
  std::ifstream in(std::string(dir) + "/server.env");
  std::string line;
  const std::string prefix = std::string(key) + "=";
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return std::nullopt;
}

}  // namespace kysera::bench
