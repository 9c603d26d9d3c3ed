#pragma once
// Internals of the MySQL/MariaDB adapter that touch Connector/C++: the version switch, the
// driver instance with its per-thread setup, connecting, and copying results out.
//
// Connector/C++ 8.x/9.x install the legacy JDBC API as <mysql/jdbc.h>; 1.1 as <mysql_driver.h>
// plus <cppconn/*.h> (which need Boost's headers). The names this adapter uses exist in both:
// sql::mysql::get_mysql_driver_instance(), sql::ConnectOptionsMap keyed by the option strings
// below (8.x also defines them as OPT_* macros with the same text), sql::SQLException's
// getErrorCode()/getSQLStateCStr(), and Driver::threadInit()/threadEnd().

// 8.x's <cppconn/build_config.h> says `#pragma GCC diagnostic ignored "-Wdeprecated-declarations"`
// at file scope, which would hold for the rest of every file that includes this adapter. The
// push/pop confines it to the driver's headers (unless the user included them earlier).
#if defined(__GNUC__)
#pragma GCC diagnostic push
#endif
#if __has_include(<mysql/jdbc.h>)
#include <mysql/jdbc.h>  // includes cppconn/version_info.h
#elif __has_include(<jdbc/mysql_driver.h>)
#include <jdbc/cppconn/exception.h>
#include <jdbc/cppconn/resultset.h>
#include <jdbc/cppconn/resultset_metadata.h>
#include <jdbc/cppconn/statement.h>
#include <jdbc/cppconn/version_info.h>
#include <jdbc/mysql_connection.h>
#include <jdbc/mysql_driver.h>
#elif __has_include(<mysql_driver.h>)
#include <cppconn/exception.h>
#include <cppconn/resultset.h>
#include <cppconn/resultset_metadata.h>
#include <cppconn/statement.h>
#if __has_include(<cppconn/version_info.h>)
#include <cppconn/version_info.h>
#endif
#include <mysql_connection.h>
#include <mysql_driver.h>
#else
#error "kysera/infra/adapters/mysql.hpp needs MySQL Connector/C++ (legacy JDBC API: <mysql/jdbc.h> or <mysql_driver.h>)"
#endif
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

// The driver generation, from the driver's own version macro (cppconn/version_info.h:
// MYCPPCONN_DM_MAJOR_VERSION is 1 for 1.1.x, 8 or 9 for 8.x/9.x): 1 or 8 (meaning 8.x and later).
// The headers' location does not tell: a find_path fallback may put 8.x's include/jdbc/ first on
// the include path, where <mysql_driver.h> is the 8.x header.
#if defined(MYCPPCONN_DM_MAJOR_VERSION) && MYCPPCONN_DM_MAJOR_VERSION >= 8
#define KYSERA_INFRA_MYSQL_JDBC_VERSION 8
#elif defined(MYCPPCONN_DM_MAJOR_VERSION) || !__has_include(<mysql/jdbc.h>)
#define KYSERA_INFRA_MYSQL_JDBC_VERSION 1
#else
#error "Connector/C++ headers without MYCPPCONN_DM_MAJOR_VERSION (cppconn/version_info.h)"
#endif
// Build checks (scripts/driver-matrix.sh) define the generation they mean to compile against, so a
// wrong include path fails instead of silently testing the other branch.
#if defined(KYSERA_INFRA_EXPECT_MYSQL_JDBC_VERSION) && \
    KYSERA_INFRA_EXPECT_MYSQL_JDBC_VERSION != KYSERA_INFRA_MYSQL_JDBC_VERSION
#error "kysera: the MySQL adapter was compiled against another Connector/C++ generation than KYSERA_INFRA_EXPECT_MYSQL_JDBC_VERSION"
#endif

#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../../rows.hpp"
#include "../detail/basic_connection.hpp"
#include "connection_string.hpp"
#include "errors.hpp"
#include "options.hpp"

