#pragma once
/// \file
/// `cluster<Connection>`: one `connection_pool` per host of a primary/replica set, a discovery
/// thread that finds out which host is the primary and how far each replica lags, and routing of
/// statements to the primary and of reads to a replica (docs/cluster.md).

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "../database.hpp"
#include "../deadline.hpp"
#include "../error.hpp"
#include "../logger.hpp"
#include "../pool/connection_pool.hpp"
#include "detail/names.hpp"
#include "detail/routing.hpp"
#include "options.hpp"
#include "state.hpp"
#include "traits.hpp"

namespace kysera::infra::cluster {

/// Thread-safe: every member may be called from any thread; a `lease` is owned by one thread at
/// a time. A primary/replica set of hosts, each a connection string, with one
/// `pool::connection_pool` per host.
///
/// Discovery probes every host on a connection of its own (outside the pools), once in the
/// constructor and then every `discovery_interval` on a thread of its own, each probe bounded by
/// `probe_timeout`: the role, the replication lag and the round trip. `primary()` leases a
/// connection to the host discovery named primary; `replica()` one to a replica that answers and
/// is within `max_replication_lag` (nearest by round trip, or round robin);
/// `replica_or_primary()` falls back to the primary. Without a primary, `primary()` throws
/// `errc::connection_refused` at once. An error meaning "this host no longer takes writes"
/// (`cluster_traits::not_writable`) or "its session broke" on a statement routed to the
/// primary marks the host suspect, takes it out of the primary role and wakes discovery at once.
///
/// The cluster models `database`: `execute` runs on the primary. Do not destroy it while other
/// threads still call into it, nor from a thread holding one of its leases.
///
///     using kysera::infra::postgres::connection;
///     kysera::infra::cluster::cluster<connection> db({"postgres://app:pw@db1/app",
///                                                     "postgres://app:pw@db2/app"});
///     db.execute("insert into jobs (state) values ('new')");     // the primary
///     auto r = db.replica_or_primary()->execute("select count(*) from jobs");
template <cluster_connection Connection, class Clock = std::chrono::steady_clock>
class cluster {
 public:
  using connection_type = Connection;
  using clock_type = Clock;
  using pool_type = pool::connection_pool<Connection, Clock>;
  /// Opens a connection to the host with this connection string.
  using factory_type = std::function<std::unique_ptr<Connection>(const std::string& url)>;

  /// A connection leased from one host's pool, with the host it came from. Move-only; returns
  /// the connection when destroyed. Owned by one thread at a time.
  ///
  ///     auto c = db.replica();
  ///     auto r = c->execute("select 1");
  ///     std::size_t from = c.host();
  class lease {
   public:
    lease() noexcept = default;
    Connection& operator*() const noexcept { return *inner_; }
    Connection* operator->() const noexcept { return inner_.operator->(); }
    Connection& get() const noexcept { return inner_.get(); }
    explicit operator bool() const noexcept { return static_cast<bool>(inner_); }
    /// The index of the host (into `cluster_state::hosts`).
    std::size_t host() const noexcept { return host_; }
    /// The connection is unusable: close it instead of reusing it.
    void mark_broken() noexcept { inner_.mark_broken(); }
    /// Returns the connection now.
    void release() noexcept { inner_.release(); }

   private:
    friend class cluster;
    lease(typename pool_type::lease inner, std::size_t host) noexcept
        : inner_(std::move(inner)), host_(host) {}
    typename pool_type::lease inner_;
    std::size_t host_ = 0;
  };

  /// Connections made by `cluster_traits<Connection>::open` and `open_probe`. Validates
  /// `options` and `hosts` (`std::invalid_argument` naming the field), runs the first discovery
  /// round (at most hosts x probe_timeout, plus connects) and starts the discovery thread unless
  /// `discovery_interval` is 0.
  ///
  ///     kysera::infra::cluster::cluster<kysera::infra::postgres::connection> db(
  ///         {"postgres://app:pw@db1/app", "postgres://app:pw@db2/app"}, {.max_replication_lag = 5s});
  explicit cluster(std::vector<std::string> hosts, cluster_options options = {})
      : cluster(std::move(hosts), &cluster_traits<Connection>::open,
                [this](const std::string& url) {  // called after options_ is set
                  return cluster_traits<Connection>::open_probe(url, options_.probe_timeout);
                },
                std::move(options)) {}

