#pragma once
/// \file
/// Test doubles for code written against the `database` concept; not part of
/// `<kysera/infra.hpp>`, include this header from your tests.
///
/// `fake_database`: a scriptable in-memory `database`, and the template for a user's own type.
/// - execute(sql) records the statement, then follows the script: the next queued outcome if
///   any (throw a database_error with a code, or block until released), else succeeds.
/// - block_next(): the next execute waits until release() or cancel() (cancel throws errc::cancelled).
/// - close() counts calls; execute after close throws errc::closed.
/// Thread-safe.
///
/// `fake_connection`: a whole adapter connection over the adapter skeleton with an in-memory
/// "server"; the adapter contract suite runs over it without a server. It is the template a new
/// adapter starts from (docs/adapters/writing-an-adapter.md). Thread-safe like every adapter.
///
/// `minimal_database`: the smallest type that models `database`. Not thread-safe.

#include "../adapters/detail/basic_connection.hpp"
#include "../database.hpp"
#include "../error.hpp"
#include "../rows.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kysera::infra::testing {

/// Thread-safe: a scriptable in-memory `database` (see the file comment).
class fake_database {
 public:
  /// Queue a failure for the next execute().
  void fail_next(infra::errc code, std::string message = "scripted failure") {
    std::lock_guard lock(mutex_);
    script_.push_back([code, message] { throw infra::database_error(code, message, "fake"); });
  }
  /// Queue any action (may throw anything, may block) for the next execute().
  void on_next(std::function<void()> action) {
    std::lock_guard lock(mutex_);
    script_.push_back(std::move(action));
  }
  /// Make every execute() fail with `code` until clear_failures().
  void fail_always(infra::errc code) {
    std::lock_guard lock(mutex_);
    always_fail_ = true;
    always_code_ = code;
  }
  void clear_failures() {
    std::lock_guard lock(mutex_);
    always_fail_ = false;
    script_.clear();
  }
  /// The next execute() blocks until release() or cancel().
  void block_next() {
    std::lock_guard lock(mutex_);
    block_next_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      released_ = true;
    }
    cv_.notify_all();
  }

  void execute(std::string_view sql) {
    std::function<void()> action;
    bool block = false;
    {
      std::lock_guard lock(mutex_);
      executed_.emplace_back(sql);
      if (closed_) throw infra::database_error(infra::errc::closed, "fake database is closed", "fake");
      if (always_fail_) throw infra::database_error(always_code_, "scripted failure", "fake");
      if (!script_.empty()) {
        action = std::move(script_.front());
        script_.pop_front();
      }
      block = block_next_;
      block_next_ = false;
    }
    if (block) {
      std::unique_lock lock(mutex_);
      ++blocked_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return released_ || cancelled_; });
      --blocked_;
      bool was_cancelled = cancelled_;
      released_ = false;
      cancelled_ = false;
      if (was_cancelled) throw infra::database_error(infra::errc::cancelled, "cancelled", "fake");
    }
    if (action) action();
  }

  void close() {
    std::lock_guard lock(mutex_);
    ++close_calls_;
    closed_ = true;
    released_ = true;
    cv_.notify_all();
  }

  void cancel() {
    {
      std::lock_guard lock(mutex_);
      ++cancel_calls_;
      if (blocked_ > 0) cancelled_ = true;
    }
    cv_.notify_all();
  }

  std::string server_version() { return "fake 1.0"; }

  /// Waits until an execute() is blocked (for tests that need "a statement is running now").
  void wait_until_blocked() {
    std::unique_lock lock(mutex_);
    cv_.wait(lock, [&] { return blocked_ > 0; });
  }

  std::vector<std::string> executed() const {
    std::lock_guard lock(mutex_);
    return executed_;
  }
  std::size_t execute_count() const {
    std::lock_guard lock(mutex_);
    return executed_.size();
  }
  int close_calls() const {
    std::lock_guard lock(mutex_);
    return close_calls_;
  }
  int cancel_calls() const {
    std::lock_guard lock(mutex_);
    return cancel_calls_;
  }
  bool is_closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> script_;
  std::vector<std::string> executed_;
  bool always_fail_ = false;
  infra::errc always_code_ = infra::errc::connection_lost;
  bool block_next_ = false;
  bool released_ = false;
  bool cancelled_ = false;
  int blocked_ = 0;
  int close_calls_ = 0;
  int cancel_calls_ = 0;
  bool closed_ = false;
};

