# Finds one backend driver, however it was installed, and exposes it as the imported target
# kysera_infra_driver::<component>. Used by the build tree and by the installed package config, so
# both resolve drivers the same way.
#
#   kysera_infra_find_driver(<postgres|mysql|sqlite> <result-var> [QUIET])
#
# <result-var> is set to TRUE when the driver was found, else FALSE with the reason in
# <result-var>_REASON.

include_guard(GLOBAL)

function(_kysera_infra_alias component target)
  if(NOT TARGET kysera_infra_driver::${component})
    add_library(kysera_infra_driver::${component} INTERFACE IMPORTED GLOBAL)
    set_property(TARGET kysera_infra_driver::${component} PROPERTY INTERFACE_LINK_LIBRARIES ${target})
  endif()
endfunction()

function(_kysera_infra_find_postgres out)
  # libpqxx 7/8 (upstream, vcpkg) ship a CMake package; Debian's 6.4 only a pkg-config file.
  find_package(libpqxx CONFIG QUIET)
  if(TARGET libpqxx::pqxx)
    _kysera_infra_alias(postgres libpqxx::pqxx)
    set(${out} TRUE PARENT_SCOPE)
    return()
  endif()
  find_package(PkgConfig QUIET)
  if(PKG_CONFIG_FOUND)
    pkg_check_modules(KYSERA_INFRA_PQXX QUIET IMPORTED_TARGET GLOBAL libpqxx)
    if(TARGET PkgConfig::KYSERA_INFRA_PQXX)
      _kysera_infra_alias(postgres PkgConfig::KYSERA_INFRA_PQXX)
      set(${out} TRUE PARENT_SCOPE)
      return()
    endif()
  endif()
  set(${out} FALSE PARENT_SCOPE)
  set(${out}_REASON "libpqxx not found (neither a libpqxx CMake package nor libpqxx.pc)" PARENT_SCOPE)
endfunction()

