# Install rules: headers, exported targets, package config with components, pkg-config file.
# They form the install component `development`; the kysera-check tool is the component `tools`
# (examples/CMakeLists.txt), so `cmake --install build --component development` skips it.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(KYSERA_INFRA_CMAKE_DIR "${CMAKE_INSTALL_DATADIR}/kysera-infra/cmake"
  CACHE STRING "Where the CMake package files are installed (relative to the prefix)")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT development)

install(TARGETS kysera-infra EXPORT kysera-infra-targets COMPONENT development)
install(EXPORT kysera-infra-targets NAMESPACE kysera:: DESTINATION "${KYSERA_INFRA_CMAKE_DIR}" COMPONENT development)
foreach(component IN LISTS KYSERA_INFRA_COMPONENTS)
  install(TARGETS kysera-infra-${component} EXPORT kysera-infra-${component}-targets COMPONENT development)
  install(EXPORT kysera-infra-${component}-targets NAMESPACE kysera::
    DESTINATION "${KYSERA_INFRA_CMAKE_DIR}" COMPONENT development)
endforeach()

foreach(component IN LISTS KYSERA_INFRA_EXTRA_COMPONENTS)
  install(TARGETS kysera-infra-${component} EXPORT kysera-infra-${component}-targets COMPONENT development)
  install(EXPORT kysera-infra-${component}-targets NAMESPACE kysera::
    DESTINATION "${KYSERA_INFRA_CMAKE_DIR}" COMPONENT development)
endforeach()

# kysera::infra-all is not exported: kysera-infraConfig.cmake defines it from the components a
# find_package call requests, since an exported one would name components never loaded.
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/kysera-infraConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/kysera-infraConfig.cmake"
  INSTALL_DESTINATION "${KYSERA_INFRA_CMAKE_DIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/kysera-infraConfigVersion.cmake"
  COMPATIBILITY SameMajorVersion ARCH_INDEPENDENT)
install(FILES
  "${PROJECT_BINARY_DIR}/kysera-infraConfig.cmake"
  "${PROJECT_BINARY_DIR}/kysera-infraConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/kysera-infra-drivers.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/kysera-infra-http.cmake"
  DESTINATION "${KYSERA_INFRA_CMAKE_DIR}" COMPONENT development)

configure_file("${PROJECT_SOURCE_DIR}/cmake/kysera-infra.pc.in" "${PROJECT_BINARY_DIR}/kysera-infra.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/kysera-infra.pc" DESTINATION "${CMAKE_INSTALL_DATADIR}/pkgconfig" COMPONENT development)
