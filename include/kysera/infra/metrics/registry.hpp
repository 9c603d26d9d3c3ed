#pragma once
/// \file
/// `metrics::registry`: named pools, circuit breakers, retries, health monitors and histograms,
/// read on demand into a `visitor` under OpenTelemetry names; `registration` ends a registration.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../cluster/metrics.hpp"
#include "../pool/metrics.hpp"
#include "../resilience/circuit_breaker.hpp"
#include "../resilience/retry.hpp"
#include "histogram.hpp"
#include "operation_duration.hpp"
#include "visitor.hpp"

namespace kysera::infra::metrics {

namespace detail {

using time_point = std::chrono::system_clock::time_point;

struct pool_reading {
  pool::pool_metrics metrics;
  std::optional<std::size_t> min_idle;     // known for pools with options()
  std::optional<std::uint64_t> timeouts;  // known for pools with get_statistics()
  // failed connects, backoff windows, fast failures in one, max_waiters rejections, leaks:
  // known for pools whose statistics have them (connection_pool)
  std::optional<std::array<std::uint64_t, 5>> outage;
  // create, wait and use time: for pools whose timings() is not null (record_timings)
  std::optional<std::array<histogram_snapshot, 3>> timings;
};

struct breaker_reading {
  resilience::circuit_state state = resilience::circuit_state::closed;
  resilience::circuit_breaker_calls calls;
};

/// What a `with_debug` wrapper holds now: the statements in its window (at most `max_metrics`,
/// the most recent), in seconds, sorted; and its counts.
struct debug_reading {
  std::uint64_t recorded = 0;  // since construction, evicted entries included
  std::size_t held = 0;        // entries in the window, transactions included
  std::size_t failed = 0;      // statements in the window whose execute threw
  std::vector<double> seconds;  // durations of the window's statements, ascending
};

/// `debug_reading` of anything with with_debug's readers.
template <class D>
debug_reading read_debug(const D& d) {
  debug_reading r;
  r.recorded = d.recorded_queries();
  r.held = d.metrics_size();
  auto durations = d.query_durations(D::clock::time_point::min());
  r.failed = durations.statements.failed;
  r.seconds = std::move(durations.statements.ms);
  for (double& x : r.seconds) x /= 1000.0;
  std::sort(r.seconds.begin(), r.seconds.end());
  return r;
}

enum class source_kind { pool, breaker, retry, monitor, histogram, debug, cluster };

/// One registered object: a type-erased pointer and the function that reads it.
struct source {
  std::uint64_t id = 0;
  source_kind kind = source_kind::pool;
  std::string name;
  time_point created{};
  const void* object = nullptr;
  std::shared_ptr<const void> owned;  // set when the registry keeps a copy (a metrics_pool handle)
  std::weak_ptr<const void> weak;     // set for objects registered by shared_ptr
  bool weakly_held = false;

  /// The object, kept alive for the caller's read; null when a weakly held one is gone.
  std::shared_ptr<const void> pin() const noexcept {
    if (weakly_held) return weak.lock();
    return std::shared_ptr<const void>(std::shared_ptr<const void>(), object);  // not owning
  }
  pool_reading (*read_pool)(const void*) = nullptr;
  breaker_reading (*read_breaker)(const void*) = nullptr;
  int (*read_monitor)(const void*) = nullptr;  // -1: no check yet, else 0 healthy .. 2 unhealthy
  debug_reading (*read_debug)(const void*) = nullptr;
  std::shared_ptr<const cluster::cluster_state> (*read_cluster)(const void*) = nullptr;
  // histograms only
  std::string unit;
  std::string description;
  std::vector<std::pair<std::string, std::string>> attributes;
};

struct registry_state {
  mutable std::mutex mutex;
  std::vector<source> sources;  // guarded by mutex
  std::map<std::string, std::shared_ptr<operation_duration>> durations;  // guarded by mutex
  std::uint64_t next_id = 1;  // guarded by mutex

  /// Forgets weakly held objects that are gone.
  void prune_locked() noexcept {
    std::erase_if(sources, [](const source& s) { return s.weakly_held && s.weak.expired(); });
  }

