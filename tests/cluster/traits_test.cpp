// The backends' "no longer writable" errors and the redaction of host names, without servers.
#include "support/catch.hpp"

#include <kysera/infra.hpp>

#include <string>

namespace infra = kysera::infra;
namespace cl = kysera::infra::cluster;

TEST_CASE("host names hide the password of URLs and of key/value strings", "[cluster]") {
  using cl::detail::display_name;
  CHECK(display_name("postgres://app:s3cret@db1:5432/app") == "postgres://app:***@db1:5432/app");
  CHECK(display_name("mysql://kysera_app:pw@127.0.0.1:3306/kysera_test") == "mysql://kysera_app:***@127.0.0.1:3306/kysera_test");
  CHECK(display_name("postgres://app@db1/app") == "postgres://app@db1/app");
  CHECK(display_name("host=db1 password=s3cret dbname=app") == "host=db1 password=*** dbname=app");
  CHECK(display_name("host=db1 password=s3cret") == "host=db1 password=***");
}

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres: 25006 and the shutdown states mean not writable, other errors do not", "[cluster][postgres]") {
  using traits = cl::cluster_traits<infra::postgres::connection>;
  static_assert(cl::cluster_connection<infra::postgres::connection>);
  const auto e = [](infra::errc code, const char* state) { return infra::database_error(code, "x", "postgres", state); };
  CHECK(traits::not_writable(e(infra::errc::query_failed, "25006")));
  CHECK(traits::not_writable(e(infra::errc::connection_lost, "57P01")));
  CHECK(traits::not_writable(e(infra::errc::connection_refused, "57P03")));
  CHECK_FALSE(traits::not_writable(e(infra::errc::query_failed, "42601")));
  CHECK_FALSE(traits::not_writable(e(infra::errc::constraint_violation, "23505")));
}
#endif

#if defined(KYSERA_INFRA_HAS_MYSQL)
TEST_CASE("mysql: 1290 for --read-only, 1836 and 1792 mean not writable", "[cluster][mysql]") {
  using traits = cl::cluster_traits<infra::mysql::connection>;
  static_assert(cl::cluster_connection<infra::mysql::connection>);
  const auto e = [](int code, const char* text) {
    return infra::database_error(infra::errc::query_failed, text, "mysql", "HY000", code);
  };
  CHECK(traits::not_writable(e(1290, "The MariaDB server is running with the --read-only option so it cannot execute this statement")));
  CHECK_FALSE(traits::not_writable(e(1290, "The MariaDB server is running with the --secure-file-priv option")));
  CHECK(traits::not_writable(e(1836, "Running in read-only mode")));
  CHECK(traits::not_writable(e(1792, "Cannot execute statement in a READ ONLY transaction.")));
  CHECK_FALSE(traits::not_writable(e(1062, "Duplicate entry")));
}
#endif
