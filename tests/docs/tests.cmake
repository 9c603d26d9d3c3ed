# Documentation that cannot rot: every ```cpp block of README.md and docs/ is compiled with the
# test flags (-Werror in CI), and every relative link must name a file that exists.
include(${PROJECT_SOURCE_DIR}/cmake/kysera-infra-doc-snippets.cmake)
file(GLOB_RECURSE kysera_doc_pages CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
set(kysera_doc_pages ${PROJECT_SOURCE_DIR}/README.md ${kysera_doc_pages})
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${kysera_doc_pages})
kysera_extract_doc_snippets(${CMAKE_CURRENT_BINARY_DIR}/doc-snippets-src ${PROJECT_SOURCE_DIR}
  kysera_doc_shared kysera_doc_standalone ${kysera_doc_pages})

# Each block is compiled and linked, not run: most need a server. The blocks' #if guards follow
# the components linked here (KYSERA_INFRA_HAS_<NAME>), so a build without PostgreSQL or MySQL
# skips the blocks that use them.
set(kysera_doc_targets doc-snippets)
add_executable(doc-snippets ${kysera_doc_shared})
set(kysera_doc_index 0)
foreach(source IN LISTS kysera_doc_standalone)
  math(EXPR kysera_doc_index "${kysera_doc_index} + 1")
  add_executable(doc-snippet-${kysera_doc_index} ${source})
  list(APPEND kysera_doc_targets doc-snippet-${kysera_doc_index})
endforeach()
foreach(target IN LISTS kysera_doc_targets)
  target_link_libraries(${target} PRIVATE kysera-test-support)
  if(TARGET kysera::infra-spdlog)
    target_link_libraries(${target} PRIVATE kysera::infra-spdlog)
  endif()
  if(TARGET kysera::infra-http)
    target_link_libraries(${target} PRIVATE kysera::infra-http)
  endif()
endforeach()

add_test(NAME docs.links COMMAND ${CMAKE_COMMAND} -DROOT=${PROJECT_SOURCE_DIR}
  -P ${CMAKE_CURRENT_LIST_DIR}/check_links.cmake)
set_tests_properties(docs.links PROPERTIES LABELS docs)