  void remove(std::uint64_t id) noexcept {
    std::lock_guard lock(mutex);
    std::erase_if(sources, [id](const source& s) { return s.id == id; });
  }
};

/// 0 healthy, 1 degraded, 2 unhealthy, -1 unknown, by the status's name.
inline int status_index(std::string_view s) noexcept {
  if (s == "healthy") return 0;
  if (s == "degraded") return 1;
  if (s == "unhealthy") return 2;
  return -1;
}

}  // namespace detail

/// Not thread-safe itself (move-only; give each one a single owner). Ends a registration when
/// destroyed or `reset()`: after that returns, the registry never reads the object again, so keep
/// the handle declared after the object it watches. Outliving the registry is harmless.
class [[nodiscard]] registration {
 public:
  registration() noexcept = default;
  registration(std::weak_ptr<detail::registry_state> state, std::uint64_t id) noexcept
      : state_(std::move(state)), id_(id) {}
  registration(registration&& o) noexcept : state_(std::move(o.state_)), id_(std::exchange(o.id_, 0)) {}
  registration& operator=(registration&& o) noexcept {
    if (this != &o) {
      reset();
      state_ = std::move(o.state_);
      id_ = std::exchange(o.id_, 0);
    }
    return *this;
  }
  ~registration() { reset(); }

  /// Deregisters now; waits for a `collect` running on another thread to finish.
  void reset() noexcept {
    if (id_ == 0) return;
    if (auto s = state_.lock()) s->remove(id_);
    id_ = 0;
    state_.reset();
  }
  bool active() const noexcept { return id_ != 0; }

 private:
  std::weak_ptr<detail::registry_state> state_;
  std::uint64_t id_ = 0;
};

/// Thread-safe: every member may be called from any thread. Holds no object alive: it reads
/// registered objects only inside `collect`, under its own mutex, which `registration` also takes,
/// so a deregistered (then destroyed) object is never read. Nothing of it is on the query path:
/// pools, breakers and histograms keep their own atomic counters and the registry reads them.
/// Names must be unique per kind (`std::invalid_argument` otherwise).
///
///     kysera::infra::metrics::registry reg;
///     auto r1 = reg.add_pool("main", pool);
///     auto r2 = reg.add_circuit_breaker("db", breaker);
///     std::string text = kysera::infra::metrics::to_prometheus(reg);
class registry {
 public:
  registry() : state_(std::make_shared<detail::registry_state>()) {}
  registry(const registry&) = delete;
  registry& operator=(const registry&) = delete;

  /// A `connection_pool` (count, max, idle.min, pending_requests, timeouts, the
  /// `kysera.pool.*` outage counters, and with
  /// `pool_options::record_timings` the create_time, wait_time and use_time histograms) or any type with
  /// `get_metrics()` (count, max, pending_requests), read by reference: it must stay alive until
  /// the registration ends.
  template <class P>
    requires requires(const P& p) {
      { p.get_metrics() } -> std::same_as<pool::pool_metrics>;
    }
  registration add_pool(std::string name, const P& pool) {
    return add(pool_source(std::move(name), &pool));
  }

  /// Weak registrations: the registry holds a `weak_ptr` and reads the object while it lives;
  /// once the last `shared_ptr` is gone the series disappear and the name is free again. Nothing
  /// to keep, nothing to deregister (the object's end is the deregistration).
  template <class P>
    requires requires(const P& p) {
      { p.get_metrics() } -> std::same_as<pool::pool_metrics>;
    }
  void add_pool(std::string name, const std::shared_ptr<P>& pool) {
    add_weak(pool_source(std::move(name), pool.get()), pool);
  }
  template <class B>
    requires requires(const B& b) {
      { b.get_state().state } -> std::convertible_to<resilience::circuit_state>;
    }
  void add_circuit_breaker(std::string name, const std::shared_ptr<B>& breaker) {
    add_weak(breaker_source(std::move(name), breaker.get()), breaker);
  }
  template <class M>
  void add_health_monitor(std::string name, const std::shared_ptr<M>& monitor) {
    add_weak(monitor_source(std::move(name), monitor.get()), monitor);
  }

 private:
  template <class P>
  detail::source pool_source(std::string name, const P* pool) const {
    detail::source s = make(detail::source_kind::pool, std::move(name), pool);
    s.read_pool = [](const void* o) {
      const P& p = *static_cast<const P*>(o);
      detail::pool_reading r{p.get_metrics(), std::nullopt, std::nullopt, std::nullopt, std::nullopt};
      if constexpr (requires { p.options().min_idle; }) r.min_idle = p.options().min_idle;
      if constexpr (requires { p.get_statistics().timed_out; }) {
        const auto st = p.get_statistics();
        r.timeouts = st.timed_out;
        if constexpr (requires { st.throttled + st.rejected + st.leaked + st.backoffs + st.create_failed; }) {
          r.outage = std::array<std::uint64_t, 5>{static_cast<std::uint64_t>(st.create_failed),
                                                  static_cast<std::uint64_t>(st.backoffs),
                                                  static_cast<std::uint64_t>(st.throttled),
                                                  static_cast<std::uint64_t>(st.rejected),
                                                  static_cast<std::uint64_t>(st.leaked)};
        }
      }
      if constexpr (requires { p.timings()->use_time(); }) {
        if (const auto* t = p.timings()) r.timings = std::array{t->create_time(), t->wait_time(), t->use_time()};
      }
      return r;
    };
    return s;
  }