  /// As above, with your own factories: `factory` for the pools, `probe_factory` for the
  /// discovery connections (which should bound connecting and statements by `probe_timeout`).
  cluster(std::vector<std::string> hosts, factory_type factory, factory_type probe_factory,
          cluster_options options = {})
      : options_(std::move(options)), urls_(std::move(hosts)), probe_factory_(std::move(probe_factory)) {
    detail::validate(options_);
    if (urls_.empty()) throw std::invalid_argument("cluster: hosts must not be empty");
    if (!factory || !probe_factory_) throw std::invalid_argument("cluster: factory must not be empty");
    logger_ = options_.logger ? options_.logger : &infra::default_logger();
    auto initial = std::make_shared<cluster_state>();
    for (std::size_t i = 0; i < urls_.size(); ++i) {
      initial->hosts.push_back(host_state{.name = detail::host_name<Connection>(urls_[i])});
      pools_.push_back(std::make_unique<pool_type>(
          [factory, url = urls_[i]] { return factory(url); }, options_.pool));
      probes_.emplace_back();
    }
    last_roles_.assign(urls_.size(), host_role::unknown);
    publish_locked(std::move(initial));  // no other thread runs yet
    discover();
    if (options_.discovery_interval.count() > 0) thread_ = std::thread([this] { run(); });
  }

  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;

  /// Stops the discovery thread (at once, also in the middle of its wait), then closes the pools.
  ~cluster() { close(); }

  /// A connection to the primary: waits up to the pool's `acquire_timeout`. Throws
  /// `database_error(errc::connection_refused)` at once when discovery knows no primary, else
  /// what the pool throws.
  ///
  ///     auto c = db.primary();
  ///     c->execute("update jobs set state = 'done' where id = 7");
  lease primary() {
    // The primary's index is mirrored in an atomic, so routing to it touches no shared line.
    const std::size_t h = primary_.load(std::memory_order_acquire);
    if (h == no_host) throw detail::no_primary(*state());
    try {
      return lease(pools_[h]->acquire(), h);
    } catch (const database_error& e) {
      note_error(h, e);
      throw;
    }
  }

  /// A connection to a replica that answered its last probe and is within
  /// `max_replication_lag`, nearest first or in turn (`selection`); a replica whose pool cannot
  /// connect is skipped (and marked suspect). Throws `database_error(errc::connection_refused)`
  /// when no replica is usable.
  ///
  ///     auto r = db.replica()->execute("select count(*) from jobs");
  lease replica() {
    std::optional<database_error> last;
    if (auto l = try_replicas(last)) return std::move(*l);
    if (last) throw *last;
    throw database_error(errc::connection_refused, "cluster: no usable replica (" + detail::summary(*state()) + ")",
                         "cluster");
  }

  /// `replica()`, or the primary when no replica is usable.
  ///
  ///     auto rows = db.replica_or_primary()->execute("select * from reports");
  lease replica_or_primary() {
    std::optional<database_error> last;
    if (auto l = try_replicas(last)) return std::move(*l);
    return primary();
  }

  /// Calls `fn(Connection&)` on a connection to the primary and returns what it returns. An
  /// error that says the host is no longer writable, or that its session broke, takes the host
  /// out of the primary role and wakes discovery (see `note_error`); it is rethrown.
  ///
  ///     db.with_primary([](auto& c) { c.execute("insert ..."); c.execute("update ..."); });
  template <class F>
  auto with_primary(F&& fn) -> std::decay_t<std::invoke_result_t<F&, Connection&>> {
    lease l = primary();
    return run_on(l, fn);
  }

  /// As `with_primary`, on `replica_or_primary()`.
  template <class F>
  auto with_replica(F&& fn) -> std::decay_t<std::invoke_result_t<F&, Connection&>> {
    lease l = replica_or_primary();
    return run_on(l, fn);
  }

