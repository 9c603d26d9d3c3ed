#pragma once
/// \file
/// `operation_duration`: the `db.client.operation.duration` histograms of one database (system
/// and namespace), one series per operation name and error type, and how statements and errors
/// map onto those bounded sets.

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "../error.hpp"
#include "histogram.hpp"
#include "visitor.hpp"

namespace kysera::infra::metrics {

/// OpenTelemetry `db.system.name` values this library's adapters stand for.
enum class db_system { postgresql, mysql, mariadb, sqlite, other_sql };

constexpr std::string_view to_string(db_system s) noexcept {
  switch (s) {
    case db_system::postgresql: return "postgresql";
    case db_system::mysql: return "mysql";
    case db_system::mariadb: return "mariadb";
    case db_system::sqlite: return "sqlite";
    case db_system::other_sql: return "other_sql";
  }
  return "other_sql";
}

/// The attributes fixed for one instrumented database. `db_namespace`: the database name
/// (PostgreSQL `db`, MySQL schema, SQLite file's main); empty leaves the attribute out.
struct operation_attributes {
  db_system system = db_system::other_sql;
  std::string db_namespace{};
};

namespace detail {

/// The `db.operation.name` values recorded; anything else records without the attribute.
inline constexpr std::array<std::string_view, 30> operation_names{
    "SELECT",   "INSERT", "UPDATE",  "DELETE",  "MERGE",   "UPSERT", "REPLACE", "WITH",
    "BEGIN",    "START",  "COMMIT",  "ROLLBACK", "SAVEPOINT", "RELEASE", "CREATE", "ALTER",
    "DROP",     "TRUNCATE", "SET",   "SHOW",    "EXPLAIN", "CALL",   "PRAGMA",  "VALUES",
    "COPY",     "GRANT",  "REVOKE",  "LOCK",    "ANALYZE", "VACUUM"};
inline constexpr std::size_t no_operation = operation_names.size();  // index: attribute left out

/// Highest `errc` value + 1: error index 0 is success, 1..21 the `errc` values, the last `_OTHER`.
inline constexpr std::size_t errc_slots = static_cast<std::size_t>(errc::database_not_found) + 1;
inline constexpr std::size_t other_error = errc_slots;
inline constexpr std::size_t error_slots = errc_slots + 1;

/// Index into `operation_names` of the statement's first keyword (after blanks and `--`/`/* */`
/// comments, compared case-insensitively), or `no_operation`.
constexpr std::size_t operation_index(std::string_view sql) noexcept {
  std::size_t i = 0;
  for (;;) {
    while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r' || sql[i] == '(')) ++i;
    if (sql.substr(i, 2) == "--") {
      while (i < sql.size() && sql[i] != '\n') ++i;
    } else if (sql.substr(i, 2) == "/*") {
      const auto end = sql.find("*/", i + 2);
      if (end == std::string_view::npos) return no_operation;
      i = end + 2;
    } else {
      break;
    }
  }
  char word[10] = {};
  std::size_t n = 0;
  for (; i < sql.size(); ++i) {
    char c = sql[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c < 'A' || c > 'Z') break;
    if (n == sizeof word) return no_operation;  // longer than every known keyword
    word[n++] = c;
  }
  const std::string_view w(word, n);
  for (std::size_t k = 0; k < operation_names.size(); ++k) {
    if (operation_names[k] == w) return k;
  }
  return no_operation;
}

/// Error index of the exception in flight: its `errc` for our codes, else `other_error`.
inline std::size_t current_error_index() noexcept {
  try {
    throw;
  } catch (const std::system_error& e) {
    if (is_infra_error(e.code()) && e.code().value() > 0 &&
        static_cast<std::size_t>(e.code().value()) < errc_slots) {
      return static_cast<std::size_t>(e.code().value());
    }
  } catch (...) {
  }
  return other_error;
}

}  // namespace detail

/// Thread-safe: `record` may run on any thread, concurrently with `collect`; lock-free once a
/// series exists (its histogram is allocated on first use, one compare-and-swap). Bounded: at most
/// 31 operation names x 23 outcomes series. Made by `registry::operation_duration` or by hand.
///
///     auto family = std::make_shared<operation_duration>(operation_attributes{db_system::sqlite, "main"});
///     family->record("SELECT 1", 0.002, 0);  // success
class operation_duration {
 public:
  using time_point = std::chrono::system_clock::time_point;

  explicit operation_duration(operation_attributes attrs)
      : attrs_(std::move(attrs)), created_(std::chrono::system_clock::now()) {}
  operation_duration(const operation_duration&) = delete;
  operation_duration& operator=(const operation_duration&) = delete;
  ~operation_duration() {
    for (auto& s : series_) delete s.load(std::memory_order_relaxed);
  }

  const operation_attributes& attributes() const noexcept { return attrs_; }

  /// The histogram for an operation index (`detail::operation_index`) and error index (0 on
  /// success). Allocates it the first time; returns null only when that allocation failed.
  histogram* series(std::size_t operation, std::size_t error) noexcept {
    auto& slot = series_[operation * detail::error_slots + error];
    histogram* h = slot.load(std::memory_order_acquire);
    if (h != nullptr) [[likely]] return h;
    auto* fresh = new (std::nothrow) histogram();
    if (fresh == nullptr) return nullptr;
    if (slot.compare_exchange_strong(h, fresh, std::memory_order_acq_rel, std::memory_order_acquire)) return fresh;
    delete fresh;  // another thread won
    return h;
  }

  /// Records one statement's duration; `error` is 0 on success, else a `detail` error index.
  template <class Rep, class Period>
  void record(std::string_view sql, std::chrono::duration<Rep, Period> d, std::size_t error) noexcept {
    if (auto* h = series(detail::operation_index(sql), error)) h->record(d);
  }
  void record(std::string_view sql, double seconds, std::size_t error) noexcept {
    if (auto* h = series(detail::operation_index(sql), error)) h->record(seconds);
  }

  /// Every series recorded so far, as `db.client.operation.duration` histograms.
  void collect(visitor& v) const {
    static constexpr descriptor desc{"db.client.operation.duration", "s",
                                     "Duration of database client operations."};
    for (std::size_t op = 0; op <= detail::no_operation; ++op) {
      for (std::size_t err = 0; err < detail::error_slots; ++err) {
        const histogram* h = series_[op * detail::error_slots + err].load(std::memory_order_acquire);
        if (h == nullptr) continue;
        std::array<attribute, 4> a{};
        std::size_t n = 0;
        a[n++] = {"db.system.name", to_string(attrs_.system)};
        if (!attrs_.db_namespace.empty()) a[n++] = {"db.namespace", attrs_.db_namespace};
        if (op != detail::no_operation) a[n++] = {"db.operation.name", detail::operation_names[op]};
        if (err == detail::other_error) {
          a[n++] = {"error.type", "_OTHER"};
        } else if (err != 0) {
          a[n++] = {"error.type", infra::to_string(static_cast<errc>(err))};
        }
        v.on_histogram(desc, std::span<const attribute>(a.data(), n), h->snapshot(), created_);
      }
    }
  }

 private:
  operation_attributes attrs_;
  time_point created_;
  std::array<std::atomic<histogram*>, (detail::no_operation + 1) * detail::error_slots> series_{};
};

}  // namespace kysera::infra::metrics
