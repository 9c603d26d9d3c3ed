#pragma once
/// \file
/// The SQLite C API side of the SQLite adapter: running the statements of one SQL text into
/// `rows`, turning a handle's error state into `database_error`, and the busy and progress
/// handlers through which `cancel()` reaches a statement or lock wait.

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "../../detail/time.hpp"
#include "../../error.hpp"
#include "../../rows.hpp"
#include "../detail/basic_connection.hpp"
#include "errors.hpp"

namespace kysera::infra::sqlite::detail {

struct statement_guard {
  sqlite3_stmt* stmt;
  ~statement_guard() { sqlite3_finalize(stmt); }
};

/// The error for result code `rc` on `db`. The handle's error state describes rc unless rc is
/// ours (an interrupt noticed between statements, an out-of-memory read): then SQLite's generic
/// text for rc is used. A lock wait that cancel() cut short reports SQLITE_BUSY: with
/// `cancel_requested` it is still a cancellation.
inline database_error error_from(sqlite3* db, int rc, phase where, const std::string& context,
                                 bool cancel_requested) {
  int code = rc;
  std::string message = sqlite3_errstr(rc);
  if ((sqlite3_extended_errcode(db) & 0xff) == (rc & 0xff)) {
    code = sqlite3_extended_errcode(db);
    message = sqlite3_errmsg(db);
  }
  const int primary = code & 0xff;
  if (cancel_requested && (primary == SQLITE_INTERRUPT || primary == SQLITE_BUSY || primary == SQLITE_LOCKED)) {
    return database_error(errc::cancelled,
                          "sqlite: " + message + " [code " + std::to_string(code) + "] (cancelled; " + context + ")",
                          "sqlite", {}, code);
  }
  return make_error(code, message, where, context);
}

/// One row of `stmt` as text (blobs as raw bytes, NULL as nullopt); `fail(rc)` must throw.
template <class Fail>
std::vector<std::optional<std::string>> read_row(sqlite3_stmt* stmt, int columns, Fail& fail) {
  std::vector<std::optional<std::string>> row;
  row.reserve(static_cast<std::size_t>(columns));
  for (int c = 0; c < columns; ++c) {
    switch (sqlite3_column_type(stmt, c)) {
      case SQLITE_NULL: row.emplace_back(std::nullopt); break;
      case SQLITE_BLOB: {
        const void* data = sqlite3_column_blob(stmt, c);
        auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
        if (data == nullptr && size > 0) fail(SQLITE_NOMEM);
        row.emplace_back(size == 0 ? std::string() : std::string(static_cast<const char*>(data), size));
        break;
      }
      default: {
        const unsigned char* text = sqlite3_column_text(stmt, c);
        auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, c));
        if (text == nullptr) fail(SQLITE_NOMEM);
        row.emplace_back(std::string(reinterpret_cast<const char*>(text), size));
        break;
      }
    }
  }
  return row;
}

/// Runs every statement of `sql` on `db`, in order, and returns the rows of the last one that
/// produced columns. `fail(rc)` must throw; `cancelled()` is asked between statements.
template <class Fail, class Cancelled>
rows run_all(sqlite3* db, std::string_view sql, Fail&& fail, Cancelled&& cancelled) {
  rows result;
  const char* pos = sql.data();
  const char* const end = pos + sql.size();
  bool changed = false;
  while (pos != end) {
    if (cancelled()) fail(SQLITE_INTERRUPT);
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(db, pos, static_cast<int>(end - pos), &stmt, &tail);
    statement_guard guard{stmt};
    if (rc != SQLITE_OK) fail(rc);
    if (tail == nullptr || tail <= pos) break;  // cannot happen without a NUL byte
    pos = tail;
    if (stmt == nullptr) continue;  // whitespace or a comment
    const auto changes_before = sqlite3_total_changes64(db);
    const int columns = sqlite3_column_count(stmt);
    std::vector<std::vector<std::optional<std::string>>> values;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) values.push_back(read_row(stmt, columns, fail));
    if (rc != SQLITE_DONE) fail(rc);
    if (sqlite3_total_changes64(db) != changes_before) {
      result.affected_rows += static_cast<std::uint64_t>(sqlite3_changes64(db));
      changed = true;
    }
    if (columns > 0) {
      result.columns.clear();
      for (int c = 0; c < columns; ++c) {
        const char* name = sqlite3_column_name(stmt, c);
        result.columns.emplace_back(name != nullptr ? name : "");
      }
      result.values = std::move(values);
    }
  }
  if (changed) result.last_insert_id = sqlite3_last_insert_rowid(db);
  return result;
}

/// Thread-safe as far as SQLite calls it: the handlers run on the thread running the statement,
/// the rest is set under the connection's call lock. Installed as the handle's busy and progress
/// handlers so that a statement, and a wait for another connection's lock, ends on cancel().
struct lock_wait {
  adapters::detail::statement_marker* marker = nullptr;
  std::chrono::milliseconds limit{0};  // busy_timeout (min(busy, connect) while opening)
  std::chrono::steady_clock::time_point started{};
  // The deadline of the bounded call in progress (try_ping_until, a statement deadline), else max().
  std::chrono::steady_clock::time_point call_deadline = std::chrono::steady_clock::time_point::max();

  static constexpr int progress_interval = 1000;  // VM instructions between cancel checks

  void install(sqlite3* db) {
    sqlite3_busy_handler(db, &lock_wait::busy_callback, this);
    sqlite3_progress_handler(db, progress_interval, &lock_wait::progress_callback, this);
  }

  // Returns non-zero to interrupt: on cancel(), or once the bounded call's deadline has passed.
  static int progress_callback(void* self) noexcept {
    auto* w = static_cast<lock_wait*>(self);
    if (w->marker->cancel_requested()) return 1;
    return w->call_deadline != std::chrono::steady_clock::time_point::max() &&
                   std::chrono::steady_clock::now() >= w->call_deadline
               ? 1
               : 0;
  }

  // Called while another connection holds the lock; `count` restarts at 0 for every new lock
  // wait. Waits in growing steps up to `limit`, waking at once on cancel(). Returns 0 to give up
  // (SQLITE_BUSY).
  static int busy_callback(void* self, int count) noexcept {
    auto* w = static_cast<lock_wait*>(self);
    try {
      static constexpr int steps_ms[] = {1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100};
      const auto now = std::chrono::steady_clock::now();
      if (count == 0) w->started = now;
      const auto deadline = std::min(infra::detail::saturating_add(w->started, w->limit), w->call_deadline);
      if (now >= deadline) return 0;
      const int index = std::min(count, static_cast<int>(std::size(steps_ms)) - 1);
      const auto step = std::min<std::chrono::steady_clock::duration>(std::chrono::milliseconds(steps_ms[index]),
                                                                      deadline - now);
      return w->marker->wait_for_cancel(step) ? 0 : 1;
    } catch (...) {
      return 0;
    }
  }
};

}  // namespace kysera::infra::sqlite::detail