  /// Runs `sql` on the primary and returns `Connection::execute`'s result (by value).
  ///
  ///     db.execute("delete from sessions where expires < now()");
  auto execute(std::string_view sql) {
    return with_primary([sql](Connection& c) -> decltype(auto) { return c.execute(sql); });
  }

  /// Runs `fn(Connection&)` in a transaction on the primary (where `Connection` has one).
  template <class F>
  requires infra::database_with_transaction<Connection>
  decltype(auto) transaction(F&& fn) {
    return with_primary(
        [&fn](Connection& c) -> decltype(auto) { return c.transaction(std::forward<F>(fn)); });
  }

  /// Tells the cluster what a statement on `l` threw, for leases you use yourself. When the
  /// error says the host no longer takes writes (`cluster_traits::not_writable`: PostgreSQL
  /// 25006, 57P01; MariaDB 1290, 1836) or that the session broke (`is_connection_error`), the
  /// host is marked suspect: it leaves the primary role (and the replica candidates) until the
  /// next probe, which runs at once. A broken session is also marked broken on the lease.
  /// Returns whether the error was one of those.
  ///
  ///     try { c->execute(sql); } catch (const kysera::infra::database_error& e) { db.report(c, e); throw; }
  bool report(lease& l, const database_error& e) {
    if (is_connection_error(e.condition())) l.mark_broken();
    return note_error(l.host(), e);
  }

  /// As `report`, for an error about host `host` from anywhere. A report is taken as it comes,
  /// also one that arrives late (a statement that ran across two role changes): at worst the
  /// host leaves the primary role until the round it triggers names it again.
  bool note_error(std::size_t host, const database_error& e) {
    const bool gone = is_connection_error(e.condition());
    const bool read_only = cluster_traits<Connection>::not_writable(e);
    {
      std::lock_guard lock(state_mutex_);
      auto next = std::make_shared<cluster_state>(*state_);
      auto& h = next->hosts.at(host);
      h.last_error = e.what();
      if (gone || read_only) {
        h.suspect = true;
        h.eligible_replica = false;
        if (next->primary == host) next->primary.reset();
      }
      publish_locked(std::move(next));
    }
    if (gone || read_only) request_discovery();
    return gone || read_only;
  }

  /// Wakes the discovery thread for a round now instead of at the next interval (nothing when
  /// `discovery_interval` is 0).
  void request_discovery() {
    {
      std::lock_guard lock(wake_mutex_);
      wake_ = true;
    }
    wake_cv_.notify_all();
  }

  /// One discovery round on the calling thread: probes every host in order (each bounded by
  /// `probe_timeout`), publishes the new `cluster_state`, logs and reports role changes. The
  /// discovery thread calls this; call it yourself when `discovery_interval` is 0. Rounds never
  /// overlap (a second caller waits). Never throws for a host's failure (the host is down).
  ///
  ///     db.discover();
  ///     auto s = db.state();
  void discover() {
    std::vector<role_change> changes;
    std::shared_ptr<const cluster_state> published;
    {
      std::lock_guard round(discover_mutex_);
      std::vector<host_state> hosts;
      hosts.reserve(urls_.size());
      {
        const auto s = state();
        for (std::size_t i = 0; i < urls_.size(); ++i) hosts.push_back(probe_host(i, s->hosts[i]));
      }
      auto next = std::make_shared<cluster_state>();
      next->hosts = std::move(hosts);
      next->primary = choose_primary(*next);
      for (auto& h : next->hosts) h.eligible_replica = h.role == host_role::replica && within_lag(h);
      for (std::size_t i = 0; i < next->hosts.size(); ++i) {
        if (next->hosts[i].role != last_roles_[i]) {
          changes.push_back(role_change{i, next->hosts[i].name, last_roles_[i], next->hosts[i].role});
          last_roles_[i] = next->hosts[i].role;
        }
      }
      {
        std::lock_guard lock(state_mutex_);
        next->rounds = state_->rounds + 1;
        publish_locked(next);
      }
      published = std::move(next);
    }
    // Outside the locks: the callback may call into the cluster (state(), even discover()).
    for (const auto& c : changes) announce(c, *published);
  }