  template <class B>
  detail::source breaker_source(std::string name, const B* breaker) const {
    detail::source s = make(detail::source_kind::breaker, std::move(name), breaker);
    s.read_breaker = [](const void* o) {
      const B& b = *static_cast<const B*>(o);
      return detail::breaker_reading{b.get_state().state, b.get_calls()};
    };
    return s;
  }

  template <class M>
  detail::source monitor_source(std::string name, const M* monitor) const {
    detail::source s = make(detail::source_kind::monitor, std::move(name), monitor);
    s.read_monitor = [](const void* o) {
      const auto last = static_cast<const M*>(o)->get_last_check();
      return last ? detail::status_index(to_string(last->status)) : -1;
    };
    return s;
  }

  template <class C>
  detail::source cluster_source(std::string name, const C* c) const {
    detail::source s = make(detail::source_kind::cluster, std::move(name), c);
    s.read_cluster = [](const void* o) -> std::shared_ptr<const cluster::cluster_state> {
      return static_cast<const C*>(o)->state();
    };
    return s;
  }

  template <class D>
  detail::source debug_source(std::string name, const D* dbg) const {
    detail::source s = make(detail::source_kind::debug, std::move(name), dbg);
    s.read_debug = [](const void* o) { return detail::read_debug(*static_cast<const D*>(o)); };
    return s;
  }

  template <class T>
  void add_weak(detail::source s, const std::shared_ptr<T>& object) {
    if (!object) throw std::invalid_argument("metrics registry: a null shared_ptr for '" + s.name + "'");
    s.weak = std::shared_ptr<const void>(object);
    s.weakly_held = true;
    (void)insert(std::move(s));  // no registration: the object's end removes it
  }

 public:

  /// A `metrics_pool` handle, kept by copy (the pool it watches must outlive the registration).
  registration add_pool(std::string name, pool::metrics_pool handle) {
    auto copy = std::make_shared<const pool::metrics_pool>(handle);
    detail::source s = make(detail::source_kind::pool, std::move(name), copy.get());
    s.owned = std::move(copy);
    s.read_pool = [](const void* o) {
      return detail::pool_reading{static_cast<const pool::metrics_pool*>(o)->get_metrics(), std::nullopt, std::nullopt,
                                  std::nullopt, std::nullopt};
    };
    return add(std::move(s));
  }

  /// Temporaries would be read after they are gone.
  template <class P>
  registration add_pool(std::string, const P&&) = delete;
  template <class B>
  registration add_circuit_breaker(std::string, const B&&) = delete;
  registration add_retry(std::string, const resilience::retry_counters&&) = delete;
  template <class M>
  registration add_health_monitor(std::string, const M&&) = delete;
  template <class D>
  registration add_debug_database(std::string, const D&&) = delete;
  template <class C>
  registration add_cluster(std::string, const C&&) = delete;
  registration add_histogram(std::string, std::string, std::string, std::vector<std::pair<std::string, std::string>>,
                             const histogram&&) = delete;

  /// A `basic_circuit_breaker` (or any type with `get_state().state` and `get_calls()`).
  template <class B>
    requires requires(const B& b) {
      { b.get_state().state } -> std::convertible_to<resilience::circuit_state>;
      { b.get_calls() } -> std::same_as<resilience::circuit_breaker_calls>;
    }
  registration add_circuit_breaker(std::string name, const B& breaker) {
    return add(breaker_source(std::move(name), &breaker));
  }

  /// Counters that retries fill through `retry_options::counters`.
  registration add_retry(std::string name, const resilience::retry_counters& counters) {
    return add(make(detail::source_kind::retry, std::move(name), &counters));
  }

  /// A `health_monitor` (or any type whose `get_last_check()` returns an optional result with a
  /// `status` that `to_string` names healthy, degraded or unhealthy).
  template <class M>
    requires requires(const M& m) {
      { to_string(m.get_last_check()->status) } -> std::convertible_to<std::string_view>;
    }
  registration add_health_monitor(std::string name, const M& monitor) {
    return add(monitor_source(std::move(name), &monitor));
  }

