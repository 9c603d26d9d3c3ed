# Package tests (label `package`): install + find_package, add_subdirectory, pkg-config, a missing
# component, and an offline check of the vcpkg port. Only meaningful when install rules exist.
if(KYSERA_INFRA_INSTALL)
  set(work "${CMAKE_CURRENT_BINARY_DIR}/package-work")
  foreach(mode IN ITEMS find_package add_subdirectory pkg_config missing_component)
    add_test(NAME "package: ${mode}"
      COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/package/run_consumer.sh ${mode} ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR} ${work})
    set_tests_properties("package: ${mode}" PROPERTIES LABELS "package" TIMEOUT 600
      FIXTURES_REQUIRED servers RESOURCE_LOCK "servers;package-prefix"
      ENVIRONMENT "CXX=${CMAKE_CXX_COMPILER};KYSERA_TEST_SERVER_DIR=${KYSERA_TEST_SERVER_DIR}")
  endforeach()
endif()
add_test(NAME "package: vcpkg port"
  COMMAND ${CMAKE_COMMAND} -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -P ${CMAKE_CURRENT_SOURCE_DIR}/package/check_port.cmake)
set_tests_properties("package: vcpkg port" PROPERTIES LABELS "package")
