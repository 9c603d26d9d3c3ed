#pragma once
/// \file
/// What the HTTP endpoint answers, without any HTTP library: the status, media type and body
/// of `/livez`, `/readyz`, `/startupz`, `/healthz` and `/metrics`, the metrics format an
/// `Accept` header asks for, and `host:port` parsing. `server.hpp` puts these on cpp-httplib.

#include <charconv>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "../detail/port.hpp"
#include "../health/json.hpp"
#include "../health/probes.hpp"

namespace kysera::infra::http {

/// The two exposition formats a scraper may ask for.
enum class metrics_format { prometheus, openmetrics };

/// Prometheus text format 0.0.4.
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";
/// OpenMetrics 1.0 text.
inline constexpr std::string_view openmetrics_content_type =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a metrics callback returns: the exposition text and its `Content-Type`.
struct metrics_text {
  std::string body;
  std::string content_type{prometheus_content_type};
};

/// Writes the exposition in the format asked for. Called on an HTTP worker thread, possibly on
/// several at once: it must be thread-safe.
using metrics_callback = std::function<metrics_text(metrics_format)>;

/// OpenMetrics when `accept` lists `application/openmetrics-text` (what Prometheus sends first),
/// else the Prometheus text format.
///
///     metrics_format_for("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")  // openmetrics
inline metrics_format metrics_format_for(std::string_view accept) noexcept {
  std::size_t start = 0;
  while (start <= accept.size()) {
    std::size_t end = accept.find(',', start);
    if (end == std::string_view::npos) end = accept.size();
    std::string_view item = accept.substr(start, end - start);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    const bool refused = item.find("q=0;") != std::string_view::npos ||
                         (item.size() >= 3 && item.substr(item.size() - 3) == "q=0");
    if (item.rfind("application/openmetrics-text", 0) == 0 && !refused) return metrics_format::openmetrics;
    start = end + 1;
  }
  return metrics_format::prometheus;
}

/// One HTTP answer.
struct response {
  int status = 404;
  std::string content_type{"text/plain; charset=utf-8"};
  std::string body;
};

/// The answer for `path` (`accept`: the request's `Accept` header; `metrics`: may be empty):
/// - `/livez`, `/readyz`, `/startupz`: 200 when the probe passes, else 503; the body is the
///   probe's reason and a newline.
/// - `/healthz`: the latest result as `application/health+json` (200 for pass and warn, 503 for
///   fail); before the first check, 503 with `{"status":"fail","output":"..."}`.
/// - `/metrics`: the callback's text (500 with the error when it throws); 404 without a callback.
/// - anything else: 404.
inline response respond(const health::probes& probes, std::string_view path, std::string_view accept,
                        const metrics_callback& metrics) {
  auto probe = [](const health::probe_result& r) {
    return response{r.ok ? 200 : 503, "text/plain; charset=utf-8", r.reason + "\n"};
  };
  if (path == "/livez") return probe(probes.liveness());
  if (path == "/readyz") return probe(probes.readiness());
  if (path == "/startupz") return probe(probes.startup());
  if (path == "/healthz") {
    response r{503, std::string(health::health_json_media_type), {}};
    if (auto last = probes.last_result()) {
      r.status = last->status == health::health_status::unhealthy ? 503 : 200;
      r.body = health::to_json(*last);
    } else {
      r.body = R"({"status":"fail","output":"no health check has run yet"})";
    }
    return r;
  }
  if (path == "/metrics" && metrics) {
    try {
      metrics_text text = metrics(metrics_format_for(accept));
      return response{200, std::move(text.content_type), std::move(text.body)};
    } catch (const std::exception& e) {
      return response{500, "text/plain; charset=utf-8", std::string("metrics failed: ") + e.what() + "\n"};
    } catch (...) {
      return response{500, "text/plain; charset=utf-8", "metrics failed\n"};
    }
  }
  return response{404, "text/plain; charset=utf-8", "not found\n"};
}

/// A parsed `host:port`.
struct listen_address {
  std::string host;
  int port = 0;
};

/// Parses `HOST:PORT` (`127.0.0.1:9464`, `[::1]:9464`, `0.0.0.0:0` for any free port). Throws
/// `std::invalid_argument` for anything else.
inline listen_address parse_listen_address(std::string_view text) {
  const std::size_t colon = text.rfind(':');
  auto bad = [&] { return std::invalid_argument("kysera::infra::http: listen address must be HOST:PORT (got '" + std::string(text) + "')"); };
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) throw bad();
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string_view digits = text.substr(colon + 1);
  const infra::detail::port_number port = infra::detail::parse_port(digits);
  if (port.result != infra::detail::port_number::status::ok || host.empty()) throw bad();
  return {std::string(host), port.value};
}

}  // namespace kysera::infra::http
