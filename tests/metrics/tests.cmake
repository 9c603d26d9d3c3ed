# The exposition checked by Prometheus' own linter: a program writes a scrape of the metrics scene
# (tests/metrics/support_metrics.hpp) and promtool_check.sh runs `promtool check metrics` on it.
add_executable(metrics-scrape ${CMAKE_CURRENT_SOURCE_DIR}/metrics/scrape_main.cpp)
target_link_libraries(metrics-scrape PRIVATE kysera-test-support)
add_test(NAME metrics:promtool
  COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/metrics/promtool_check.sh $<TARGET_FILE:metrics-scrape>
          ${CMAKE_CURRENT_BINARY_DIR}/metrics-scrape)
set_tests_properties(metrics:promtool PROPERTIES LABELS metrics SKIP_RETURN_CODE 77 TIMEOUT 120)
