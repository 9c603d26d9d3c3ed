// kysera-check: a database health probe for containers and scripts.
//
//   kysera-check URL [--json] [--timeout 2s] [--verbose]
//
// Runs perform_health_check against URL (sqlite://..., postgres://..., mysql://...) and prints a
// report (or JSON, written by health::to_json). Exit status: 0 healthy, 1 degraded, 2 unhealthy,
// 64 usage error. A probe never creates anything: a SQLite file that does not exist is
// reported as unhealthy, not created.
#include <kysera/infra.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace infra = kysera::infra;
namespace health = kysera::infra::health;
using namespace std::chrono_literals;

namespace {

constexpr int exit_usage = 64;

const char* usage_text =
    "usage: kysera-check URL [--json] [--timeout DURATION] [--verbose]\n"
    "  URL          sqlite:///path/to.db | postgres://user:pass@host:port/db | mysql://user:pass@host:port/db\n"
    "               (a SQLite file that does not exist is unhealthy; it is never created)\n"
    "  --json       print the result as application/health+json\n"
    "  --timeout D  bound on the check, e.g. 500ms, 2s, 1m (default 5s)\n"
    "  --verbose    include the server version\n"
    "exit status: 0 healthy, 1 degraded, 2 unhealthy, 64 bad arguments\n";

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t i = 0;
  long long value = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    value = value * 10 + (text[i] - '0');
    if (value > 86'400'000) return std::nullopt;
    ++i;
  }
  if (i == 0) return std::nullopt;
  std::string_view unit = text.substr(i);
  if (unit == "ms") return std::chrono::milliseconds(value);
  if (unit == "s" || unit.empty()) return std::chrono::milliseconds(value * 1000);
  if (unit == "m") return std::chrono::milliseconds(value * 60'000);
  return std::nullopt;
}

void print_text(const std::string& target, const health::health_check_result& r) {
  std::printf("%s: %s\n", target.c_str(), std::string(health::to_string(r.status)).c_str());
  for (const auto& c : r.checks) {
    std::printf("  %s: %s - %s\n", c.name.c_str(), std::string(health::to_string(c.status)).c_str(),
                c.message.c_str());
  }
  if (r.metrics.check_latency) std::printf("  latency: %.2f ms\n", *r.metrics.check_latency);
  if (r.metrics.database_version) std::printf("  version: %s\n", r.metrics.database_version->c_str());
  for (const auto& e : r.errors) std::printf("  error: %s\n", e.c_str());
}

int exit_code(health::health_status s) {
  switch (s) {
    case health::health_status::healthy: return 0;
    case health::health_status::degraded: return 1;
    case health::health_status::unhealthy: return 2;
  }
  return 2;
}

// A connection that cannot even be opened is reported as an unhealthy check, like any failure.
health::health_check_result open_failure(const std::string& message) {
  health::health_check_result r{};
  r.status = health::health_status::unhealthy;
  r.checks.push_back({"Database Connection", health::health_status::unhealthy, message});
  r.errors.push_back(message);
  r.timestamp = std::chrono::system_clock::now();
  return r;
}

template <class Connection, class... ConnectionOptions>
health::health_check_result check(const std::string& url, const health::health_check_options& options,
                                  ConnectionOptions... connection_options) {
  try {
    Connection db(url, connection_options...);
    return health::perform_health_check(db, options);
  } catch (const std::exception& e) {
    return open_failure(e.what());
  }
}

#if defined(KYSERA_INFRA_HAS_SQLITE)
// The file a plain sqlite:///path or sqlite://relative/path URL names, for the message about a
// missing file; empty for the other forms (memory, %-escapes), which keep the adapter's message.
std::string sqlite_file(std::string_view url) {
  constexpr std::string_view prefix = "sqlite://";
  if (url.substr(0, prefix.size()) != prefix) return {};
  std::string_view path = url.substr(prefix.size());
  path = path.substr(0, path.find('?'));
  if (path.empty() || path == ":memory:" || path.find('%') != std::string_view::npos) return {};
  return std::string(path);
}

// Opens without SQLITE_OPEN_CREATE: a typo in the path must not leave an empty database behind
// and report it healthy.
health::health_check_result check_sqlite(const std::string& url, const health::health_check_options& options) {
  infra::sqlite::connection_options no_create;
  no_create.create = false;
  health::health_check_result r = check<infra::sqlite::connection>(url, options, no_create);
  const std::string file = sqlite_file(url);
  std::error_code ec;
  if (r.status == health::health_status::unhealthy && !file.empty() &&
      !std::filesystem::exists(file, ec) && !ec) {
    r = open_failure("SQLite database file '" + file +
                     "' does not exist (kysera-check never creates a database; check the path)");
  }
  return r;
}

bool asks_to_create(std::string_view url) {
  const auto query = url.find('?');
  return query != std::string_view::npos && url.substr(query).find("mode=rwc") != std::string_view::npos;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  std::string url;
  bool json = false;
  health::health_check_options options;
  options.logger = &infra::silent_logger();
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(usage_text, stdout);
      return 0;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--verbose") {
      options.verbose = true;
    } else if (arg == "--timeout") {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kysera-check: --timeout needs a duration such as 2s\n%s", usage_text);
        return exit_usage;
      }
      auto d = parse_duration(argv[++i]);
      if (!d || d->count() <= 0) {
        std::fprintf(stderr, "kysera-check: bad --timeout '%s' (use e.g. 500ms, 2s, 1m)\n", argv[i]);
        return exit_usage;
      }
      options.timeout = *d;
    } else if (!arg.empty() && arg.front() == '-') {
      std::fprintf(stderr, "kysera-check: unknown option '%s'\n%s", argv[i], usage_text);
      return exit_usage;
    } else if (url.empty()) {
      url = std::string(arg);
    } else {
      std::fprintf(stderr, "kysera-check: more than one URL given\n%s", usage_text);
      return exit_usage;
    }
  }
  if (url.empty()) {
    std::fprintf(stderr, "kysera-check: missing URL\n%s", usage_text);
    return exit_usage;
  }

  std::string scheme = url.substr(0, url.find(':'));
  std::optional<health::health_check_result> result;
#if defined(KYSERA_INFRA_HAS_SQLITE)
  if (scheme == "sqlite") {
    if (asks_to_create(url)) {
      std::fprintf(stderr, "kysera-check: a probe never creates a database; drop mode=rwc from the URL\n");
      return exit_usage;
    }
    result = check_sqlite(url, options);
  }
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
  if (scheme == "postgres" || scheme == "postgresql") result = check<infra::postgres::connection>(url, options);
#endif
#if defined(KYSERA_INFRA_HAS_MYSQL)
  if (scheme == "mysql" || scheme == "mariadb") result = check<infra::mysql::connection>(url, options);
#endif
  if (!result) {
    std::fprintf(stderr, "kysera-check: unsupported URL scheme '%s' in this build\n", scheme.c_str());
    return exit_usage;
  }
  std::string target = scheme + " database";
  if (json) {
    std::printf("%s\n", health::to_json(*result).c_str());
  } else {
    print_text(target, *result);
  }
  return exit_code(result->status);
}
