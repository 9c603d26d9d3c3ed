#pragma once
// curl as the real HTTP client of the endpoint tests: status code and body of one request.
#include <array>
#include <cstdio>
#include <memory>
#include <string>

namespace kysera::test::curl {

struct reply {
  int status = 0;  // 0: curl failed (nothing listening)
  std::string body;
};

/// GET http://127.0.0.1:<port><path> with optional extra curl arguments (`-H 'Accept: ...'`).
inline reply get(int port, const std::string& path, const std::string& extra = "") {
  const std::string cmd = "curl -s --max-time 10 " + extra + " -w '\\n%{http_code}' 'http://127.0.0.1:" +
                          std::to_string(port) + path + "' 2>/dev/null";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  reply r;
  if (!pipe) return r;
  std::string out;
  std::array<char, 4096> buffer{};
  std::size_t n = 0;
  while ((n = std::fread(buffer.data(), 1, buffer.size(), pipe.get())) > 0) out.append(buffer.data(), n);
  const auto nl = out.rfind('\n');
  if (nl == std::string::npos) return r;
  r.status = std::atoi(out.c_str() + nl + 1);
  r.body = out.substr(0, nl);
  return r;
}

}  // namespace kysera::test::curl
