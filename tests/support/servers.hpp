#pragma once
// Access to the PostgreSQL and MariaDB servers that tests/support/servers.sh runs for the suite.
//
// The ctest fixture `servers.up` starts them (or finds them running, when a script shares one set
// between several builds); tests read their URLs here and drive faults through servers::control.
// A test that needs a server and finds none FAILS: the suite never silently skips backends.

#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>

namespace kysera::test::servers {

inline std::string state_dir() {
  if (const char* env = std::getenv("KYSERA_TEST_SERVER_DIR"); env && *env) return env;
#ifdef KYSERA_TEST_SERVER_DIR
  return KYSERA_TEST_SERVER_DIR;
#else
  throw std::runtime_error("KYSERA_TEST_SERVER_DIR is not set");
#endif
}

inline std::map<std::string, std::string> read_env() {
  std::map<std::string, std::string> values;
  std::ifstream in(state_dir() + "/server.env");
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return values;
}

inline std::string require(const char* key) {
  if (const char* env = std::getenv(key); env && *env) return env;
  auto values = read_env();
  auto it = values.find(key);
  if (it == values.end() || it->second.empty()) {
    throw std::runtime_error(std::string("test server not available: ") + key +
                             " (run the suite through ctest, which starts the servers)");
  }
  return it->second;
}

/// postgres://postgres:<password>@127.0.0.1:<port>/postgres
inline std::string postgres_url() { return require("KYSERA_TEST_POSTGRES_URL"); }
/// mysql://kysera:<password>@127.0.0.1:<port>/kysera_test
inline std::string mysql_url() { return require("KYSERA_TEST_MYSQL_URL"); }
/// The MariaDB server's unix socket.
inline std::string mysql_socket() { return require("KYSERA_TEST_MYSQL_SOCKET"); }
/// Where the MariaDB TLS files are: ca.pem (signed the server's certificate), client-cert.pem and
/// client-key.pem (signed by ca.pem), other-ca.pem (signed nothing the server uses).
inline std::string mysql_tls_dir() { return require("KYSERA_TEST_MYSQL_TLS_DIR"); }

/// The replication tests' servers (fixture `replication`, its own state directory): the
/// PostgreSQL replica of postgres_url()'s server, and the MariaDB primary and replica as the
/// application account `kysera_app` (no READ ONLY ADMIN, so the replica's read_only binds it).
inline std::string postgres_replica_url() { return require("KYSERA_TEST_POSTGRES_REPLICA_URL"); }
inline std::string mysql_app_url() { return require("KYSERA_TEST_MYSQL_APP_URL"); }
inline std::string mysql_replica_url() { return require("KYSERA_TEST_MYSQL_REPLICA_URL"); }

/// The passwords the servers were set up with (tests check they never leak).
inline std::string postgres_password() { return "pg-Secret-7d2f"; }
inline std::string mysql_password() { return "my-Secret-91ac"; }

/// Runs `servers.sh <command> <server>`: start, stop, restart, kill, pause, resume.
/// `server` is "postgres" or "mysql". Throws when the script fails.
inline void control(const std::string& command, const std::string& server) {
#ifndef KYSERA_TEST_SERVERS_SCRIPT
#error "KYSERA_TEST_SERVERS_SCRIPT must name tests/support/servers.sh"
#endif
  std::string cmd = "KYSERA_TEST_SERVER_DIR='" + state_dir() + "' bash '" KYSERA_TEST_SERVERS_SCRIPT
                    "' " + command + " " + server + " >/dev/null 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    throw std::runtime_error("servers.sh " + command + " " + server + " failed");
  }
}

/// Resumes a paused server when it goes out of scope, so a failing assertion cannot leave the
/// shared server frozen for the tests after it.
struct pause_guard {
  std::string server;
  explicit pause_guard(std::string s) : server(std::move(s)) { control("pause", server); }
  void resume() {
    if (!server.empty()) control("resume", server);
    server.clear();
  }
  ~pause_guard() {
    try { resume(); } catch (...) {}
  }
  pause_guard(const pause_guard&) = delete;
  pause_guard& operator=(const pause_guard&) = delete;
};

/// Brings a stopped server back when it goes out of scope.
struct stop_guard {
  std::string server;
  explicit stop_guard(std::string s) : server(std::move(s)) { control("stop", server); }
  void start() {
    if (!server.empty()) control("start", server);
    server.clear();
  }
  ~stop_guard() {
    try { start(); } catch (...) {}
  }
  stop_guard(const stop_guard&) = delete;
  stop_guard& operator=(const stop_guard&) = delete;
};

}  // namespace kysera::test::servers
