// create_metrics_pool / is_metrics_pool for our pool, a single SQLite connection and a user pool
// that specialises pool_traits; unknown types are rejected.

#include "support/catch.hpp"

#include "pool/support_pool.hpp"

#include <kysera/infra/pool.hpp>

#if defined(KYSERA_INFRA_HAS_SQLITE)
#include <kysera/infra/adapters/sqlite.hpp>
#endif

#include <string>
#include <type_traits>

namespace infra = kysera::infra;
namespace kp = kysera::infra::pool;
using kysera::test::pool::fake_backend;
using kysera::test::pool::fake_connection;
using kysera::test::pool::metrics;
using namespace std::chrono_literals;

namespace toy {
// A user's own pool, knowing nothing of kysera.
class toy_pool {
 public:
  int size() const { return size_; }
  int in_use() const { return in_use_; }
  int queued() const { return queued_; }
  int capacity() const { return 8; }
  void shutdown() {
    size_ = in_use_ = queued_ = 0;
    shut_down_ = true;
  }
  bool is_shut_down() const { return shut_down_; }
  void set(int size, int in_use, int queued) {
    size_ = size;
    in_use_ = in_use;
    queued_ = queued;
  }

 private:
  int size_ = 0, in_use_ = 0, queued_ = 0;
  bool shut_down_ = false;
};

struct unknown_pool {
  int size() const { return 3; }
  void close() {}
};
}  // namespace toy

// The documented customisation point: one specialisation, two static functions.
template <>
struct kysera::infra::pool::pool_traits<toy::toy_pool> {
  static pool_metrics get_metrics(toy::toy_pool& p) {
    auto total = static_cast<std::size_t>(p.size());
    auto active = static_cast<std::size_t>(p.in_use());
    return pool_metrics{total, total - active, active, static_cast<std::size_t>(p.queued()),
                        static_cast<std::size_t>(p.capacity())};
  }
  static void close(toy::toy_pool& p) { p.shutdown(); }
};

namespace {
template <class T>
concept accepted_by_create_metrics_pool = requires(T& t) { kp::create_metrics_pool(t); };
}  // namespace

TEST_CASE("create_metrics_pool accepts a user pool that specialises pool_traits", "[pool]") {
  static_assert(kp::pool_with_metrics<toy::toy_pool>);
  static_assert(accepted_by_create_metrics_pool<toy::toy_pool>);
  toy::toy_pool p;
  CHECK(kp::is_metrics_pool(p));
  auto handle = kp::create_metrics_pool(p);
  CHECK(handle.get_metrics() == metrics(0, 0, 0, 0, 8));
  p.set(5, 2, 1);
  CHECK(handle.get_metrics() == metrics(5, 3, 2, 1, 8));
  auto copy = handle;  // a small copyable handle
  copy.close();
  CHECK(p.is_shut_down());
  CHECK(handle.get_metrics() == metrics(0, 0, 0, 0, 8));
}

TEST_CASE("a metrics_pool handle is itself a metrics pool", "[pool]") {
  // Like the TypeScript type guard: anything that reports pool metrics is a metrics pool.
  toy::toy_pool p;
  const kp::metrics_pool handle = kp::create_metrics_pool(p);
  CHECK(kp::is_metrics_pool(handle));
  CHECK(kp::is_metrics_pool(kp::create_metrics_pool(p)));
  std::optional<kp::metrics_pool> held = handle;  // as health options hold it
  CHECK(kp::is_metrics_pool(*held));
  // It stays a handle: create_metrics_pool is not offered a handle (it would watch the handle).
  static_assert(!accepted_by_create_metrics_pool<kp::metrics_pool>);
}

TEST_CASE("types without pool_traits are rejected", "[pool]") {
  static_assert(!kp::pool_with_metrics<toy::unknown_pool>);
  static_assert(!kp::pool_with_metrics<int>);
  static_assert(!kp::pool_with_metrics<fake_connection>);
  static_assert(!accepted_by_create_metrics_pool<toy::unknown_pool>);
  static_assert(!accepted_by_create_metrics_pool<fake_connection>);
  toy::unknown_pool u;
  CHECK_FALSE(kp::is_metrics_pool(u));
  static_assert(!kp::is_metrics_pool(42));
}

TEST_CASE("create_metrics_pool watches our connection_pool exactly", "[pool]") {
  using pool_t = kp::connection_pool<fake_connection>;
  static_assert(kp::pool_with_metrics<pool_t>);
  static_assert(accepted_by_create_metrics_pool<pool_t>);
  auto backend = fake_backend::make();
  kp::pool_options o;
  o.max_size = 4;
  o.housekeeping_interval = 0ms;
  pool_t pool(backend->factory(), o);
  CHECK(kp::is_metrics_pool(pool));
  std::optional<kp::metrics_pool> handle = kp::create_metrics_pool(pool);  // as health options hold it
  CHECK(handle->get_metrics() == metrics(0, 0, 0, 0, 4));
  {
    auto a = pool.acquire();
    auto b = pool.acquire();
    CHECK(handle->get_metrics() == metrics(2, 0, 2, 0, 4));
  }
  CHECK(handle->get_metrics() == metrics(2, 2, 0, 0, 4));
  CHECK(handle->get_metrics() == pool.get_metrics());
  handle->close();
  CHECK(pool.is_closed());
  CHECK(handle->get_metrics() == metrics(0, 0, 0, 0, 4));
  CHECK(backend->open() == 0);
}

#if defined(KYSERA_INFRA_HAS_SQLITE)
TEST_CASE("a single SQLite connection counts as a pool of one", "[pool][sqlite]") {
  static_assert(kp::pool_with_metrics<infra::sqlite::connection>);
  infra::sqlite::connection db(":memory:");
  CHECK(kp::is_metrics_pool(db));
  auto handle = kp::create_metrics_pool(db);
  CHECK(handle.get_metrics() == metrics(1, 0, 1, 0, 1));
  handle.close();
  CHECK_FALSE(db.is_open());
  CHECK(handle.get_metrics() == metrics(0, 0, 0, 0, 1));
}
#endif