function(_kysera_infra_find_mysql out)
  # Connector/C++ 8.3+ and 9 ship mysql-concpp-config.cmake with the legacy JDBC target:
  # mysql::concpp-jdbc for the shared library, mysql::concpp-jdbc-static for the static one (all
  # that vcpkg's mysql-connector-cpp[jdbc] builds; upstream static installs too).
  find_package(mysql-concpp CONFIG QUIET)
  foreach(target IN ITEMS mysql::concpp-jdbc mysql::concpp-jdbc-static)
    if(TARGET ${target})
      _kysera_infra_alias(mysql ${target})
      set(${out} TRUE PARENT_SCOPE)
      return()
    endif()
  endforeach()
  # No package: find the headers and the library. Connector/C++ 1.1 (Debian) installs
  # <mysql_driver.h> and <cppconn/*.h> at the top of the include tree and ships no CMake or
  # pkg-config files; 8.x/9.x keep the same headers under include/jdbc/ (with <mysql/jdbc.h>
  # beside them), which is all a vcpkg tree or an unpacked upstream archive may offer.
  find_path(KYSERA_INFRA_MYSQLCPPCONN_INCLUDE_DIR NAMES mysql_driver.h cppconn/driver.h PATH_SUFFIXES jdbc mysql-cppconn/jdbc mysql-cppconn-8/jdbc)
  find_library(KYSERA_INFRA_MYSQLCPPCONN_LIBRARY NAMES mysqlcppconn mysqlcppconn-static)
  if(NOT KYSERA_INFRA_MYSQLCPPCONN_INCLUDE_DIR OR NOT KYSERA_INFRA_MYSQLCPPCONN_LIBRARY)
    set(${out} FALSE PARENT_SCOPE)
    set(${out}_REASON "Connector/C++ not found (no mysql-concpp package, no mysql_driver.h (or jdbc/mysql_driver.h) with libmysqlcppconn)" PARENT_SCOPE)
    return()
  endif()
  set(include_dirs "${KYSERA_INFRA_MYSQLCPPCONN_INCLUDE_DIR}")
  get_filename_component(leaf "${KYSERA_INFRA_MYSQLCPPCONN_INCLUDE_DIR}" NAME)
  if(leaf STREQUAL "jdbc")
    # The folder above holds <mysql/jdbc.h>, the 8.x entry point the adapter prefers.
    get_filename_component(parent "${KYSERA_INFRA_MYSQLCPPCONN_INCLUDE_DIR}" DIRECTORY)
    list(APPEND include_dirs "${parent}")
  endif()
  # The generation decides whether Boost is needed: 1.1's headers include Boost's, 8.x's do not.
  set(major 1)
  set(version_file "${KYSERA_INFRA_MYSQLCPPCONN_INCLUDE_DIR}/cppconn/version_info.h")
  if(EXISTS "${version_file}")
    file(STRINGS "${version_file}" line REGEX "^#define[ \t]+MYCPPCONN_DM_MAJOR_VERSION[ \t]+[0-9]+")
    if(line MATCHES "([0-9]+)[ \t]*$")
      set(major "${CMAKE_MATCH_1}")
    endif()
  endif()
  if(major LESS 8)
    find_path(KYSERA_INFRA_BOOST_INCLUDE_DIR NAMES boost/scoped_ptr.hpp)
    if(NOT KYSERA_INFRA_BOOST_INCLUDE_DIR)
      set(${out} FALSE PARENT_SCOPE)
      set(${out}_REASON "Connector/C++ 1.1 found but its headers need Boost headers (libboost-dev)" PARENT_SCOPE)
      return()
    endif()
    list(APPEND include_dirs "${KYSERA_INFRA_BOOST_INCLUDE_DIR}")
  endif()
  if(NOT TARGET kysera_infra_driver::mysqlcppconn_legacy)
    add_library(kysera_infra_driver::mysqlcppconn_legacy UNKNOWN IMPORTED GLOBAL)
    set_target_properties(kysera_infra_driver::mysqlcppconn_legacy PROPERTIES
      IMPORTED_LOCATION "${KYSERA_INFRA_MYSQLCPPCONN_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${include_dirs}")
    if(KYSERA_INFRA_MYSQLCPPCONN_LIBRARY MATCHES "mysqlcppconn-static")
      # What the package's static target defines. Its own dependencies (the MySQL client library,
      # OpenSSL) are not known here: prefer the mysql-concpp package for static builds.
      set_property(TARGET kysera_infra_driver::mysqlcppconn_legacy PROPERTY INTERFACE_COMPILE_DEFINITIONS STATIC_CONCPP)
    endif()
  endif()
  _kysera_infra_alias(mysql kysera_infra_driver::mysqlcppconn_legacy)
  set(${out} TRUE PARENT_SCOPE)
endfunction()

function(_kysera_infra_find_sqlite out)
  find_package(SQLite3 QUIET)  # CMake's own module; vcpkg's sqlite3 also provides SQLite::SQLite3
  if(NOT TARGET SQLite::SQLite3)
    find_package(unofficial-sqlite3 CONFIG QUIET)
    if(TARGET unofficial::sqlite3::sqlite3)
      _kysera_infra_alias(sqlite unofficial::sqlite3::sqlite3)
      set(${out} TRUE PARENT_SCOPE)
      return()
    endif()
  endif()
  if(TARGET SQLite::SQLite3)
    _kysera_infra_alias(sqlite SQLite::SQLite3)
    set(${out} TRUE PARENT_SCOPE)
    return()
  endif()
  set(${out} FALSE PARENT_SCOPE)
  set(${out}_REASON "SQLite3 not found (sqlite3.h and libsqlite3)" PARENT_SCOPE)
endfunction()

function(kysera_infra_find_driver component out)
  if(TARGET kysera_infra_driver::${component})
    set(${out} TRUE PARENT_SCOPE)
    return()
  endif()
  if(component STREQUAL "postgres")
    _kysera_infra_find_postgres(found)
  elseif(component STREQUAL "mysql")
    _kysera_infra_find_mysql(found)
  elseif(component STREQUAL "sqlite")
    _kysera_infra_find_sqlite(found)
  else()
    set(found FALSE)
    set(found_REASON "unknown component '${component}' (known: postgres, mysql, sqlite)")
  endif()
  set(${out} ${found} PARENT_SCOPE)
  set(${out}_REASON "${found_REASON}" PARENT_SCOPE)
endfunction()