  /// The latest snapshot: every host with its role, lag, round trip and last error. Cheap (a
  /// shared pointer copied under a short lock); the snapshot never changes.
  ///
  ///     for (const auto& h : db.state()->hosts) std::cout << h.name << " " << to_string(h.role) << "\n";
  std::shared_ptr<const cluster_state> state() const {
    std::lock_guard lock(state_mutex_);
    return state_;
  }

  /// The pool of host `host` (index into `cluster_state::hosts`), for its metrics.
  pool_type& host_pool(std::size_t host) { return *pools_.at(host); }
  /// The number of hosts.
  std::size_t size() const noexcept { return urls_.size(); }
  const cluster_options& options() const noexcept { return options_; }

  /// Stops the discovery thread and closes every pool (leases still out are closed as they
  /// end). Idempotent, from any thread (the role-change callback too). Afterwards `primary()` and friends throw `errc::pool_closed`.
  void close() {
    std::lock_guard closing(close_mutex_);
    {
      std::lock_guard lock(wake_mutex_);
      stop_ = true;
    }
    wake_cv_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    for (auto& p : pools_) p->close();
    std::lock_guard round(discover_mutex_);
    for (std::size_t i = 0; i < probes_.size(); ++i) drop_probe(i);
  }

 private:
  void run() {
    const auto interval = options_.discovery_interval;
    for (;;) {
      {
        std::unique_lock lock(wake_mutex_);
        wake_cv_.wait_for(lock, interval, [this] { return stop_ || wake_; });
        if (stop_) return;
        wake_ = false;
      }
      try {
        discover();
      } catch (const std::exception& e) {
        logger_->error(std::string("cluster: discovery round failed: ") + e.what());
      } catch (...) {
        logger_->error("cluster: discovery round failed");
      }
    }
  }

  host_state probe_host(std::size_t i, const host_state& before) {
    host_state h;
    h.name = before.name;
    h.last_error = before.last_error;
    h.probes = before.probes + 1;
    try {
      // One deadline for the whole probe, connect and statements included: a host that stops
      // answering mid-probe (SIGSTOP, a dead link) is cut there, not after TCP gives up.
      const infra::deadline_scope bounded(options_.probe_timeout);
      auto& conn = probes_[i];
      if (!conn) conn = probe_factory_(urls_[i]);
      if (!conn) throw database_error(errc::backend_error, "cluster: the probe factory returned null", "cluster");
      const auto start = Clock::now();
      bool pinged = false;
      if constexpr (infra::database_with_bounded_ping<Connection>) {
        pinged = conn->try_ping_until(std::chrono::steady_clock::now() + options_.probe_timeout);
      }
      if (!pinged) infra::ping(*conn);
      h.round_trip = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start);
      const probe_result r = cluster_traits<Connection>::probe(*conn);
      h.role = r.role;
      h.replication_lag = r.role == host_role::replica ? r.replication_lag : std::chrono::milliseconds(0);
    } catch (const std::exception& e) {
      mark_down(i, h, e.what());
    } catch (...) {
      mark_down(i, h, "unknown error");
    }
    h.last_probe = std::chrono::system_clock::now();
    return h;
  }

  // The probe failed: the host is down and its probe connection is reopened next round.
  void mark_down(std::size_t i, host_state& h, std::string error) {
    h.role = host_role::down;
    h.round_trip.reset();
    h.replication_lag.reset();
    h.last_error = std::move(error);
    drop_probe(i);
  }

  void drop_probe(std::size_t i) noexcept {
    if (!probes_[i]) return;
    try { probes_[i]->close(); } catch (...) {}
    probes_[i].reset();
  }

  // Exactly one host claiming the primary role is it. Several (an old primary back without
  // being demoted): the one that was primary before if it is among them, else none.
  std::optional<std::size_t> choose_primary(const cluster_state& next) {
    std::vector<std::size_t> claims;
    for (std::size_t i = 0; i < next.hosts.size(); ++i)
      if (next.hosts[i].role == host_role::primary) claims.push_back(i);
    if (claims.size() == 1) return claims.front();
    if (claims.empty()) return std::nullopt;
    const auto before = std::find(last_roles_.begin(), last_roles_.end(), host_role::primary);
    const auto was = static_cast<std::size_t>(before - last_roles_.begin());
    if (before != last_roles_.end() && std::find(claims.begin(), claims.end(), was) != claims.end())
      return was;
    logger_->error("cluster: " + std::to_string(claims.size()) +
                   " hosts claim the primary role; routing no writes until one remains");
    return std::nullopt;
  }

