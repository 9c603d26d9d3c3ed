# The HTTP endpoint's tests link the component (this module exists only when it was built).
target_link_libraries(test-http PRIVATE kysera::infra-http)
if(TARGET test-http-it)
  target_link_libraries(test-http-it PRIVATE kysera::infra-http)
endif()