/// Thread-safe (the skeleton serialises every call). A backend driver whose "server" is a few
/// tables in memory, private to the connection. Connection string `fake://user:password@host/db`:
/// the password must be `fake_connection::password`, host `refused` refuses the connection.
/// It understands just the SQL the contract suite sends: SELECT 1; CREATE TABLE t ...; DROP TABLE
/// IF EXISTS t; INSERT INTO t (id, v) VALUES (n, 'text'); SELECT COUNT(*) FROM t; SELECT id FROM t
/// WHERE v = 'text'; SELECT * FROM t; BEGIN, COMMIT, ROLLBACK; and WAIT FOR CANCEL, which runs until
/// cancel() (at most a minute). Anything else is a syntax error (SQLSTATE 42601); a missing table
/// 42P01; a duplicate id 23505.
class fake_connection : public infra::adapters::detail::basic_connection<fake_connection> {
  using base = infra::adapters::detail::basic_connection<fake_connection>;
  friend base;

 public:
  static constexpr std::string_view backend_name = "fake";
  static constexpr std::string_view session_prefix = "on ";
  static constexpr std::string_view password = "fake-s3cret";

  /// Connects: throws errc::invalid_url, connection_refused or authentication_failed.
  explicit fake_connection(std::string_view url) {
    constexpr std::string_view scheme = "fake://";
    const auto at = url.find('@');
    const auto colon = url.find(':', scheme.size());
    const auto slash = url.find('/', at == std::string_view::npos ? scheme.size() : at);
    if (url.substr(0, scheme.size()) != scheme || at == std::string_view::npos || colon > at ||
        slash == std::string_view::npos) {
      throw infra::database_error(infra::errc::invalid_url, "fake: invalid connection string", "fake");
    }
    const std::string user(url.substr(scheme.size(), colon - scheme.size()));
    const std::string given(url.substr(colon + 1, at - colon - 1));
    const std::string host(url.substr(at + 1, slash - at - 1));
    identify("fake://" + user + "@" + host + std::string(url.substr(slash)), {given});
    if (host == "refused") throw error(infra::errc::connection_refused, "nothing listens " + context());
    if (given != password) {
      throw error(infra::errc::authentication_failed, "password " + given + " rejected " + context(), "28P01");
    }
  }
  ~fake_connection() { close(); }

  infra::rows execute(std::string_view sql) {
    std::lock_guard lock(mutex_);
    check_open_locked();
    statement_scope running(marker());
    return run_locked(std::string(sql));
  }
  void ping() { (void)execute("SELECT 1"); }
  std::string server_version() {
    std::lock_guard lock(mutex_);
    check_open_locked();
    return "fake 1.0";
  }

  using base::cancel;
  using base::close;
  using base::description;
  using base::is_open;
  using base::transaction;
  using base::try_ping_until;

 private:
  using table = std::map<std::int64_t, std::string>;

  // ---- hooks of basic_connection
  void begin_transaction_locked() { (void)execute("BEGIN"); }
  void commit_transaction_locked() {
    check_open_locked();  // fn may have closed the connection
    (void)execute("COMMIT");
  }
  void rollback_transaction_locked() noexcept {
    if (snapshot_) tables_ = *std::exchange(snapshot_, std::nullopt);
  }
  void close_session_locked() noexcept {
    tables_.clear();
    snapshot_.reset();
  }
  bool interrupt_statement() noexcept { return true; }  // the running statement watches the marker
  bool ready_for_bounded_ping_locked() const noexcept { return true; }
  bool bounded_ping_locked(std::chrono::steady_clock::time_point) {
    (void)execute("SELECT 1");  // answers at once: nothing to bound
    return true;
  }

  infra::database_error failed(infra::errc code, const std::string& what, const char* sqlstate) const {
    return error(code, what + " " + context(), sqlstate);
  }

