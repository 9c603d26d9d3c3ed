#pragma once
/// \file
/// Everything: the core, the four modules, and each backend adapter whose CMake component the
/// consumer linked (`kysera::infra-postgres` defines `KYSERA_INFRA_HAS_POSTGRES`, and so on).
///
///     #include <kysera/infra.hpp>
///     namespace infra = kysera::infra;

#include "infra/database.hpp"
#include "infra/error.hpp"
#include "infra/logger.hpp"

#include "infra/health.hpp"
#include "infra/pool.hpp"
#include "infra/resilience.hpp"
#include "infra/shutdown.hpp"

#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include "infra/adapters/postgres.hpp"
#endif
#if defined(KYSERA_INFRA_HAS_MYSQL)
#include "infra/adapters/mysql.hpp"
#endif
#if defined(KYSERA_INFRA_HAS_SQLITE)
#include "infra/adapters/sqlite.hpp"
#endif

namespace kysera::infra {
// Every public name of the four modules is reachable as kysera::infra::NAME.
using namespace kysera::infra::health;
using namespace kysera::infra::resilience;
using namespace kysera::infra::pool;
using namespace kysera::infra::shutdown;
}  // namespace kysera::infra