  bool within_lag(const host_state& h) const noexcept {
    if (options_.max_replication_lag.count() == 0) return true;
    return h.replication_lag && *h.replication_lag <= options_.max_replication_lag;
  }

  // A lease from the first usable replica in routing order; empty when none is usable or none
  // could connect (`last` then holds the last connection error). Other errors are thrown.
  std::optional<lease> try_replicas(std::optional<database_error>& last) {
    const std::uint64_t route = route_.load(std::memory_order_acquire);
    std::vector<std::size_t> order;  // only when the route did not fit in the word
    std::size_t count = route & 0xFF;
    if (route == detail::route_overflow) {
      order = detail::replica_candidates(*state(), options_.selection);
      count = order.size();
    }
    if (count == 0) return std::nullopt;
    const std::size_t first = options_.selection == replica_selection::round_robin
                                  ? next_replica_.fetch_add(1, std::memory_order_relaxed) % count
                                  : 0;
    for (std::size_t k = 0; k < count; ++k) {
      const std::size_t at = (first + k) % count;
      const std::size_t h = order.empty() ? static_cast<std::size_t>((route >> (8 * (at + 1))) & 0xFF) : order[at];
      try {
        return lease(pools_[h]->acquire(), h);
      } catch (const database_error& e) {
        note_error(h, e);
        if (!is_connection_error(e.condition())) throw;
        last = e;
      }
    }
    return std::nullopt;
  }

  template <class F>
  auto run_on(lease& l, F& fn) -> std::decay_t<std::invoke_result_t<F&, Connection&>> {
    try {
      return std::invoke(fn, *l);
    } catch (const database_error& e) {
      report(l, e);
      throw;
    }
  }

  void announce(const role_change& c, const cluster_state& s) noexcept {
    std::string text = "cluster: " + c.name + " is now " + std::string(to_string(c.to)) + " (was " +
                       std::string(to_string(c.from)) + ")";
    if (c.to == host_role::down && !s.hosts[c.host].last_error.empty()) text += ": " + s.hosts[c.host].last_error;
    logger_->log(c.from == host_role::primary ? log_level::warn : log_level::info, text);
    if (options_.on_role_change) {
      try {
        options_.on_role_change(c);
      } catch (...) {
        logger_->error("cluster: the role-change callback threw");
      }
    }
  }

  cluster_options options_;
  infra::logger* logger_ = nullptr;
  std::vector<std::string> urls_;
  factory_type probe_factory_;
  std::vector<std::unique_ptr<pool_type>> pools_;

  std::mutex discover_mutex_;                        // one round at a time; guards the next two
  std::vector<std::unique_ptr<Connection>> probes_;  // the discovery connections
  std::vector<host_role> last_roles_;                // roles of the last round, for change reports

  static constexpr std::size_t no_host = static_cast<std::size_t>(-1);

  /// Makes `next` the snapshot. Caller holds `state_mutex_`.
  void publish_locked(std::shared_ptr<const cluster_state> next) {
    primary_.store(next->primary ? *next->primary : no_host, std::memory_order_release);
    route_.store(detail::pack_route(detail::replica_candidates(*next, options_.selection)), std::memory_order_release);
    state_ = std::move(next);
  }

  mutable std::mutex state_mutex_;  // guards state_ (held only to copy or swap the pointer)
  std::shared_ptr<const cluster_state> state_;
  std::atomic<std::size_t> primary_{no_host};  // state_->primary, or no_host; written with state_
  std::atomic<std::uint64_t> route_{0};         // state_'s replica candidates (pack_route)
  std::atomic<std::size_t> next_replica_{0};  // round robin

  std::mutex close_mutex_;  // one close() at a time
  std::mutex wake_mutex_;   // guards stop_ and wake_
  std::condition_variable wake_cv_;
  bool stop_ = false;
  bool wake_ = false;
  std::thread thread_;
};

}  // namespace kysera::infra::cluster
