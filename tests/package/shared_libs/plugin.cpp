// One test library; tests.cmake builds it three times with -fvisibility=hidden and
// -fvisibility-inlines-hidden, naming its entry point through KYSERA_TEST_PLUGIN_ENTRY. The
// "isolated" build also hides every symbol but that entry point behind a version script.
#include "plugin.hpp"

#include <kysera/infra/detail/watchdog.hpp>
#include <kysera/infra/error.hpp>
#include <kysera/infra/health/check.hpp>
#include <kysera/infra/logger.hpp>
#include <kysera/infra/resilience/transient.hpp>
#include <kysera/infra/shutdown/signals.hpp>

namespace infra = kysera::infra;

namespace {
const kysera_test_plugin plugin{
    .category = [] { return &infra::error_category(); },
    .timeout_code = [] { return make_error_code(infra::errc::timeout); },
    .throw_connection_lost = [] { throw infra::database_error(infra::errc::connection_lost, "test: connection lost", "test"); },
    .is_timeout = [](const std::error_code& code) { return code == infra::errc::timeout; },
    .is_transient =
        [](const std::exception_ptr& error) {
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            return infra::resilience::is_transient_error(e);
          }
        },
    .signal_slot = []() -> const void* { return &infra::shutdown::detail::signal_slot::get(); },
    .watchdog = []() -> const void* { return &infra::detail::watchdog::instance(); },
    .probe_executor = []() -> const void* { return &infra::health::detail::probe_executor::instance(); },
    .default_logger_slot = []() -> const void* { return &infra::detail::default_logger_slot(); },
};
}  // namespace

KYSERA_TEST_PLUGIN_API const kysera_test_plugin* KYSERA_TEST_PLUGIN_ENTRY() { return &plugin; }
