#pragma once
/// \file
/// `instrument(db, ...)`: a database wrapper that records `db.client.operation.duration`.

#include <chrono>
#include <memory>
#include <string_view>
#include <utility>

#include "../database.hpp"
#include "operation_duration.hpp"
#include "registry.hpp"

namespace kysera::infra::metrics {

/// Thread-safe as far as `Db` is (recording is lock-free). Models `database`: `execute` runs the
/// statement on the wrapped database and records its duration in seconds with the statement's
/// first keyword as `db.operation.name`, plus `error.type` (the `errc` name, `_OTHER` for other
/// exceptions) when it throws; the exception propagates unchanged. `ping`, `cancel`,
/// `server_version` and `transaction` are passed through unrecorded where `Db` has them.
/// Holds a reference: `db` must outlive the wrapper.
template <database Db>
class instrumented {
 public:
  instrumented(Db& db, std::shared_ptr<operation_duration> family) noexcept
      : db_(&db), family_(std::move(family)) {}

  decltype(auto) execute(std::string_view sql) {
    timer t{family_.get(), sql, std::chrono::steady_clock::now()};
    try {
      return db_->execute(sql);
    } catch (...) {
      t.failed = true;
      family_->record(sql, std::chrono::steady_clock::now() - t.start, detail::current_error_index());
      throw;
    }
  }

  void close() { db_->close(); }

  void ping()
    requires database_with_ping<Db>
  {
    db_->ping();
  }
  void cancel() noexcept
    requires database_with_cancel<Db>
  {
    db_->cancel();
  }
  decltype(auto) server_version()
    requires database_with_server_version<Db>
  {
    return db_->server_version();
  }
  template <class F>
    requires database_with_transaction<Db>
  decltype(auto) transaction(F&& fn) {
    return db_->transaction(std::forward<F>(fn));
  }

  Db& underlying() const noexcept { return *db_; }
  const std::shared_ptr<operation_duration>& family() const noexcept { return family_; }

 private:
  struct timer {
    operation_duration* family;
    std::string_view sql;
    std::chrono::steady_clock::time_point start;
    bool failed = false;
    timer(operation_duration* f, std::string_view s, std::chrono::steady_clock::time_point t) noexcept
        : family(f), sql(s), start(t) {}
    timer(const timer&) = delete;
    timer& operator=(const timer&) = delete;
    ~timer() {
      if (!failed) family->record(sql, std::chrono::steady_clock::now() - start, 0);
    }
  };

  Db* db_;
  std::shared_ptr<operation_duration> family_;
};

/// Records into the registry's family for `attrs` (shared by every database instrumented with the
/// same system and namespace, so their series add up instead of clashing).
///
///     kysera::infra::metrics::registry reg;
///     auto db = kysera::infra::metrics::instrument(conn, reg, {db_system::postgresql, "app"});
///     db.execute("SELECT 1");  // db.client.operation.duration{db.operation.name="SELECT"}
template <database Db>
instrumented<Db> instrument(Db& db, registry& reg, const operation_attributes& attrs) {
  return instrumented<Db>(db, reg.operation_duration(attrs));
}

/// Records into a family the caller made (and registers wherever it likes, or reads itself).
template <database Db>
instrumented<Db> instrument(Db& db, std::shared_ptr<operation_duration> family) {
  if (!family) throw std::invalid_argument("instrument: the operation_duration family must not be null");
  return instrumented<Db>(db, std::move(family));
}

}  // namespace kysera::infra::metrics