// Option keys: 8.x defines OPT_* macros, 1.1 only documents the strings; the text is the same.
#if defined(OPT_CONNECT_TIMEOUT)
#define KYSERA_INFRA_MYSQL_OPT_CONNECT_TIMEOUT OPT_CONNECT_TIMEOUT
#define KYSERA_INFRA_MYSQL_OPT_READ_TIMEOUT OPT_READ_TIMEOUT
#define KYSERA_INFRA_MYSQL_OPT_WRITE_TIMEOUT OPT_WRITE_TIMEOUT
#else
#define KYSERA_INFRA_MYSQL_OPT_CONNECT_TIMEOUT "OPT_CONNECT_TIMEOUT"
#define KYSERA_INFRA_MYSQL_OPT_READ_TIMEOUT "OPT_READ_TIMEOUT"
#define KYSERA_INFRA_MYSQL_OPT_WRITE_TIMEOUT "OPT_WRITE_TIMEOUT"
#endif

// TLS keys: 8.x names them like the mysql client ("ssl-mode", "ssl-ca", ...) and defines OPT_SSL_*;
// 1.1 takes "OPT_SSL_MODE", "sslCA", "sslCert", "sslKey", plus "sslEnforce" and "sslVerify",
// which are what a 1.1 built on MariaDB Connector/C (Debian's) honours: it ignores OPT_SSL_MODE.
#if defined(OPT_SSL_MODE)
#define KYSERA_INFRA_MYSQL_OPT_SSL_MODE OPT_SSL_MODE
#define KYSERA_INFRA_MYSQL_OPT_SSL_CA OPT_SSL_CA
#define KYSERA_INFRA_MYSQL_OPT_SSL_CERT OPT_SSL_CERT
#define KYSERA_INFRA_MYSQL_OPT_SSL_KEY OPT_SSL_KEY
#else
#define KYSERA_INFRA_MYSQL_OPT_SSL_MODE "OPT_SSL_MODE"
#define KYSERA_INFRA_MYSQL_OPT_SSL_CA "sslCA"
#define KYSERA_INFRA_MYSQL_OPT_SSL_CERT "sslCert"
#define KYSERA_INFRA_MYSQL_OPT_SSL_KEY "sslKey"
#define KYSERA_INFRA_MYSQL_LEGACY_SSL_FLAGS 1
#endif

