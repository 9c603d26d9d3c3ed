// The backends' "no longer writable" errors and the redaction of host names, without servers.
#include "support/catch.hpp"

#include <kysera/infra.hpp>

#include <string>
#include <vector>

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

#if defined(KYSERA_INFRA_HAS_POSTGRES)
TEST_CASE("postgres split_hosts: one string per host, every other setting kept", "[cluster][postgres]") {
  namespace pg = kysera::infra::postgres;
  const auto uri = pg::split_hosts("postgresql://app:s%20cret@db1:5432,db2:5433/app?sslmode=disable&target_session_attrs=read-write");
  REQUIRE(uri.size() == 2);
  // In libpq's keyword order, every value quoted.
  CHECK(uri[0] == "user='app' password='s cret' dbname='app' host='db1' port='5432' sslmode='disable'");
  CHECK(uri[1] == "user='app' password='s cret' dbname='app' host='db2' port='5433' sslmode='disable'");
  // One port serves every host; hostaddr lists are split alongside.
  const auto kv = pg::split_hosts("host=a,b hostaddr=10.0.0.1,10.0.0.2 port=6432 dbname=x");
  REQUIRE(kv.size() == 2);
  CHECK(kv[1] == "dbname='x' host='b' hostaddr='10.0.0.2' port='6432'");
  // A single host comes back unchanged.
  CHECK(pg::split_hosts("postgres://app@db1/app") == std::vector<std::string>{"postgres://app@db1/app"});
  // Lists that do not pair up, and what libpq rejects.
  const auto rejected = [](const char* text) {
    try {
      (void)pg::split_hosts(text);
    } catch (const infra::database_error& e) {
      return e.code() == infra::errc::invalid_url;
    }
    return false;
  };
  CHECK(rejected("host=a,b,c port=1,2"));
  CHECK(rejected("host=a,b frobnicate=1"));
}

TEST_CASE("cluster hosts are named by the backend's description, without the password", "[cluster][postgres]") {
  using traits = kysera::infra::cluster::cluster_traits<kysera::infra::postgres::connection>;
  CHECK(traits::describe("postgresql://app:s3cret@db1:5432/app") == "postgresql://app@db1:5432/app");
  CHECK(traits::describe("host=db2 port=5433 user=app password='with space' dbname=app") ==
        "postgres://app@db2:5433/app");
}
#endif
