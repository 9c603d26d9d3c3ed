#pragma once
/// \file
/// `kysera::infra::sqlite::connection`: a thread-safe SQLite connection (SQLite3 C API) that models
/// `database` with ping, cancel, server_version and transaction, and counts as a pool of one for
/// `pool::create_metrics_pool`. The umbrella header of the SQLite adapter; the parts live in
/// `sqlite/{connection,options,connection_string,errors,driver}.hpp`.
///
///     kysera::infra::sqlite::connection db("sqlite:///var/lib/app/app.db");
///     db.execute("create table if not exists t (id integer primary key, v text)");
///     auto r = db.execute("select v from t");

#include "sqlite/connection.hpp"
