# pool_bench measures connection_pool against SOCI's connection_pool and Poco's SessionPool in the
# same run (Debian: libsoci-dev, libpoco-dev). Either comparison drops out, with a message, where
# its library is missing; the kysera figures are always built.
if(NOT TARGET pool_bench)
  return()
endif()

find_package(SOCI CONFIG QUIET)
if(TARGET SOCI::soci_core)
  target_link_libraries(pool_bench PRIVATE SOCI::soci_core)
  target_compile_definitions(pool_bench PRIVATE KYSERA_BENCH_WITH_SOCI=1)
elseif(TARGET SOCI::soci_core_static)
  target_link_libraries(pool_bench PRIVATE SOCI::soci_core_static)
  target_compile_definitions(pool_bench PRIVATE KYSERA_BENCH_WITH_SOCI=1)
else()
  # Debian's libsoci-dev ships no CMake package: find the header and library directly.
  find_path(KYSERA_SOCI_INCLUDE_DIR soci/connection-pool.h)
  find_library(KYSERA_SOCI_CORE_LIBRARY NAMES soci_core)
  if(KYSERA_SOCI_INCLUDE_DIR AND KYSERA_SOCI_CORE_LIBRARY)
    target_include_directories(pool_bench SYSTEM PRIVATE ${KYSERA_SOCI_INCLUDE_DIR})
    target_link_libraries(pool_bench PRIVATE ${KYSERA_SOCI_CORE_LIBRARY})
    target_compile_definitions(pool_bench PRIVATE KYSERA_BENCH_WITH_SOCI=1)
  else()
    message(STATUS "pool_bench: SOCI not found, comparing without it")
  endif()
endif()

find_package(Poco QUIET COMPONENTS Data Foundation)
if(TARGET Poco::Data)
  target_link_libraries(pool_bench PRIVATE Poco::Data Poco::Foundation)
  target_compile_definitions(pool_bench PRIVATE KYSERA_BENCH_WITH_POCO=1)
else()
  message(STATUS "pool_bench: Poco::Data not found, comparing without it")
endif()
