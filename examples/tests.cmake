# ctest runs every example and checks its output (label `examples`).
set(work "${CMAKE_CURRENT_BINARY_DIR}/example-work")
set(runner bash ${CMAKE_CURRENT_SOURCE_DIR}/run_example.sh)
set(env "KYSERA_TEST_SERVER_DIR=${KYSERA_TEST_SERVER_DIR}")

function(kysera_example_test name)
  cmake_parse_arguments(arg "" "BACKEND;PASS;FAIL;WILL_FAIL" "COMMAND" ${ARGN})
  add_test(NAME "examples: ${name}" COMMAND ${runner} ${arg_COMMAND})
  set(props LABELS examples ENVIRONMENT "${env}" TIMEOUT 120)
  if(arg_PASS)
    list(APPEND props PASS_REGULAR_EXPRESSION "${arg_PASS}")
  endif()
  if(arg_FAIL)
    list(APPEND props FAIL_REGULAR_EXPRESSION "${arg_FAIL}")
  endif()
  if(arg_BACKEND STREQUAL "postgres" OR arg_BACKEND STREQUAL "mysql")
    list(APPEND props FIXTURES_REQUIRED servers RESOURCE_LOCK servers)
  endif()
  set_tests_properties("examples: ${name}" PROPERTIES ${props})
endfunction()

if(TARGET quickstart)
  kysera_example_test("quickstart on sqlite" BACKEND sqlite
    COMMAND $<TARGET_FILE:quickstart> sqlite ${work}/quickstart {URL}
    PASS "health: (healthy|degraded).*visits so far: 1.*pool: total [12], idle [0-2], active 0, waiting 0, max 2.*circuit: closed.*closed")
endif()
foreach(backend IN LISTS KYSERA_INFRA_COMPONENTS)
  kysera_example_test("complete on ${backend}" BACKEND ${backend}
    COMMAND $<TARGET_FILE:complete> ${backend} ${work}/complete-${backend} {URL} --seconds 2
    PASS "health: (healthy|degraded).*work done: [1-9][0-9]* iterations, 0 failed.*queries: [1-9][0-9]* total.*connections: total [1-4], active [0-4], idle [0-4], max 4.*shutdown complete"
    FAIL "query failed|shutdown failed|Secret")
  kysera_example_test("kysera-check on ${backend}" BACKEND ${backend}
    COMMAND $<TARGET_FILE:kysera-check> ${backend} ${work}/check-${backend} {URL} --verbose --timeout 2s
    PASS "database: (healthy|degraded).*version: [A-Za-z0-9]"
    FAIL "Secret")
  kysera_example_test("kysera-check json on ${backend}" BACKEND ${backend}
    COMMAND $<TARGET_FILE:kysera-check> ${backend} ${work}/check-${backend} {URL} --json
    PASS "^.\"status\":\"(pass|warn)\",\"checks\":.\"database:responseTime\":..\"componentId\":\"Database Connection\".*\"observedValue\":[0-9.]+,\"observedUnit\":\"ms\".*\"metrics\":.\"check_latency\":[0-9.]+.,\"timestamp\":\"[0-9-]+T[0-9:.]+Z\"}"
    FAIL "Secret")
endforeach()
# complete --listen: the HTTP endpoint answers curl (only with the http component).
if(TARGET kysera::infra-http AND "sqlite" IN_LIST KYSERA_INFRA_COMPONENTS)
  kysera_example_test("complete --listen serves the probes" BACKEND none
    COMMAND bash none ${work}/listen ${CMAKE_CURRENT_SOURCE_DIR}/check_listen.sh $<TARGET_FILE:complete> sqlite://${work}/listen/listen.db
    PASS "ok-listen")
endif()
# Exit statuses: unhealthy is 2, bad usage is 64, --help is 0.
if("postgres" IN_LIST KYSERA_INFRA_COMPONENTS)
  kysera_example_test("kysera-check unhealthy exits 2" BACKEND none
    COMMAND bash none ${work}/misc ${CMAKE_CURRENT_SOURCE_DIR}/check_exit_codes.sh $<TARGET_FILE:kysera-check> unhealthy
    PASS "ok-2")
endif()
if("sqlite" IN_LIST KYSERA_INFRA_COMPONENTS)
  kysera_example_test("kysera-check never creates a sqlite database" BACKEND none
    COMMAND bash none ${work}/missing ${CMAKE_CURRENT_SOURCE_DIR}/check_exit_codes.sh $<TARGET_FILE:kysera-check> missing-sqlite
    PASS "ok-missing")
endif()
kysera_example_test("kysera-check bad arguments exit 64" BACKEND none
  COMMAND bash none ${work}/misc ${CMAKE_CURRENT_SOURCE_DIR}/check_exit_codes.sh $<TARGET_FILE:kysera-check> usage
  PASS "ok-64")
kysera_example_test("kysera-check help" BACKEND none
  COMMAND $<TARGET_FILE:kysera-check> none ${work}/misc --help
  PASS "usage: kysera-check URL")
# `cmake --install` puts kysera-check into bin/ as the component `tools`; `development` leaves it out.
if(KYSERA_INFRA_INSTALL AND KYSERA_INFRA_INSTALL_TOOLS)
  kysera_example_test("kysera-check is installed into bin as the component tools" BACKEND none
    COMMAND bash none ${work}/install ${CMAKE_CURRENT_SOURCE_DIR}/check_install.sh ${PROJECT_BINARY_DIR}
    PASS "ok-install")
endif()
