#pragma once
// Everything that differs between libpqxx 6.4, 7.x and 8.x, in one place.
//
//  - 6.x: exceptions derive from pqxx_exception + std::runtime_error; transaction_rollback and its
//    children (serialization_failure, deadlock_detected, statement_completion_unknown) are NOT
//    sql_error and carry no SQLSTATE; transaction_base::exec takes `const std::string&`; a
//    connection silently reconnects ("reactivates") unless told not to.
//  - 7.x: transaction_rollback derives from sql_error (SQLSTATE available); exec takes
//    std::string_view; no reactivation; protocol_violation appears (a broken_connection).
//  - 8.x: every exception derives from pqxx::failure, which itself has sqlstate(); a lost session
//    is no longer always a broken_connection, so the adapter also asks connection::is_open().
//    Most functions take a trailing std::source_location with a default.

#include <pqxx/connection>
#include <pqxx/except>
#include <pqxx/nontransaction>
#include <pqxx/result>
#include <pqxx/transaction>
#include <pqxx/version>

#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "../../error.hpp"
#include "errors.hpp"

#if !defined(PQXX_VERSION_MAJOR)
#error "kysera-infra: <pqxx/version> did not define PQXX_VERSION_MAJOR"
#endif
#if PQXX_VERSION_MAJOR < 6
#error "kysera-infra: the PostgreSQL adapter needs libpqxx 6.4 or newer"
#endif

/// libpqxx's major version, as the adapter sees it (6, 7 or 8).
#define KYSERA_INFRA_PQXX_MAJOR PQXX_VERSION_MAJOR

namespace kysera::infra::postgres::detail {

/// Runs one statement on a libpqxx transaction object (any kind).
inline pqxx::result exec(pqxx::transaction_base& tx, std::string_view sql) {
#if KYSERA_INFRA_PQXX_MAJOR >= 7
  return tx.exec(sql);
#else
  return tx.exec(std::string(sql));
#endif
}

/// Called once per new session. libpqxx 6 would otherwise reconnect by itself in the middle of
/// BEGIN (and lose our session settings); the adapter decides about reconnecting.
inline void after_connect(pqxx::connection& c) {
#if KYSERA_INFRA_PQXX_MAJOR < 7
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
  c.inhibit_reactivation(true);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
#else
  (void)c;
#endif
}

/// The SQLSTATE an exception carries, where its type has one (sql_error in 6/7, failure in 8).
template <class E>
std::string sqlstate_of(const E& e) {
  if constexpr (requires { e.sqlstate(); }) {
    return std::string(e.sqlstate());
  } else {
    return {};
  }
}

/// Gathers what the adapter needs to know about the exception in `error`.
inline failure_facts facts_of(std::exception_ptr error, phase when, bool session_open) {
  failure_facts f;
  f.when = when;
  f.session_open = session_open;
  try {
    std::rethrow_exception(error);
  } catch (const pqxx::in_doubt_error& e) {
    f.kind = failure_kind::in_doubt;
    f.message = e.what();
    f.sqlstate = sqlstate_of(e);
  } catch (const pqxx::statement_completion_unknown& e) {
    f.kind = failure_kind::in_doubt;
    f.message = e.what();
    f.sqlstate = sqlstate_of(e);
    if (f.sqlstate.empty()) f.sqlstate = "40003";
  } catch (const pqxx::too_many_connections& e) {
    f.kind = failure_kind::too_many_connections;
    f.message = e.what();
    f.sqlstate = sqlstate_of(e);
#if KYSERA_INFRA_PQXX_MAJOR >= 8
  } catch (const pqxx::protocol_violation& e) {
    f.kind = failure_kind::protocol_violation;
    f.message = e.what();
    f.sqlstate = sqlstate_of(e);
#endif
  } catch (const pqxx::broken_connection& e) {
    f.kind = failure_kind::broken_connection;
    f.message = e.what();
    f.sqlstate = sqlstate_of(e);
  } catch (const pqxx::sql_error& e) {
    f.kind = failure_kind::sql;
    f.message = e.what();
    f.sqlstate = sqlstate_of(e);
#if KYSERA_INFRA_PQXX_MAJOR < 7
  } catch (const pqxx::transaction_rollback& e) {
    // libpqxx 6 drops the SQLSTATE of these; the type still tells which one it was.
    f.kind = failure_kind::sql;
    f.message = e.what();
    if (dynamic_cast<const pqxx::serialization_failure*>(&e) != nullptr) {
      f.sqlstate = "40001";
    } else if (dynamic_cast<const pqxx::deadlock_detected*>(&e) != nullptr) {
      f.sqlstate = "40P01";
    } else {
      f.sqlstate = "40000";
    }
#endif
  } catch (const pqxx::usage_error& e) {
    f.kind = failure_kind::usage;
    f.message = e.what();
  } catch (const pqxx::failure& e) {
    f.kind = failure_kind::other;
    f.message = e.what();
    f.sqlstate = sqlstate_of(e);
  } catch (const std::exception& e) {
    f.kind = failure_kind::other;
    f.message = e.what();
  } catch (...) {
    f.kind = failure_kind::other;
    f.message = "unknown exception";
  }
  return f;
}

/// The `database_error` for the exception in `error` (passed through when it already is one).
inline database_error translate(std::exception_ptr error, phase when, bool session_open,
                                std::string_view description,
                                const std::vector<std::string>& secrets) {
  try {
    std::rethrow_exception(error);
  } catch (const database_error& e) {
    return e;
  } catch (...) {
  }
  return make_error(facts_of(error, when, session_open), description, secrets);
}

}  // namespace kysera::infra::postgres::detail
