#pragma once
/// \file
/// `http::server`: the probe, health and metrics endpoint on cpp-httplib (component `http`,
/// target `kysera::infra-http`; the only header of this library that needs `httplib.h`).

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

#include "../health/probes.hpp"
#include "responses.hpp"

namespace kysera::infra::http {

/// Options of `server`. Invalid values throw `std::invalid_argument` naming the field.
struct server_options {
  std::string host = "127.0.0.1";  ///< address to listen on
  int port = 0;                     ///< 0..65535; 0 picks a free port (read it with `port()`)
  metrics_callback metrics{};       ///< serves `/metrics`; empty: 404 there
};

/// Thread-safe: `stop()`, `port()` and `is_running()` may be called from any thread at once.
///
/// Serves `/livez`, `/readyz`, `/startupz`, `/healthz` and `/metrics` (see `respond`) for GET
/// and HEAD on its own thread, from the moment the constructor returns (it binds first, so a
/// port in use throws `std::system_error` there) until `stop()` or the destructor. `probes`
/// must outlive the server.
///
///     kysera::infra::http::server endpoint(probes, {.host = "0.0.0.0", .port = 9464,
///                                                   .metrics = [&](auto format) { return expose(format); }});
///     auto options = ...;  // register_shutdown_options
///     endpoint.attach(options);  // on a signal: not ready, drain, then the endpoint stops
class server {
 public:
  server(health::probes& probes, server_options options = {})
      : probes_(probes), options_(std::move(options)) {
    if (options_.port < 0 || options_.port > 65535) {
      throw std::invalid_argument("kysera::infra::http: server_options.port must be in 0..65535");
    }
    if (options_.host.empty()) throw std::invalid_argument("kysera::infra::http: server_options.host must not be empty");
    auto handler = [this](const httplib::Request& request, httplib::Response& out) {
      response r = respond(probes_, request.path, request.get_header_value("Accept"), options_.metrics);
      out.status = r.status;
      out.set_content(r.body, r.content_type.c_str());
    };
    // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, with which a second server
    // on the same port would bind too and silently take half the scrapes.
    http_.set_socket_options([](auto sock) {
      int yes = 1;
      ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<const char*>(&yes), sizeof yes);
    });
    for (const char* path : {"/livez", "/readyz", "/startupz", "/healthz", "/metrics"}) {
      http_.Get(path, handler);
    }
    if (options_.port == 0) {
      port_ = http_.bind_to_any_port(options_.host.c_str());
    } else if (http_.bind_to_port(options_.host.c_str(), options_.port)) {
      port_ = options_.port;
    }
    if (port_ <= 0) {
      throw std::system_error(std::make_error_code(std::errc::address_in_use),
                              "kysera::infra::http: cannot listen on " + options_.host + ":" +
                                  std::to_string(options_.port));
    }
    thread_ = std::thread([this] {
      http_.listen_after_bind();
      finished_ = true;
    });
    // httplib's stop() does nothing until the loop runs: wait for it, so stop() never misses.
    while (!http_.is_running() && !finished_) std::this_thread::sleep_for(std::chrono::microseconds(100));
  }

  server(const server&) = delete;
  server& operator=(const server&) = delete;

  ~server() { stop(); }

  /// Stops serving and waits for the server thread (requests in flight finish). Idempotent.
  void stop() {
    std::lock_guard lock(stop_mutex_);
    http_.stop();
    if (thread_.joinable()) thread_.join();
  }

  /// The port it listens on (the chosen one when `port` was 0).
  int port() const noexcept { return port_; }

  bool is_running() const { return http_.is_running(); }

  /// Hooks this endpoint into a shutdown: `on_drain` first turns readiness off (then runs the
  /// `on_drain` already set, if any), and `on_shutdown` first stops this server, after the
  /// drain (then runs the `on_shutdown` already set). `Options`: `shutdown::shutdown_options`
  /// or `shutdown::register_shutdown_options`. Call before creating the controller; the server
  /// must outlive it.
  template <class Options>
  void attach(Options& options) {
    options.on_drain = [this, previous = std::move(options.on_drain)] {
      probes_.begin_drain();
      if (previous) previous();
    };
    options.on_shutdown = [this, previous = std::move(options.on_shutdown)] {
      stop();
      if (previous) previous();
    };
  }

 private:
  health::probes& probes_;
  server_options options_;
  httplib::Server http_;
  int port_ = -1;
  std::atomic<bool> finished_{false};
  std::mutex stop_mutex_;
  std::thread thread_;
};

}  // namespace kysera::infra::http
