# Helper executables of the shutdown tests (included by tests/CMakeLists.txt after test-shutdown
# and test-shutdown-it are defined).
#
# The signal tests run each scenario in a child process: kysera-shutdown-child (child_main.cpp)
# for the fake-database scenarios, kysera-shutdown-pg-child and kysera-shutdown-mysql-child (real
# pools; they share support_child.hpp) for the integration ones. Files named *_main.cpp are not
# globbed into the test targets.
set(kysera_shutdown_child_sources ${CMAKE_CURRENT_SOURCE_DIR}/shutdown/child_main.cpp)
set(kysera_shutdown_pg_child_sources ${CMAKE_CURRENT_SOURCE_DIR}/shutdown/child_pg_main.cpp)
set(kysera_shutdown_mysql_child_sources ${CMAKE_CURRENT_SOURCE_DIR}/shutdown/child_mysql_main.cpp)

add_executable(kysera-shutdown-child ${kysera_shutdown_child_sources})
target_link_libraries(kysera-shutdown-child PRIVATE kysera-test-support)
if(TARGET test-shutdown)
  add_dependencies(test-shutdown kysera-shutdown-child)
  target_compile_definitions(test-shutdown PRIVATE
    KYSERA_SHUTDOWN_CHILD="$<TARGET_FILE:kysera-shutdown-child>")
endif()

# The integration child: a real PostgreSQL pool (built only when that adapter is enabled).
if(TARGET test-shutdown-it AND EXISTS ${kysera_shutdown_pg_child_sources}
   AND "postgres" IN_LIST KYSERA_INFRA_COMPONENTS)
  add_executable(kysera-shutdown-pg-child ${kysera_shutdown_pg_child_sources})
  target_link_libraries(kysera-shutdown-pg-child PRIVATE kysera-test-support)
  add_dependencies(test-shutdown-it kysera-shutdown-pg-child)
  target_compile_definitions(test-shutdown-it PRIVATE
    KYSERA_SHUTDOWN_PG_CHILD="$<TARGET_FILE:kysera-shutdown-pg-child>")
endif()

# The MariaDB integration child: a real MariaDB pool (built only when that adapter is enabled).
if(TARGET test-shutdown-it AND EXISTS ${kysera_shutdown_mysql_child_sources}
   AND "mysql" IN_LIST KYSERA_INFRA_COMPONENTS)
  add_executable(kysera-shutdown-mysql-child ${kysera_shutdown_mysql_child_sources})
  target_link_libraries(kysera-shutdown-mysql-child PRIVATE kysera-test-support)
  add_dependencies(test-shutdown-it kysera-shutdown-mysql-child)
  target_compile_definitions(test-shutdown-it PRIVATE
    KYSERA_SHUTDOWN_MYSQL_CHILD="$<TARGET_FILE:kysera-shutdown-mysql-child>")
endif()
