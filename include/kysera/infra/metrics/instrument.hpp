#pragma once
/// \file
/// `instrument(db, ...)`: a database wrapper that records `db.client.operation.duration`.

#include <chrono>
#include <functional>
#include <memory>
#include <type_traits>
#include <string_view>
#include <utility>

#include "../database.hpp"
#include "operation_duration.hpp"
#include "registry.hpp"

namespace kysera::infra::metrics {

namespace detail {

/// Runs `run()` (one statement, `sql`) and records its duration in `family`: success when it
/// returns, the error index of what it throws otherwise (rethrown unchanged).
template <class Run>
decltype(auto) timed_statement(operation_duration& family, std::string_view sql, Run&& run) {
  struct timer {
    operation_duration& family;
    std::string_view sql;
    std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
    bool failed = false;
    timer(operation_duration& f, std::string_view s) noexcept : family(f), sql(s) {}
    timer(const timer&) = delete;
    timer& operator=(const timer&) = delete;
    ~timer() {
      if (!failed) family.record(sql, std::chrono::steady_clock::now() - start, 0);
    }
  } t{family, sql};
  try {
    return run();
  } catch (...) {
    t.failed = true;
    family.record(sql, std::chrono::steady_clock::now() - t.start, current_error_index());
    throw;
  }
}

}  // namespace detail

/// Not thread-safe beyond the session itself (a transaction's session belongs to one call).
/// What `instrumented::transaction` hands `fn`: the session, with `execute` recorded like the
/// wrapper's own; `underlying()` and `->` reach the rest of the session, unrecorded.
template <class Session>
class instrumented_session {
 public:
  using underlying_type = Session;

  instrumented_session(Session& session, operation_duration& family) noexcept : session_(session), family_(family) {}
  instrumented_session(const instrumented_session&) = delete;
  instrumented_session& operator=(const instrumented_session&) = delete;

  decltype(auto) execute(std::string_view sql) {
    return detail::timed_statement(family_, sql, [&]() -> decltype(auto) { return session_.execute(sql); });
  }
  Session& underlying() const noexcept { return session_; }
  Session* operator->() const noexcept { return std::addressof(session_); }

 private:
  Session& session_;
  operation_duration& family_;
};

/// Thread-safe as far as `Db` is (recording is lock-free). Models `database`: `execute` runs the
/// statement on the wrapped database and records its duration in seconds with the statement's
/// first keyword as `db.operation.name`, plus `error.type` (the `errc` name, `_OTHER` for other
/// exceptions) when it throws; the exception propagates unchanged. `transaction(fn)` hands `fn`
/// an `instrumented_session`, so the statements inside are recorded one by one (BEGIN and COMMIT
/// are the session's own and are not). `ping`, `cancel` and `server_version` are passed through
/// unrecorded where `Db` has them.
/// Holds a reference: `db` must outlive the wrapper.
template <database Db>
class instrumented {
 public:
  instrumented(Db& db, std::shared_ptr<operation_duration> family) noexcept
      : db_(&db), family_(std::move(family)) {}

  decltype(auto) execute(std::string_view sql) {
    return detail::timed_statement(*family_, sql, [&]() -> decltype(auto) { return db_->execute(sql); });
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
    return db_->transaction([&](auto& session) -> decltype(auto) {
      instrumented_session<std::remove_reference_t<decltype(session)>> recorded(session, *family_);
      return std::invoke(fn, recorded);
    });
  }

  Db& underlying() const noexcept { return *db_; }
  const std::shared_ptr<operation_duration>& family() const noexcept { return family_; }

 private:
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