  static bool starts(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

  // The table named right after `prefix`, up to a space or the end.
  table& table_after(const std::string& sql, std::string_view prefix) {
    std::string name = sql.substr(prefix.size(), sql.find(' ', prefix.size()) - prefix.size());
    auto it = tables_.find(name);
    if (it == tables_.end()) throw failed(infra::errc::query_failed, "relation " + name + " does not exist", "42P01");
    return it->second;
  }

  // The text between the first pair of single quotes after `from`.
  static std::string quoted(const std::string& sql, std::size_t from) {
    auto open = sql.find('\'', from);
    auto close = sql.find('\'', open + 1);
    return sql.substr(open + 1, close - open - 1);
  }

  static infra::rows one(std::string column, std::string value) {
    infra::rows r;
    r.columns = {std::move(column)};
    r.values = {{std::move(value)}};
    return r;
  }

  infra::rows run_locked(const std::string& sql) {
    if (sql == "SELECT 1") return one("1", "1");
    if (sql == "BEGIN") {
      snapshot_ = tables_;
      return {};
    }
    if (sql == "COMMIT") {
      snapshot_.reset();
      return {};
    }
    if (sql == "WAIT FOR CANCEL") {
      const auto end = std::chrono::steady_clock::now() + std::chrono::minutes(1);
      while (!marker().wait_for_cancel(std::chrono::milliseconds(50))) {
        if (std::chrono::steady_clock::now() >= end) return {};
      }
      throw failed(infra::errc::cancelled, "statement cancelled", "57014");
    }
    if (starts(sql, "DROP TABLE IF EXISTS ")) {
      tables_.erase(sql.substr(21));
      return {};
    }
    if (starts(sql, "CREATE TABLE ")) {
      std::string name = sql.substr(13, sql.find(' ', 13) - 13);
      if (!tables_.emplace(name, table{}).second) {
        throw failed(infra::errc::query_failed, "relation " + name + " already exists", "42P07");
      }
      return {};
    }
    if (starts(sql, "INSERT INTO ")) {
      table& t = table_after(sql, "INSERT INTO ");
      const auto values = sql.find("VALUES (");
      if (values == std::string::npos) throw failed(infra::errc::query_failed, "syntax error", "42601");
      const std::int64_t id = std::stoll(sql.substr(values + 8));
      if (!t.emplace(id, quoted(sql, values)).second) {
        throw failed(infra::errc::constraint_violation, "duplicate key " + std::to_string(id), "23505");
      }
      infra::rows r;
      r.affected_rows = 1;
      return r;
    }
    if (starts(sql, "SELECT COUNT(*) FROM ")) {
      return one("count", std::to_string(table_after(sql, "SELECT COUNT(*) FROM ").size()));
    }
    if (starts(sql, "SELECT id FROM ")) {
      const std::string v = quoted(sql, sql.find(" WHERE v = "));
      infra::rows r;
      r.columns = {"id"};
      for (const auto& [id, text] : table_after(sql, "SELECT id FROM ")) {
        if (text == v) r.values.push_back({std::to_string(id)});
      }
      return r;
    }
    if (starts(sql, "SELECT * FROM ")) {
      infra::rows r;
      r.columns = {"id", "v"};
      for (const auto& [id, text] : table_after(sql, "SELECT * FROM ")) r.values.push_back({std::to_string(id), text});
      return r;
    }
    throw failed(infra::errc::query_failed, "syntax error", "42601");
  }

  std::map<std::string, table> tables_;   // under mutex_
  std::optional<std::map<std::string, table>> snapshot_;  // taken at BEGIN; under mutex_
};

static_assert(infra::database_with_transaction<fake_connection>);
static_assert(infra::database_with_bounded_ping<fake_connection>);

/// Not thread-safe: the smallest possible `database`; proves the concept asks for nothing more.
struct minimal_database {
  int executes = 0;
  bool closed = false;
  void execute(std::string_view) { ++executes; }
  void close() { closed = true; }
};

static_assert(infra::database<fake_database>);
static_assert(infra::database_with_cancel<fake_database>);
static_assert(infra::database<minimal_database>);
static_assert(!infra::database_with_cancel<minimal_database>);

}  // namespace kysera::infra::testing
