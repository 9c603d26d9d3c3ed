# The MySQL driver lookup against stub installs of each shape Connector/C++ comes in:
#   config-shared   mysql-concpp-config.cmake with mysql::concpp-jdbc (upstream 8.3+/9 shared)
#   config-static   the same with only mysql::concpp-jdbc-static (vcpkg's mysql-connector-cpp[jdbc],
#                   upstream static installs)
#   vcpkg-headers   no package file: include/jdbc/ + include/mysql/jdbc.h + libmysqlcppconn-static
#   debian-headers  no package file: 1.1's include/mysql_driver.h + cppconn/ + Boost + libmysqlcppconn
#   debian-no-boost 1.1's headers without Boost: not found, saying why
# Run: cmake -DSOURCE_DIR=<repo> -DWORK_DIR=<dir> -DCASE=<case> [-DCXX=<compiler>] -P check_driver_lookup.cmake
cmake_minimum_required(VERSION 3.20)
set(prefix "${WORK_DIR}/${CASE}/prefix")
file(REMOVE_RECURSE "${WORK_DIR}/${CASE}")

function(stub path)
  file(WRITE "${prefix}/${path}" "${ARGN}\n")
endfunction()
function(version_info path major)
  stub("${path}" "#define MYCPPCONN_DM_MAJOR_VERSION ${major}\n#define MYCPPCONN_DM_MINOR_VERSION 0")
endfunction()

set(expect -DEXPECT_FOUND=ON)
if(CASE STREQUAL "config-shared" OR CASE STREQUAL "config-static")
  if(CASE STREQUAL "config-shared")
    set(target mysql::concpp-jdbc)
  else()
    set(target mysql::concpp-jdbc-static)
  endif()
  stub("lib/cmake/mysql-concpp/mysql-concpp-config.cmake"
    "if(NOT TARGET ${target})\n  add_library(${target} INTERFACE IMPORTED)\nendif()\nset(mysql-concpp_FOUND TRUE)")
  list(APPEND expect "-DEXPECT_LINK=${target}")
elseif(CASE STREQUAL "vcpkg-headers")
  stub("include/jdbc/mysql_driver.h" "// stub")
  stub("include/jdbc/cppconn/driver.h" "// stub")
  version_info("include/jdbc/cppconn/version_info.h" 8)
  stub("include/mysql/jdbc.h" "// stub")
  stub("lib/libmysqlcppconn-static.a" "")
  list(APPEND expect "-DEXPECT_INCLUDES=${prefix}/include/jdbc|${prefix}/include" -DEXPECT_DEFINES=STATIC_CONCPP)
elseif(CASE STREQUAL "debian-headers" OR CASE STREQUAL "debian-no-boost")
  stub("include/mysql_driver.h" "// stub")
  stub("include/cppconn/driver.h" "// stub")
  version_info("include/cppconn/version_info.h" 1)
  stub("lib/libmysqlcppconn.so" "")
  if(CASE STREQUAL "debian-headers")
    stub("include/boost/scoped_ptr.hpp" "// stub")
    list(APPEND expect "-DEXPECT_INCLUDES=${prefix}/include|${prefix}/include")
  else()
    set(expect -DEXPECT_FOUND=OFF "-DEXPECT_REASON=need Boost headers")
  endif()
else()
  message(FATAL_ERROR "unknown CASE '${CASE}'")
endif()

set(compiler "")
if(CXX)
  set(compiler "-DCMAKE_CXX_COMPILER=${CXX}")
endif()
execute_process(
  COMMAND "${CMAKE_COMMAND}" -S "${SOURCE_DIR}/tests/package/driver_lookup" -B "${WORK_DIR}/${CASE}/build"
    "-DKYSERA_SOURCE_DIR=${SOURCE_DIR}" "-DCMAKE_PREFIX_PATH=${prefix}" ${compiler} ${expect}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "driver lookup (${CASE}) failed:\n${out}\n${err}")
endif()
string(REGEX MATCH "lookup: [^\n]*" line "${out}")
message(STATUS "${CASE}: ${line}")
