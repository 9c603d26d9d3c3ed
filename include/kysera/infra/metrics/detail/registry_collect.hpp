#pragma once
/// \file
/// `registry::collect`: the families a registry reports, in order. Included by registry.hpp.

#include <array>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "../query_stats.hpp"
#include "../registry.hpp"

namespace kysera::infra::metrics {

inline void registry::collect(visitor& v) const {
  using detail::source;
  using detail::source_kind;
  std::lock_guard lock(state_->mutex);
  state_->prune_locked();
  const auto& all = state_->sources;

  // Each pool is read once, so its series agree with each other.
  std::vector<std::pair<const source*, detail::pool_reading>> pools;
  for (const auto& s : all) {
    if (s.kind != source_kind::pool) continue;
    if (const auto object = s.pin()) pools.emplace_back(&s, s.read_pool(object.get()));
  }
  constexpr std::string_view pool_key = "db.client.connection.pool.name";
  {
    static constexpr descriptor d{"db.client.connection.count", "{connection}",
                                  "The number of connections that are currently in state described by the state attribute."};
    for (const auto& [s, r] : pools) {
      const std::array<attribute, 2> idle{{{pool_key, s->name}, {"db.client.connection.state", "idle"}}};
      v.on_gauge(d, idle, static_cast<double>(r.metrics.idle));
      const std::array<attribute, 2> used{{{pool_key, s->name}, {"db.client.connection.state", "used"}}};
      v.on_gauge(d, used, static_cast<double>(r.metrics.active));
    }
  }
  // One gauge per pool; `value` returns nothing for pools that cannot tell.
  auto per_pool = [&](const descriptor& d, auto value) {
    for (const auto& [s, r] : pools) {
      const std::optional<std::size_t> x = value(r);
      if (!x) continue;
      const std::array<attribute, 1> a{{{pool_key, s->name}}};
      v.on_gauge(d, a, static_cast<double>(*x));
    }
  };
  using reading = detail::pool_reading;
  per_pool({"db.client.connection.max", "{connection}", "The maximum number of open connections allowed."},
           [](const reading& r) { return std::optional<std::size_t>(r.metrics.max); });
  per_pool({"db.client.connection.idle.min", "{connection}", "The minimum number of idle open connections allowed."},
           [](const reading& r) { return r.min_idle; });
  per_pool({"db.client.connection.pending_requests", "{request}",
            "The number of current pending requests for an open connection."},
           [](const reading& r) { return std::optional<std::size_t>(r.metrics.waiting); });
  {
    static constexpr descriptor d{"db.client.connection.timeouts", "{timeout}",
                                  "The number of connection timeouts that have occurred trying to obtain a connection from the pool."};
    for (const auto& [s, r] : pools) {
      if (!r.timeouts) continue;
      const std::array<attribute, 1> a{{{pool_key, s->name}}};
      v.on_counter(d, a, static_cast<double>(*r.timeouts), s->created);
    }
  }
  {
    // What the pool did during an outage (pool_statistics; docs/pool.md#during-an-outage).
    static constexpr std::array<descriptor, 5> outage{{
        {"kysera.pool.connect_failures", "{connect}", "Connects the pool's factory failed."},
        {"kysera.pool.backoffs", "{window}", "Connect backoff windows the pool began."},
        {"kysera.pool.throttled", "{acquire}", "Acquires failed at once during a connect backoff window."},
        {"kysera.pool.rejected", "{acquire}", "Acquires rejected at once because max_waiters callers were queued."},
        {"kysera.pool.leaked", "{lease}", "Leases held longer than leak_detection_threshold."}}};
    for (std::size_t i = 0; i < outage.size(); ++i) {
      for (const auto& [s, r] : pools) {
        if (!r.outage) continue;
        const std::array<attribute, 1> a{{{pool_key, s->name}}};
        v.on_counter(outage[i], a, static_cast<double>((*r.outage)[i]), s->created);
      }
    }
  }
  {
    static constexpr std::array<descriptor, 3> timings{{
        {"db.client.connection.create_time", "s", "The time it took to create a new connection."},
        {"db.client.connection.wait_time", "s", "The time it took to obtain an open connection from the pool."},
        {"db.client.connection.use_time", "s", "The time between borrowing a connection and returning it to the pool."}}};
    for (std::size_t i = 0; i < timings.size(); ++i) {
      for (const auto& [s, r] : pools) {
        if (!r.timings) continue;
        const std::array<attribute, 1> a{{{pool_key, s->name}}};
        v.on_histogram(timings[i], a, (*r.timings)[i], s->created);
      }
    }
  }
  {
    // Every cluster in one pass, so each of its families stays in one piece.
    std::vector<std::shared_ptr<const cluster::cluster_state>> snapshots;
    std::vector<cluster::cluster_metrics_source> clusters;
    for (const auto& s : all) {
      if (s.kind != source_kind::cluster) continue;
      const auto object = s.pin();
      if (!object) continue;
      auto snapshot = s.read_cluster(object.get());
      if (!snapshot) continue;
      clusters.push_back({s.name, snapshot.get()});
      snapshots.push_back(std::move(snapshot));
    }
    if (!clusters.empty()) cluster::collect_cluster_metrics(clusters, v);
  }
  for (const auto& [key, family] : state_->durations) family->collect(v);

  // User histograms, grouped by name.
  std::vector<const source*> histograms;
  for (const auto& s : all) {
    if (s.kind == source_kind::histogram) histograms.push_back(&s);
  }
  std::stable_sort(histograms.begin(), histograms.end(),
                   [](const source* a, const source* b) { return a->name < b->name; });
  for (const source* s : histograms) {
    std::vector<attribute> a;
    a.reserve(s->attributes.size());
    for (const auto& [k, val] : s->attributes) a.push_back({k, val});
    v.on_histogram({s->name, s->unit, s->description}, a,
                   static_cast<const histogram*>(s->object)->snapshot(), s->created);
  }

  std::vector<std::pair<const source*, detail::breaker_reading>> breakers;
  for (const auto& s : all) {
    if (s.kind != source_kind::breaker) continue;
    if (const auto object = s.pin()) breakers.emplace_back(&s, s.read_breaker(object.get()));
  }
  {
    static constexpr descriptor d{"kysera.circuit_breaker.state", "",
                                  "1 for the state the circuit breaker is in, 0 for the others."};
    static constexpr std::array<std::pair<resilience::circuit_state, std::string_view>, 3> states{
        {{resilience::circuit_state::closed, "closed"},
         {resilience::circuit_state::open, "open"},
         {resilience::circuit_state::half_open, "half_open"}}};
    for (const auto& [s, r] : breakers) {
      for (const auto& [state, label] : states) {
        const std::array<attribute, 2> a{{{"name", s->name}, {"state", label}}};
        v.on_gauge(d, a, r.state == state ? 1.0 : 0.0);
      }
    }
  }
  {
    static constexpr descriptor d{"kysera.circuit_breaker.calls", "{call}",
                                  "Calls through the circuit breaker by outcome."};
    for (const auto& [s, r] : breakers) {
      const std::array<std::pair<std::string_view, std::uint64_t>, 3> kinds{
          {{"successful", r.calls.successful}, {"failed", r.calls.failed}, {"not_permitted", r.calls.not_permitted}}};
      for (const auto& [kind, n] : kinds) {
        const std::array<attribute, 2> a{{{"name", s->name}, {"kind", kind}}};
        v.on_counter(d, a, static_cast<double>(n), s->created);
      }
    }
  }
  {
    static constexpr descriptor d{"kysera.retry.calls", "{call}", "Retried calls by outcome."};
    for (const auto& s : all) {
      if (s.kind != source_kind::retry) continue;
      const auto c = static_cast<const resilience::retry_counters*>(s.object)->get();
      const std::array<std::pair<std::string_view, std::uint64_t>, 4> kinds{
          {{"successful_without_retry", c.successful_without_retry},
           {"successful_with_retry", c.successful_with_retry},
           {"failed_with_retry", c.failed_with_retry},
           {"failed_without_retry", c.failed_without_retry}}};
      for (const auto& [kind, n] : kinds) {
        const std::array<attribute, 2> a{{{"name", s.name}, {"kind", kind}}};
        v.on_counter(d, a, static_cast<double>(n), s.created);
      }
    }
  }
  {
    std::vector<std::pair<const source*, detail::debug_reading>> debugs;
    for (const auto& s : all) {
      if (s.kind != source_kind::debug) continue;
      if (const auto object = s.pin()) debugs.emplace_back(&s, s.read_debug(object.get()));
    }
    static constexpr descriptor queries{"kysera.debug.queries", "{query}",
                                        "Queries a with_debug wrapper recorded, evicted ones included."};
    for (const auto& [s, r] : debugs) {
      const std::array<attribute, 1> a{{{"name", s->name}}};
      v.on_counter(queries, a, static_cast<double>(r.recorded), s->created);
    }
    static constexpr descriptor duration{"kysera.debug.query.duration", "s",
                                         "Statement durations over the queries the with_debug window holds now."};
    for (const auto& [s, r] : debugs) {
      const std::vector<double>& seconds = r.seconds;  // a lambda may not capture a binding (C++20)
      if (seconds.empty()) continue;
      const auto n = seconds.size();
      double sum = 0.0;
      for (double x : seconds) sum += x;
      const auto rank = [&seconds, n](unsigned percent) { return seconds[detail::nearest_rank_index(n, percent)]; };
      const std::array<std::pair<std::string_view, double>, 5> stats{{{"avg", sum / static_cast<double>(n)},
                                                                       {"p50", rank(50)},
                                                                       {"p95", rank(95)},
                                                                       {"p99", rank(99)},
                                                                       {"max", seconds.back()}}};
      for (const auto& [statistic, value] : stats) {
        const std::array<attribute, 2> a{{{"name", s->name}, {"statistic", statistic}}};
        v.on_gauge(duration, a, value);
      }
    }
    static constexpr descriptor errors{"kysera.debug.query.errors", "{query}",
                                       "Statements that failed among those the with_debug window holds now."};
    for (const auto& [s, r] : debugs) {
      const std::array<attribute, 1> a{{{"name", s->name}}};
      v.on_gauge(errors, a, static_cast<double>(r.failed));
    }
    static constexpr descriptor held{"kysera.debug.queries.held", "{query}",
                                     "Entries the with_debug window holds now (at most max_metrics)."};
    for (const auto& [s, r] : debugs) {
      const std::array<attribute, 1> a{{{"name", s->name}}};
      v.on_gauge(held, a, static_cast<double>(r.held));
    }
  }
  {
    static constexpr descriptor d{"kysera.health.status", "",
                                  "1 for the status of the monitor's last check, 0 for the others (all 0 before the first)."};
    static constexpr std::array<std::string_view, 3> names{"healthy", "degraded", "unhealthy"};
    for (const auto& s : all) {
      if (s.kind != source_kind::monitor) continue;
      const auto object = s.pin();
      if (!object) continue;
      const int current = s.read_monitor(object.get());
      for (int i = 0; i < 3; ++i) {
        const std::array<attribute, 2> a{{{"name", s.name}, {"status", names[static_cast<std::size_t>(i)]}}};
        v.on_gauge(d, a, current == i ? 1.0 : 0.0);
      }
    }
  }
}

}  // namespace kysera::infra::metrics
