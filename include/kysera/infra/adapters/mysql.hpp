#pragma once
/// \file
/// `kysera::infra::mysql::connection`: a thread-safe MySQL/MariaDB session over MySQL
/// Connector/C++'s legacy JDBC API (1.1, and 8.x/9.x), with visible reconnects, error
/// translation into `database_error`, and a `cancel()` that never blocks. The umbrella header of
/// the MySQL adapter; the parts live in `mysql/{connection,options,connection_string,errors,driver}.hpp`.

#include "mysql/cluster_traits.hpp"
#include "mysql/connection.hpp"
