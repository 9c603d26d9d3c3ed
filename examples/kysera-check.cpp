// kysera-check: a database health probe for containers and scripts.
//
//   kysera-check URL [--json] [--timeout 2s] [--verbose]
//
// Runs perform_health_check against URL (sqlite://..., postgres://..., mysql://...) and prints a
// report (or JSON). Exit status: 0 healthy, 1 degraded, 2 unhealthy, 64 usage error.
#include <kysera/infra.hpp>

#include <chrono>
#include <cstdio>
#include <ctime>
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
    "  --json       print the result as JSON\n"
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

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string iso_time(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

void print_json(const health::health_check_result& r) {
  std::printf("{\"status\":\"%s\",\"timestamp\":\"%s\",\"checks\":[",
              std::string(health::to_string(r.status)).c_str(), iso_time(r.timestamp).c_str());
  for (std::size_t i = 0; i < r.checks.size(); ++i) {
    const auto& c = r.checks[i];
    std::printf("%s{\"name\":\"%s\",\"status\":\"%s\",\"message\":\"%s\"}", i ? "," : "",
                json_escape(c.name).c_str(), std::string(health::to_string(c.status)).c_str(),
                json_escape(c.message).c_str());
  }
  std::printf("],\"errors\":[");
  for (std::size_t i = 0; i < r.errors.size(); ++i) {
    std::printf("%s\"%s\"", i ? "," : "", json_escape(r.errors[i]).c_str());
  }
  std::printf("],\"metrics\":{");
  bool first = true;
  if (r.metrics.check_latency) {
    std::printf("\"check_latency_ms\":%.2f", *r.metrics.check_latency);
    first = false;
  }
  if (r.metrics.database_version) {
    std::printf("%s\"database_version\":\"%s\"", first ? "" : ",",
                json_escape(*r.metrics.database_version).c_str());
  }
  std::printf("}}\n");
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
health::health_check_result open_failure(const std::exception& e) {
  health::health_check_result r{};
  r.status = health::health_status::unhealthy;
  r.checks.push_back({"Database Connection", health::health_status::unhealthy, e.what()});
  r.errors.emplace_back(e.what());
  r.timestamp = std::chrono::system_clock::now();
  return r;
}

template <class Connection>
health::health_check_result check(const std::string& url, const health::health_check_options& options) {
  try {
    Connection db(url);
    return health::perform_health_check(db, options);
  } catch (const std::exception& e) {
    return open_failure(e);
  }
}

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
  if (scheme == "sqlite") result = check<infra::sqlite::connection>(url, options);
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
    print_json(*result);
  } else {
    print_text(target, *result);
  }
  return exit_code(result->status);
}