namespace kysera::infra::mysql::detail {

/// Counts detached helper threads (cancel) still using the driver, so that process exit waits
/// for them instead of tearing the client library down under their feet.
class mysql_helper_registry {
 public:
  void enter() {
    std::lock_guard lock(mutex_);
    ++count_;
  }
  /// Marks the end of a helper thread; a thread_local of this type, created before the thread's
  /// first driver use, is destroyed after the thread's mysql_thread_guard (reverse order).
  struct leave_at_thread_exit {
    mysql_helper_registry* registry;
    ~leave_at_thread_exit() { registry->leave(); }
  };
  void leave() {
    std::lock_guard lock(mutex_);
    if (--count_ == 0) idle_.notify_all();
  }
  ~mysql_helper_registry() {
    std::unique_lock lock(mutex_);
    // Helpers are bounded by their connect/read timeouts; do not hang exit on a broken one.
    idle_.wait_for(lock, std::chrono::seconds(30), [&] { return count_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable idle_;
  int count_ = 0;
};

struct mysql_driver_globals {
  ::sql::mysql::MySQL_Driver* driver;
  mysql_helper_registry* helpers;
};

/// Orders thread exits against process exit. A thread that used the driver calls threadEnd()
/// when it exits; a detached thread may exit while the process runs its static destructors,
/// which destroy the driver. Both sides take this (never destroyed) lock: an exit handler,
/// registered right after the driver exists and so run before the driver's destructors, marks
/// the process as exiting, and a thread that exits later skips threadEnd().
struct mysql_exit_state {
  std::mutex mutex;
  bool exiting = false;
};

inline mysql_exit_state& mysql_exit() {
  static mysql_exit_state* const state = new mysql_exit_state();  // leaked on purpose
  return *state;
}

inline mysql_driver_globals& mysql_globals() {
  // Thread-safe static initialisation. The registry is constructed after the driver, so it is
  // destroyed (and waits for helpers) before the library's own statics go away.
  static mysql_driver_globals globals = [] {
    mysql_driver_globals g{::sql::mysql::get_mysql_driver_instance(), nullptr};
    static mysql_helper_registry registry;
    g.helpers = &registry;
    (void)mysql_exit();
    std::atexit([] {
      std::lock_guard lock(mysql_exit().mutex);
      mysql_exit().exiting = true;
    });
    return g;
  }();
  return globals;
}

/// Calls threadInit() on the first use of the driver on a thread and threadEnd()
/// (mysql_thread_end) when that thread exits, so the client library frees its per-thread memory.
class mysql_thread_guard {
 public:
  explicit mysql_thread_guard(::sql::Driver* d) : driver_(d) { driver_->threadInit(); }
  ~mysql_thread_guard() {
    std::lock_guard lock(mysql_exit().mutex);
    if (!mysql_exit().exiting) driver_->threadEnd();
  }
  mysql_thread_guard(const mysql_thread_guard&) = delete;
  mysql_thread_guard& operator=(const mysql_thread_guard&) = delete;

 private:
  ::sql::Driver* driver_;
};

/// The driver, ready for use on the calling thread.
inline ::sql::mysql::MySQL_Driver* mysql_driver() {
  auto* d = mysql_globals().driver;
  thread_local mysql_thread_guard guard(d);
  return d;
}

inline std::string to_std(const ::sql::SQLString& s) { return std::string(s.c_str(), s.length()); }

inline int driver_ssl_mode(ssl_mode m) noexcept {
  switch (m) {
    case ssl_mode::disabled: return ::sql::SSL_MODE_DISABLED;
    case ssl_mode::preferred: return ::sql::SSL_MODE_PREFERRED;
    case ssl_mode::required: return ::sql::SSL_MODE_REQUIRED;
    case ssl_mode::verify_ca: return ::sql::SSL_MODE_VERIFY_CA;
    case ssl_mode::verify_identity: return ::sql::SSL_MODE_VERIFY_IDENTITY;
  }
  return ::sql::SSL_MODE_PREFERRED;
}

/// The TLS entries of the connect options for `t`.
inline void mysql_tls_options(const mysql_target& t, ::sql::ConnectOptionsMap& opts) {
  if (t.ssl_mode) opts[KYSERA_INFRA_MYSQL_OPT_SSL_MODE] = driver_ssl_mode(*t.ssl_mode);
  if (t.ssl_mode == ssl_mode::disabled) return;
  if (!t.ssl_ca.empty()) opts[KYSERA_INFRA_MYSQL_OPT_SSL_CA] = ::sql::SQLString(t.ssl_ca);
  if (!t.ssl_cert.empty()) opts[KYSERA_INFRA_MYSQL_OPT_SSL_CERT] = ::sql::SQLString(t.ssl_cert);
  if (!t.ssl_key.empty()) opts[KYSERA_INFRA_MYSQL_OPT_SSL_KEY] = ::sql::SQLString(t.ssl_key);
#if defined(KYSERA_INFRA_MYSQL_LEGACY_SSL_FLAGS)
  // MariaDB Connector/C verifies the chain whenever a CA is given; "sslVerify" adds the host name.
  if (t.ssl_mode == ssl_mode::required || t.ssl_mode == ssl_mode::verify_ca ||
      t.ssl_mode == ssl_mode::verify_identity) {
    opts["sslEnforce"] = true;
  }
  if (t.ssl_mode == ssl_mode::verify_identity) opts["sslVerify"] = true;
#endif
}

/// Opens a session. Throws what the driver throws (sql::SQLException).
inline std::unique_ptr<::sql::Connection> mysql_open(const mysql_target& t, int connect_s, int read_s,
                                                     int write_s, bool with_schema) {
  ::sql::ConnectOptionsMap opts;
  opts["hostName"] = ::sql::SQLString(driver_host_name(t));
  opts["userName"] = ::sql::SQLString(t.user);
  opts["password"] = ::sql::SQLString(t.password);
  if (with_schema && !t.schema.empty()) opts["schema"] = ::sql::SQLString(t.schema);
  opts[KYSERA_INFRA_MYSQL_OPT_CONNECT_TIMEOUT] = connect_s;
  if (read_s > 0) opts[KYSERA_INFRA_MYSQL_OPT_READ_TIMEOUT] = read_s;
  if (write_s > 0) opts[KYSERA_INFRA_MYSQL_OPT_WRITE_TIMEOUT] = write_s;
  mysql_tls_options(t, opts);
  // We reconnect ourselves, visibly, and never replay a statement behind the caller's back, so
  // the client library's auto-reconnect must stay off. It is off unless asked for: 1.1 and 8.x/9.x
  // alike call mysql_options(MYSQL_OPT_RECONNECT) only when OPT_RECONNECT is in this map, and
  // libmysqlclient (since 5.0.3) and MariaDB Connector/C start with reconnect off. Setting it
  // anyway, even to false, makes libmysqlclient >= 8.0.34 print "WARNING: MYSQL_OPT_RECONNECT is
  // deprecated" on every connect, so it is not set (contract_it's killed-session tests pin that a
  // broken session is reported, not silently reconnected).
  return std::unique_ptr<::sql::Connection>(mysql_driver()->connect(opts));
}

/// Runs one statement and copies its first result set (or its update count) out. Further result
/// sets (CALL) are read and dropped so the session stays in sync.
inline rows mysql_run(::sql::Connection& c, std::string_view sql) {
  rows out;
  std::unique_ptr<::sql::Statement> st(c.createStatement());
  bool has_result_set = st->execute(::sql::SQLString(std::string(sql)));
  if (has_result_set) {
    std::unique_ptr<::sql::ResultSet> rs(st->getResultSet());
    ::sql::ResultSetMetaData* meta = rs->getMetaData();  // owned by the result set
    unsigned int n = meta->getColumnCount();
    out.columns.reserve(n);
    for (unsigned int i = 1; i <= n; ++i) out.columns.push_back(to_std(meta->getColumnLabel(i)));
    out.values.reserve(rs->rowsCount());
    while (rs->next()) {
      std::vector<std::optional<std::string>> row;
      row.reserve(n);
      for (unsigned int i = 1; i <= n; ++i) {
        if (rs->isNull(i)) {
          row.emplace_back(std::nullopt);
        } else {
          row.emplace_back(to_std(rs->getString(i)));
        }
      }
      out.values.push_back(std::move(row));
    }
  } else {
    auto count = st->getUpdateCount();
    if (count != static_cast<decltype(count)>(-1)) out.affected_rows = static_cast<std::uint64_t>(count);
  }
  while (st->getMoreResults()) {
    std::unique_ptr<::sql::ResultSet> extra(st->getResultSet());
  }
  return out;
}

/// True when `sql` starts (after blanks and comments) with INSERT or REPLACE.
inline bool mysql_is_insert(std::string_view sql) noexcept {
  std::size_t i = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '(') {
      ++i;
    } else if (sql.substr(i, 2) == "/*") {
      auto end = sql.find("*/", i + 2);
      if (end == std::string_view::npos) return false;
      i = end + 2;
    } else if (sql.substr(i, 2) == "--" || c == '#') {
      auto end = sql.find('\n', i);
      if (end == std::string_view::npos) return false;
      i = end + 1;
    } else {
      break;
    }
  }
  auto starts_with = [&](std::string_view word) {
    if (sql.size() - i < word.size()) return false;
    for (std::size_t k = 0; k < word.size(); ++k) {
      char c = sql[i + k];
      if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
      if (c != word[k]) return false;
    }
    return sql.size() - i == word.size() || !(std::isalnum(static_cast<unsigned char>(sql[i + word.size()])) ||
                                             sql[i + word.size()] == '_');
  };
  return starts_with("INSERT") || starts_with("REPLACE");
}

/// What a cancel helper needs; shared so the helper never touches the connection object.
struct mysql_cancel_target {
  mysql_target target;
  int timeout_s = 2;
  adapters::detail::helper_slot slot;  // at most one helper per connection at a time
};

/// Sends `KILL QUERY <id>` over a fresh short-lived session. Never throws.
inline void mysql_kill_query(const mysql_cancel_target& c, std::uint64_t id) noexcept {
  try {
    auto conn = mysql_open(c.target, c.timeout_s, c.timeout_s, c.timeout_s, false);
    std::unique_ptr<::sql::Statement> st(conn->createStatement());
    st->execute(::sql::SQLString("KILL QUERY " + std::to_string(id)));
    conn->close();
  } catch (...) {
    // Nothing to report to: the caller has long returned. The statement just runs on.
  }
}

}  // namespace kysera::infra::mysql::detail