  /// A `with_debug` wrapper (`debug_database`): `kysera.debug.queries` (every query it recorded,
  /// a counter), and over the statements its window holds now (the last `max_metrics` queries):
  /// `kysera.debug.query.duration` (seconds, attribute `statistic` = avg, p50, p95, p99, max,
  /// nearest rank; absent while the window holds no statement), `kysera.debug.query.errors`
  /// and `kysera.debug.queries.held`. Read by reference: the wrapper must stay alive until the
  /// registration ends. Each scrape copies and sorts the window (max_metrics doubles).
  ///
  ///     auto dbg = kysera::infra::health::with_debug(db);
  ///     auto r = reg.add_debug_database("orders", dbg);
  template <class D>
    requires requires(const D& d) {
      { d.recorded_queries() } -> std::convertible_to<std::uint64_t>;
      { d.metrics_size() } -> std::convertible_to<std::size_t>;
      d.query_durations(D::clock::time_point::min());
    }
  registration add_debug_database(std::string name, const D& dbg) {
    return add(debug_source(std::move(name), &dbg));
  }

  /// The same, held weakly: read while `dbg` lives, forgotten after.
  template <class D>
  void add_debug_database(std::string name, const std::shared_ptr<D>& dbg) {
    add_weak(debug_source(std::move(name), dbg.get()), dbg);
  }

  /// A `cluster::cluster` (or any type whose `state()` returns its `cluster_state` snapshot):
  /// per host `kysera.cluster.host.replication_lag`, `.round_trip` and `.role`, attributes
  /// `name` and `host` (see `cluster::collect_cluster_metrics`). Reads the last discovery's
  /// snapshot only. Register each host's pool with `add_pool` for its connection metrics.
  ///
  ///     auto r = reg.add_cluster("main", db);
  template <class C>
    requires requires(const C& c) {
      { c.state() } -> std::convertible_to<std::shared_ptr<const cluster::cluster_state>>;
    }
  registration add_cluster(std::string name, const C& c) {
    return add(cluster_source(std::move(name), &c));
  }

  /// The same, held weakly: read while `c` lives, forgotten after.
  template <class C>
  void add_cluster(std::string name, const std::shared_ptr<C>& c) {
    add_weak(cluster_source(std::move(name), c.get()), c);
  }

  /// A histogram of the user's, exported under `name` (OpenTelemetry style, dots allowed) with
  /// `unit` (UCUM, "s" for seconds) and fixed attributes. Series of one name must differ in
  /// attributes.
  registration add_histogram(std::string name, std::string unit, std::string description,
                             std::vector<std::pair<std::string, std::string>> attributes, const histogram& h) {
    detail::source s = make(detail::source_kind::histogram, std::move(name), &h);
    s.unit = std::move(unit);
    s.description = std::move(description);
    s.attributes = std::move(attributes);
    return add(std::move(s));
  }

  /// The `db.client.operation.duration` family for these attributes, made on first use and kept
  /// for the registry's life; `instrument` records into it.
  std::shared_ptr<metrics::operation_duration> operation_duration(const operation_attributes& attrs) {
    std::string key(to_string(attrs.system));
    key += '\n';
    key += attrs.db_namespace;
    std::lock_guard lock(state_->mutex);
    auto& slot = state_->durations[key];
    if (!slot) slot = std::make_shared<metrics::operation_duration>(attrs);
    return slot;
  }

  /// Registered objects (duration families not included).
  std::size_t size() const {
    std::lock_guard lock(state_->mutex);
    return state_->sources.size();
  }

  /// Reads every registered object now and hands the series to `v`, grouped by family. Runs `v`
  /// under the registry's mutex: `v` must not call back into this registry.
  void collect(visitor& v) const;

 private:
  detail::source make(detail::source_kind kind, std::string name, const void* object) const {
    if (name.empty()) throw std::invalid_argument("metrics registry: a name must not be empty");
    detail::source s;
    s.kind = kind;
    s.name = std::move(name);
    s.created = std::chrono::system_clock::now();
    s.object = object;
    return s;
  }

  registration add(detail::source s) { return registration(state_, insert(std::move(s))); }

  /// Adds `s` under a fresh id (forgetting weakly held objects that are gone first).
  std::uint64_t insert(detail::source s) {
    std::lock_guard lock(state_->mutex);
    state_->prune_locked();
    for (const auto& o : state_->sources) {
      if (o.kind == s.kind && o.name == s.name && o.attributes == s.attributes) {
        throw std::invalid_argument("metrics registry: '" + s.name + "' is registered already" +
                                    (s.attributes.empty() ? "" : " with these attributes"));
      }
    }
    s.id = state_->next_id++;
    const auto id = s.id;
    state_->sources.push_back(std::move(s));
    return id;
  }

  std::shared_ptr<detail::registry_state> state_;
};

}  // namespace kysera::infra::metrics

#include "detail/registry_collect.hpp"
