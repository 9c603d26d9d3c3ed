// What each test library (plugin.cpp, built three times) hands the test executable: its errors,
// its error checks, and the addresses of its process-wide singletons.
#pragma once

#include <exception>
#include <system_error>

struct kysera_test_plugin {
  const std::error_category* (*category)();
  std::error_code (*timeout_code)();  // errc::timeout made in this library
  void (*throw_connection_lost)();      // throws database_error(errc::connection_lost)
  bool (*is_timeout)(const std::error_code&);             // `code == errc::timeout` compiled here
  bool (*is_transient)(const std::exception_ptr&);        // resilience::is_transient_error here
  const void* (*signal_slot)();
  const void* (*watchdog)();
  const void* (*probe_executor)();
  const void* (*default_logger_slot)();
};

#define KYSERA_TEST_PLUGIN_API extern "C" [[gnu::visibility("default")]]
KYSERA_TEST_PLUGIN_API const kysera_test_plugin* kysera_test_plugin_hidden_a();
KYSERA_TEST_PLUGIN_API const kysera_test_plugin* kysera_test_plugin_hidden_b();
KYSERA_TEST_PLUGIN_API const kysera_test_plugin* kysera_test_plugin_isolated();
