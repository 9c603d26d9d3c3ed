#pragma once
/// \file
/// Pool metrics: `pool_metrics`, the `pool_traits` customisation point, the type-erased
/// `metrics_pool` handle and `create_metrics_pool`.

#include <concepts>
#include <cstddef>
#include <type_traits>

namespace kysera::infra::pool {

/// A value type: a snapshot of a pool. `max` is the configured maximum (1 for a single connection).
struct pool_metrics {
  std::size_t total = 0;    ///< open connections, idle + active
  std::size_t idle = 0;     ///< open and free to lease
  std::size_t active = 0;   ///< leased right now
  std::size_t waiting = 0;  ///< callers blocked in acquire()
  std::size_t max = 0;      ///< configured maximum size
  friend bool operator==(const pool_metrics&, const pool_metrics&) = default;
};

/// Customisation point: specialise for your own pool type `P` to make `create_metrics_pool`
/// accept it. The specialisation provides
///   1. `static pool_metrics get_metrics(P& p)`: a snapshot; must not throw when the database is down;
///   2. `static void close(P& p)`: closes the pool.
///
///     template <> struct kysera::infra::pool::pool_traits<my_pool> {
///       static pool_metrics get_metrics(my_pool& p) { return {p.size(), p.free(), p.used(), 0, p.cap()}; }
///       static void close(my_pool& p) { p.shutdown(); }
///     };
///
/// There is no primary definition: types nobody specialised for are rejected at compile time.
template <class P>
struct pool_traits;

/// Whether `create_metrics_pool` accepts `P`.
template <class P>
concept pool_with_metrics = requires(P& p) {
  { pool_traits<std::remove_cvref_t<P>>::get_metrics(p) } -> std::same_as<pool_metrics>;
  pool_traits<std::remove_cvref_t<P>>::close(p);
};

/// Thread-safe as far as the pool's own `get_metrics` and `close` are: a small copyable handle
/// that reads metrics from, and closes, a pool that outlives it.
class metrics_pool {
 public:
  template <pool_with_metrics P>
  explicit metrics_pool(P& pool) noexcept
      : pool_(const_cast<void*>(static_cast<const void*>(&pool))),
        metrics_([](void* p) { return pool_traits<std::remove_cvref_t<P>>::get_metrics(*static_cast<P*>(p)); }),
        close_([](void* p) { pool_traits<std::remove_cvref_t<P>>::close(*static_cast<P*>(p)); }) {}

  pool_metrics get_metrics() const { return metrics_(pool_); }
  void close() const { close_(pool_); }

 private:
  void* pool_;
  pool_metrics (*metrics_)(void*);
  void (*close_)(void*);
};

/// A `metrics_pool` watching `pool`. Compiles only for types with a `pool_traits` specialisation
/// (our `connection_pool`, a single `sqlite::connection` (specialised in the SQLite adapter), and user pools).
///
///     auto handle = kysera::infra::pool::create_metrics_pool(my_pool);
///     auto m = handle.get_metrics();  // m.active, m.idle, ...
template <pool_with_metrics P>
metrics_pool create_metrics_pool(P& pool) noexcept {
  return metrics_pool(pool);
}

/// True for everything that can report `pool_metrics`: the types `create_metrics_pool` accepts
/// (`pool_with_metrics`) and a `metrics_pool` handle itself, like the TypeScript type guard
/// (anything with `getMetrics()` is a metrics pool). For run-time branches in generic code.
///
///     auto handle = create_metrics_pool(my_pool);
///     assert(is_metrics_pool(handle) && is_metrics_pool(my_pool));
template <class T>
constexpr bool is_metrics_pool(const T&) noexcept {
  return pool_with_metrics<T> || std::is_same_v<std::remove_cvref_t<T>, metrics_pool>;
}

}  // namespace kysera::infra::pool
