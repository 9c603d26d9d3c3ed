# The spdlog sink's test: built when the optional `spdlog` component is (spdlog found at
# configure time), else one test that ctest reports as skipped, not failed. Its source lives in
# core/spdlog/ so that the core module's glob does not pick it up.
if(TARGET kysera::infra-spdlog)
  kysera_add_test_executable(test-core-spdlog core unit ${CMAKE_CURRENT_SOURCE_DIR}/core/spdlog/spdlog_sink_test.cpp)
  target_link_libraries(test-core-spdlog PRIVATE kysera::infra-spdlog)
else()
  add_test(NAME "core: spdlog sink (spdlog not found)"
    COMMAND sh -c "echo 'skipped: spdlog was not found at configure time (Debian: libspdlog-dev)'; exit 77")
  set_tests_properties("core: spdlog sink (spdlog not found)" PROPERTIES SKIP_RETURN_CODE 77 LABELS core)
endif()
