// The adapter contract suite (docs/adapters/writing-an-adapter.md) against the real servers
// (postgres, mysql) and real files (sqlite): tests/adapters/contract_suite.hpp, templated over
// every backend's traits struct. Test names carry the backend through TEMPLATE_TEST_CASE
// ("... - mysql_backend"). tests/adapters/contract_fake_test.cpp runs it over the fake backend.

#include "support/catch.hpp"

#if defined(KYSERA_INFRA_HAS_MYSQL)
#include "mysql_traits.hpp"
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
#include "postgres_traits.hpp"
#endif
#if defined(KYSERA_INFRA_HAS_SQLITE)
#include "sqlite_traits.hpp"
#endif
// Every backend this build has runs the whole suite; the server backends also run the tests
// that need a server session and a password. A build without some backend (CMake
// KYSERA_INFRA_WITH_<BACKEND>=OFF, or its driver missing) runs the suite over the others.
#if defined(KYSERA_INFRA_HAS_POSTGRES) && defined(KYSERA_INFRA_HAS_MYSQL)
#define KYSERA_CONTRACT_SERVER_BACKENDS postgres_backend, mysql_backend
#elif defined(KYSERA_INFRA_HAS_POSTGRES)
#define KYSERA_CONTRACT_SERVER_BACKENDS postgres_backend
#elif defined(KYSERA_INFRA_HAS_MYSQL)
#define KYSERA_CONTRACT_SERVER_BACKENDS mysql_backend
#endif
#if defined(KYSERA_CONTRACT_SERVER_BACKENDS) && defined(KYSERA_INFRA_HAS_SQLITE)
#define KYSERA_CONTRACT_ALL_BACKENDS KYSERA_CONTRACT_SERVER_BACKENDS, sqlite_backend
#elif defined(KYSERA_CONTRACT_SERVER_BACKENDS)
#define KYSERA_CONTRACT_ALL_BACKENDS KYSERA_CONTRACT_SERVER_BACKENDS
#elif defined(KYSERA_INFRA_HAS_SQLITE)
#define KYSERA_CONTRACT_ALL_BACKENDS sqlite_backend
#endif

// SQLite has no server session to kill and no password: say so, so that leaving it out of the
// server-only tests of the suite is a checked decision.
#if defined(KYSERA_INFRA_HAS_SQLITE)
static_assert(!sqlite_backend::can_kill_session);
#endif
#if defined(KYSERA_INFRA_HAS_POSTGRES)
static_assert(postgres_backend::can_kill_session);
#endif
#if defined(KYSERA_INFRA_HAS_MYSQL)
static_assert(mysql_backend::can_kill_session);
#endif

#include "contract_suite.hpp"
