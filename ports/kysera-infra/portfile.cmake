# Header-only: a release-only configure and install, no binaries.
set(VCPKG_BUILD_TYPE release)

vcpkg_from_github(
    OUT_SOURCE_PATH SOURCE_PATH
    REPO kysera/kysera-infra
    REF "v${VERSION}"
    SHA512 0
    HEAD_REF main
)

# Each backend feature gives its backend option ON (the driver is required) or OFF; `http`
# turns the HTTP endpoint component on or off.
vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
    FEATURES
        postgres KYSERA_INFRA_POSTGRES
        mysql    KYSERA_INFRA_MYSQL
        sqlite   KYSERA_INFRA_SQLITE
        http     KYSERA_INFRA_WITH_HTTP
)

vcpkg_cmake_configure(
    SOURCE_PATH "${SOURCE_PATH}"
    OPTIONS
        ${FEATURE_OPTIONS}
        -DKYSERA_INFRA_BUILD_TESTS=OFF
        -DKYSERA_INFRA_BUILD_EXAMPLES=OFF
        -DKYSERA_INFRA_BUILD_BENCHMARKS=OFF
        -DKYSERA_INFRA_INSTALL=ON
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME kysera-infra CONFIG_PATH share/kysera-infra/cmake)
vcpkg_fixup_pkgconfig()

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/lib" "${CURRENT_PACKAGES_DIR}/debug")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
