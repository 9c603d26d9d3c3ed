# The backend options (cmake/kysera-infra-options.cmake), by configuring the project itself with
# tests, examples and install rules off. Cases:
#   new-names         KYSERA_INFRA_POSTGRES=OFF MYSQL=OFF: only SQLite is enabled
#   old-names         WITH_POSTGRES=OFF WITH_MYSQL=OFF REQUIRE_ALL_BACKENDS=ON: deprecation
#                     messages, translated to POSTGRES=OFF MYSQL=OFF SQLITE=ON, old names dropped
#   required-missing  SQLITE=ON with SQLite hidden: configuration fails, saying why
#   auto-missing      SQLITE=AUTO with SQLite hidden: the adapter is left out
#   bad-value         MYSQL=maybe: configuration fails
# Run: cmake -DSOURCE_DIR=<repo> -DWORK_DIR=<dir> -DCASE=<case> [-DCXX=<compiler>] -P check_options.cmake
cmake_minimum_required(VERSION 3.20)
set(dir "${WORK_DIR}/${CASE}")
file(REMOVE_RECURSE "${dir}")
set(base -G Ninja -DKYSERA_INFRA_BUILD_TESTS=OFF -DKYSERA_INFRA_BUILD_EXAMPLES=OFF -DKYSERA_INFRA_INSTALL=OFF
  -DKYSERA_INFRA_WITH_SPDLOG=OFF)
if(CXX)
  list(APPEND base "-DCMAKE_CXX_COMPILER=${CXX}")
endif()
set(no_sqlite -DCMAKE_DISABLE_FIND_PACKAGE_SQLite3=ON -DCMAKE_DISABLE_FIND_PACKAGE_unofficial-sqlite3=ON)

set(expect_ok TRUE)
set(expect_output "")
set(expect_cache "")
if(CASE STREQUAL "new-names")
  set(args -DKYSERA_INFRA_POSTGRES=OFF -DKYSERA_INFRA_MYSQL=OFF)
  set(expect_output "postgres adapter disabled \\(KYSERA_INFRA_POSTGRES=OFF\\)" "sqlite adapter enabled")
  set(expect_cache POSTGRES=OFF MYSQL=OFF SQLITE=AUTO)
elseif(CASE STREQUAL "old-names")
  set(args -DKYSERA_INFRA_WITH_POSTGRES=OFF -DKYSERA_INFRA_WITH_MYSQL=OFF -DKYSERA_INFRA_REQUIRE_ALL_BACKENDS=ON)
  set(expect_output "KYSERA_INFRA_WITH_POSTGRES is deprecated" "KYSERA_INFRA_REQUIRE_ALL_BACKENDS is deprecated"
    "sqlite adapter enabled")
  set(expect_cache POSTGRES=OFF MYSQL=OFF SQLITE=ON)
elseif(CASE STREQUAL "required-missing")
  set(args -DKYSERA_INFRA_POSTGRES=OFF -DKYSERA_INFRA_MYSQL=OFF -DKYSERA_INFRA_SQLITE=ON ${no_sqlite})
  set(expect_ok FALSE)
  set(expect_output "sqlite adapter required \\(KYSERA_INFRA_SQLITE=ON\\) but SQLite3 not found")
elseif(CASE STREQUAL "auto-missing")
  set(args -DKYSERA_INFRA_POSTGRES=OFF -DKYSERA_INFRA_MYSQL=OFF ${no_sqlite})
  set(expect_output "sqlite adapter disabled: SQLite3 not found")
  set(expect_cache SQLITE=AUTO)
elseif(CASE STREQUAL "bad-value")
  set(args -DKYSERA_INFRA_MYSQL=maybe)
  set(expect_ok FALSE)
  set(expect_output "KYSERA_INFRA_MYSQL is 'maybe'; expected AUTO, ON or OFF")
else()
  message(FATAL_ERROR "unknown CASE '${CASE}'")
endif()

execute_process(COMMAND ${CMAKE_COMMAND} -S "${SOURCE_DIR}" -B "${dir}" ${base} ${args}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(all "${out}${err}")
string(REGEX REPLACE "[ \t]*\n[ \t]*" " " flat "${all}")  # CMake wraps long messages
if(expect_ok AND NOT rc EQUAL 0)
  message(FATAL_ERROR "${CASE}: configuration failed:\n${all}")
elseif(NOT expect_ok AND rc EQUAL 0)
  message(FATAL_ERROR "${CASE}: configuration succeeded, expected a failure:\n${all}")
endif()
foreach(pattern IN LISTS expect_output)
  if(NOT flat MATCHES "${pattern}")
    message(FATAL_ERROR "${CASE}: output lacks '${pattern}':\n${all}")
  endif()
endforeach()
if(expect_cache)
  file(STRINGS "${dir}/CMakeCache.txt" cache REGEX "^KYSERA_INFRA_[A-Z_]+:")
  foreach(entry IN LISTS expect_cache)
    string(REPLACE "=" ":STRING=" line "KYSERA_INFRA_${entry}")
    if(NOT line IN_LIST cache)
      message(FATAL_ERROR "${CASE}: cache lacks ${line}:\n${cache}")
    endif()
  endforeach()
  if(cache MATCHES "KYSERA_INFRA_(WITH_(POSTGRES|MYSQL|SQLITE)|REQUIRE_ALL_BACKENDS):")
    message(FATAL_ERROR "${CASE}: a deprecated name stayed in the cache:\n${cache}")
  endif()
endif()
message(STATUS "${CASE}: as expected")
