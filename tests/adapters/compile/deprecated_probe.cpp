// Compile-only probe (tests/adapters/compile/check_mysql_headers.sh): after the MySQL adapter,
// using a deprecated declaration must still warn. Connector/C++ 8.x's headers switch
// -Wdeprecated-declarations off for the rest of the file unless the adapter contains that.
// KYSERA_PROBE_DRIVER_ONLY includes the driver header alone instead: the control that shows the
// driver's pragma is there to contain (there the warning must NOT fire).
#if defined(KYSERA_PROBE_DRIVER_ONLY)
#include <mysql/jdbc.h>
#else
#include <kysera/infra/adapters/mysql.hpp>
#endif

[[deprecated("kysera-deprecation-probe")]] inline int kysera_old_api() { return 1; }

int kysera_user_code() { return kysera_old_api(); }
