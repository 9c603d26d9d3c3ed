// Three shared libraries built with -fvisibility=hidden -fvisibility-inlines-hidden (plugin.cpp):
// hidden_a and hidden_b export only their entry point by visibility; `isolated` also hides
// everything else behind a version script. This executable is built with hidden visibility too.
#include <system_error>

#include <kysera/infra/detail/watchdog.hpp>
#include <kysera/infra/error.hpp>
#include <kysera/infra/health/check.hpp>
#include <kysera/infra/logger.hpp>
#include <kysera/infra/resilience/transient.hpp>
#include <kysera/infra/shutdown/signals.hpp>

#include "package/shared_libs/plugin.hpp"
#include "support/catch.hpp"

namespace infra = kysera::infra;

TEST_CASE("hidden-visibility shared libraries share the error category and every singleton", "[package]") {
  const kysera_test_plugin& a = *kysera_test_plugin_hidden_a();
  const kysera_test_plugin& b = *kysera_test_plugin_hidden_b();
  const std::error_category* category = &infra::error_category();
  CHECK(a.category() == category);
  CHECK(b.category() == category);
  // One signal slot: two would each install SIGTERM/SIGINT handlers, the later silencing the other.
  const void* slot = &infra::shutdown::detail::signal_slot::get();
  CHECK(a.signal_slot() == slot);
  CHECK(b.signal_slot() == slot);
  const void* dog = &infra::detail::watchdog::instance();
  CHECK(a.watchdog() == dog);
  CHECK(b.watchdog() == dog);
  const void* executor = &infra::health::detail::probe_executor::instance();
  CHECK(a.probe_executor() == executor);
  CHECK(b.probe_executor() == executor);
  const void* logger_slot = &infra::detail::default_logger_slot();
  CHECK(a.default_logger_slot() == logger_slot);
  CHECK(b.default_logger_slot() == logger_slot);

  // So even the standard address comparison of codes agrees across them.
  CHECK(a.timeout_code() == b.timeout_code());
  CHECK(b.is_timeout(a.timeout_code()));
}

TEST_CASE("a library with private copies of the category still has its errors recognised", "[package]") {
  const kysera_test_plugin& a = *kysera_test_plugin_hidden_a();
  const kysera_test_plugin& isolated = *kysera_test_plugin_isolated();
  // The version script keeps the library's own category object (and singletons).
  REQUIRE(isolated.category() != &infra::error_category());
  CHECK(isolated.signal_slot() != &infra::shutdown::detail::signal_slot::get());

  const std::error_code code = isolated.timeout_code();
  // std::error_code == std::error_code compares category addresses: it tells the copies apart.
  CHECK(code != make_error_code(infra::errc::timeout));
  // Every check of ours compares the category by name.
  CHECK(infra::is_infra_error(code));
  CHECK(code == infra::errc::timeout);
  CHECK(infra::errc::timeout == code);
  CHECK(code != infra::errc::connection_lost);
  CHECK(code == std::errc::timed_out);
  CHECK(a.is_timeout(code));
  CHECK(isolated.is_timeout(a.timeout_code()));
  CHECK(isolated.is_timeout(make_error_code(infra::errc::timeout)));
  CHECK_FALSE(isolated.is_timeout(make_error_code(infra::errc::busy)));
  // Same value, other category: not ours.
  CHECK_FALSE(infra::is_infra_error(std::error_code(static_cast<int>(infra::errc::timeout), std::generic_category())));
  CHECK_FALSE(std::error_code(static_cast<int>(infra::errc::timeout), std::generic_category()) == infra::errc::timeout);

  // Its exceptions are caught as std::system_error (a type of the standard library, shared by
  // everyone) and classified here and by the other library.
  std::exception_ptr thrown;
  try {
    isolated.throw_connection_lost();
  } catch (const std::system_error& e) {
    thrown = std::current_exception();
    CHECK(e.code() == infra::errc::connection_lost);
    CHECK(infra::resilience::is_transient_error(e));
#if defined(_LIBCPP_VERSION)
    // libc++ on ELF tells types apart by type_info address: the hidden copy of database_error is
    // another type, so only the standard base is caught across that boundary.
    CHECK(dynamic_cast<const infra::database_error*>(&e) == nullptr);
#else
    // libstdc++ compares type names, so our database_error matches the hidden copy.
    const auto* ours = dynamic_cast<const infra::database_error*>(&e);
    REQUIRE(ours != nullptr);
    CHECK(ours->condition() == infra::errc::connection_lost);
#endif
  }
  REQUIRE(thrown);
  CHECK(a.is_transient(thrown));
  CHECK(isolated.is_transient(thrown));
  std::exception_ptr from_a;
  try {
    a.throw_connection_lost();
  } catch (...) {
    from_a = std::current_exception();
  }
  CHECK(isolated.is_transient(from_a));
}
