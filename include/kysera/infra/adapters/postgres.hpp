#pragma once
/// \file
/// `kysera::infra::postgres::connection`: a thread-safe PostgreSQL connection (libpqxx 6.4, 7.x
/// and 8.x) that models `database` with ping, cancel, server_version and transaction, translates
/// every driver error into `database_error`, and reconnects on the call after a lost session.
/// The umbrella header of the PostgreSQL adapter; the parts live in
/// `postgres/{connection,options,connection_string,errors,driver}.hpp`.
///
///     kysera::infra::postgres::connection db("postgres://app:secret@db.internal:5432/app");
///     db.execute("create table if not exists t (id integer primary key, v text)");
///     pqxx::result r = db.execute("select v from t");

#include "postgres/cluster_traits.hpp"
#include "postgres/connection.hpp"
