# Package tests (label `package`): install + find_package, add_subdirectory, pkg-config, a missing
# component (only meaningful when install rules exist), an offline check of the vcpkg port, and the
# MySQL driver lookup against stub installs of each shape Connector/C++ comes in.
# The consumers use only the components this build has (KYSERA_TEST_COMPONENTS, comma-separated).
if(KYSERA_INFRA_INSTALL)
  set(work "${CMAKE_CURRENT_BINARY_DIR}/package-work")
  string(REPLACE ";" "," built_components "${KYSERA_INFRA_COMPONENTS}")
  set(test_http OFF)
  if(TARGET kysera-infra-http)
    set(test_http ON)  # the consumers also build and run consumer-http
  endif()
  set(modes missing_component)
  if(KYSERA_INFRA_COMPONENTS)
    list(APPEND modes find_package add_subdirectory)
  endif()
  if("sqlite" IN_LIST KYSERA_INFRA_COMPONENTS)
    list(APPEND modes pkg_config)  # its consumer links SQLite by hand
  endif()
  foreach(mode IN LISTS modes)
    add_test(NAME "package: ${mode}"
      COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/package/run_consumer.sh ${mode} ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR} ${work})
    set_tests_properties("package: ${mode}" PROPERTIES LABELS "package" TIMEOUT 600
      FIXTURES_REQUIRED servers RESOURCE_LOCK "servers;package-prefix"
      ENVIRONMENT "CXX=${CMAKE_CXX_COMPILER};KYSERA_TEST_SERVER_DIR=${KYSERA_TEST_SERVER_DIR};KYSERA_TEST_COMPONENTS=${built_components};KYSERA_TEST_HTTP=${test_http}")
  endforeach()
endif()
add_test(NAME "package: vcpkg port"
  COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -P ${CMAKE_CURRENT_SOURCE_DIR}/package/check_port.cmake)
set_tests_properties("package: vcpkg port" PROPERTIES LABELS "package")

# The MySQL driver lookup against stub installs of each shape (check_driver_lookup.cmake).
foreach(shape IN ITEMS config-shared config-static vcpkg-headers debian-headers debian-no-boost)
  add_test(NAME "package: mysql driver lookup (${shape})"
    COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR} "-DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/driver-lookup"
      -DCASE=${shape} -DCXX=${CMAKE_CXX_COMPILER} -P ${CMAKE_CURRENT_SOURCE_DIR}/package/check_driver_lookup.cmake)
  set_tests_properties("package: mysql driver lookup (${shape})" PROPERTIES LABELS "package" TIMEOUT 120)
endforeach()

# The backend options (AUTO/ON/OFF and the deprecated names), by configuring the project. Each
# case needs the SQLite driver, which this build has when it built the sqlite component.
if("sqlite" IN_LIST KYSERA_INFRA_COMPONENTS)
  foreach(case IN ITEMS new-names old-names required-missing auto-missing bad-value)
    add_test(NAME "package: backend options (${case})"
      COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR} "-DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/options"
        -DCASE=${case} -DCXX=${CMAKE_CXX_COMPILER} -P ${CMAKE_CURRENT_SOURCE_DIR}/package/check_options.cmake)
    set_tests_properties("package: backend options (${case})" PROPERTIES LABELS "package" TIMEOUT 120)
  endforeach()
endif()

# Shared libraries built with hidden visibility (shared_libs/): one library's errors must be
# recognised by another's checks and by the executable, and the process-wide singletons must be
# one per process. ELF only (visibility and version scripts).
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang" AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
  set(dir ${CMAKE_CURRENT_SOURCE_DIR}/package/shared_libs)
  foreach(lib IN ITEMS hidden_a hidden_b isolated)
    add_library(kysera-test-plugin-${lib} SHARED ${dir}/plugin.cpp)
    target_link_libraries(kysera-test-plugin-${lib} PRIVATE kysera::infra kysera-build-flags)
    target_compile_definitions(kysera-test-plugin-${lib} PRIVATE KYSERA_TEST_PLUGIN_ENTRY=kysera_test_plugin_${lib})
    set_target_properties(kysera-test-plugin-${lib} PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  endforeach()
  target_link_options(kysera-test-plugin-isolated PRIVATE "-Wl,--version-script=${dir}/isolated.map")
  set_property(TARGET kysera-test-plugin-isolated APPEND PROPERTY LINK_DEPENDS ${dir}/isolated.map)
  kysera_add_test_executable(test-package-shared-libs package unit ${dir}/shared_libs_test.cpp)
  target_link_libraries(test-package-shared-libs PRIVATE
    kysera-test-plugin-hidden_a kysera-test-plugin-hidden_b kysera-test-plugin-isolated)
  set_target_properties(test-package-shared-libs PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
endif()
