# The exposition checked by parsers that are not ours to bend: a program writes a scrape of the
# metrics scene (tests/metrics/support_metrics.hpp) in both formats; check_scrape.sh runs
# tests/metrics/check_exposition.py on both, and `promtool check metrics` on the text format
# (skipped where the Debian package prometheus is missing).
add_executable(metrics-scrape ${CMAKE_CURRENT_SOURCE_DIR}/metrics/scrape_main.cpp)
target_link_libraries(metrics-scrape PRIVATE kysera-test-support)
foreach(checker python promtool)
  add_test(NAME metrics:exposition-${checker}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/metrics/check_scrape.sh ${checker} $<TARGET_FILE:metrics-scrape>
            ${CMAKE_CURRENT_BINARY_DIR}/metrics-scrape-${checker})
  set_tests_properties(metrics:exposition-${checker} PROPERTIES LABELS metrics SKIP_RETURN_CODE 77 TIMEOUT 120)
endforeach()
