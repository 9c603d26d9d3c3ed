#pragma once
// The SQLite side of the adapter contract suite (tests/adapters/contract_it.cpp), and the
// temporary-file helper the SQLite tests share.
//
// Files live in one directory per test process, <KYSERA_TEST_BINARY_DIR>/sqlite-tmp-<pid>-<n>
// (or the system temp directory), removed with everything in it when the process exits.

#include <kysera/infra/adapters/sqlite.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>

#include <unistd.h>

namespace kysera::test {

/// A process-wide scratch directory for SQLite files; thread-safe.
class sqlite_scratch {
 public:
  static sqlite_scratch& instance() {
    static sqlite_scratch scratch;
    return scratch;
  }

  const std::filesystem::path& dir() const noexcept { return dir_; }

  /// A new, unique path in the scratch directory (the file does not exist yet).
  std::filesystem::path unique_path(const std::string& stem = "db") {
    return dir_ / (stem + "-" + std::to_string(counter_.fetch_add(1)) + ".sqlite");
  }

  ~sqlite_scratch() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  sqlite_scratch(const sqlite_scratch&) = delete;
  sqlite_scratch& operator=(const sqlite_scratch&) = delete;

 private:
  sqlite_scratch() {
#ifdef KYSERA_TEST_BINARY_DIR
    std::filesystem::path base = KYSERA_TEST_BINARY_DIR;
#else
    std::filesystem::path base = std::filesystem::temp_directory_path();
#endif
    std::random_device rd;
    for (int attempt = 0;; ++attempt) {
      auto candidate = base / ("sqlite-tmp-" + std::to_string(::getpid()) + "-" + std::to_string(rd()));
      if (std::filesystem::create_directories(candidate)) {
        dir_ = candidate;
        break;
      }
      if (attempt > 100) throw std::runtime_error("cannot create a scratch directory in " + base.string());
    }
  }

  std::filesystem::path dir_;
  std::atomic<std::uint64_t> counter_{0};
};

}  // namespace kysera::test

/// The SQLite backend of the contract suite. Every open() opens a fresh, empty file.
struct sqlite_backend {
  using connection = kysera::infra::sqlite::connection;
  static constexpr const char* name = "sqlite";
  /// SQLite has no server session to kill.
  static constexpr bool can_kill_session = false;

  /// A fresh, empty database file; url() then names it.
  static std::unique_ptr<connection> open() {
    auto path = kysera::test::sqlite_scratch::instance().unique_path("contract");
    std::string u = "sqlite://" + path.string();  // path is absolute: sqlite:///abs/...
    set_last_url(u);
    return std::make_unique<connection>(u);
  }

  /// The URL the most recent open() used (a fresh file if open() was not called yet).
  static std::string url() {
    {
      std::lock_guard lock(url_mutex());
      if (!last_url().empty()) return last_url();
    }
    auto path = kysera::test::sqlite_scratch::instance().unique_path("contract");
    set_last_url("sqlite://" + path.string());
    std::lock_guard lock(url_mutex());
    return last_url();
  }

  static std::string password() { return ""; }

  /// SQLite has no password: opens a file that is not a database instead, which fails with
  /// errc::authentication_failed (SQLITE_NOTADB), as a wrong key for an encrypted file would.
  static std::unique_ptr<connection> open_wrong_password() {
    auto path = kysera::test::sqlite_scratch::instance().unique_path("garbage");
    {
      std::ofstream out(path, std::ios::binary);
      for (int i = 0; i < 256; ++i) out << "this is not an sqlite database file. ";
    }
    return std::make_unique<connection>(path.string());
  }

  /// A path inside a directory that does not exist: SQLITE_CANTOPEN -> connection_refused.
  static std::string refused_url() {
    auto dir = kysera::test::sqlite_scratch::instance().unique_path("missing-dir");
    return "sqlite://" + (dir / "db.sqlite").string();
  }

  static std::string create_table_sql(std::string name) {
    return "CREATE TABLE " + name + " (id integer primary key, v text)";
  }

  /// A recursive CTE of 10^9 rows: minutes of CPU unless cancelled.
  static std::string long_statement_sql() {
    return "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
           "SELECT count(*) FROM c";
  }

  static std::string select_one_sql() { return "SELECT 1"; }

  static std::int64_t scalar(connection& c, std::string sql) {
    auto r = c.execute(sql);
    return std::stoll(r.at(0, 0).value());
  }

  /// Not applicable (can_kill_session is false).
  static void kill_session(connection&) {}

 private:
  static std::mutex& url_mutex() {
    static std::mutex m;
    return m;
  }
  static std::string& last_url() {
    static std::string u;
    return u;
  }
  static void set_last_url(std::string u) {
    std::lock_guard lock(url_mutex());
    last_url() = std::move(u);
  }
};
