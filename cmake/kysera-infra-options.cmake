# The backend options: one tri-state cache variable per backend,
#
#   KYSERA_INFRA_POSTGRES / KYSERA_INFRA_MYSQL / KYSERA_INFRA_SQLITE = AUTO | ON | OFF
#
# AUTO (the default) builds the adapter when its driver is found, ON fails configuration when it
# is not, OFF leaves the adapter out. The usual CMake spellings of true and false (TRUE, YES, 1,
# FALSE, NO, 0) count as ON and OFF; anything else is an error.
#
# The names before 0.2 still work, translated with a deprecation message and then dropped from
# the cache (so they never override a later change of the new option):
#   KYSERA_INFRA_WITH_<BACKEND>=OFF        -> KYSERA_INFRA_<BACKEND>=OFF
#   KYSERA_INFRA_WITH_<BACKEND>=ON         -> KYSERA_INFRA_<BACKEND>=AUTO (unless it is ON already)
#   KYSERA_INFRA_REQUIRE_ALL_BACKENDS=ON   -> every backend that is AUTO becomes ON
#   KYSERA_INFRA_REQUIRE_ALL_BACKENDS=OFF  -> every backend that is ON becomes AUTO
# (the WITH_ names are applied first, then REQUIRE_ALL_BACKENDS).

include_guard(GLOBAL)

function(_kysera_infra_deprecated old new)
  message(DEPRECATION "kysera-infra: ${old} is deprecated; use ${new} (AUTO|ON|OFF, see docs/cmake-options.md)")
endfunction()

function(kysera_infra_backend_options)
  set(descriptions
    "PostgreSQL adapter (libpqxx): AUTO builds it when the driver is found, ON requires it, OFF skips it"
    "MySQL/MariaDB adapter (Connector/C++ JDBC API): AUTO builds it when the driver is found, ON requires it, OFF skips it"
    "SQLite adapter: AUTO builds it when the driver is found, ON requires it, OFF skips it")
  set(backends POSTGRES MYSQL SQLITE)
  foreach(i RANGE 2)
    list(GET backends ${i} upper)
    list(GET descriptions ${i} description)
    set(KYSERA_INFRA_${upper} AUTO CACHE STRING "${description}")
    set_property(CACHE KYSERA_INFRA_${upper} PROPERTY STRINGS AUTO ON OFF)
    string(TOUPPER "${KYSERA_INFRA_${upper}}" value)
    if(value MATCHES "^(ON|TRUE|YES|Y|1)$")
      set(value ON)
    elseif(value MATCHES "^(OFF|FALSE|NO|N|0)$")
      set(value OFF)
    elseif(NOT value STREQUAL "AUTO")
      message(FATAL_ERROR "kysera-infra: KYSERA_INFRA_${upper} is '${KYSERA_INFRA_${upper}}'; expected AUTO, ON or OFF")
    endif()
    set(KYSERA_INFRA_${upper} "${value}")

    if(DEFINED KYSERA_INFRA_WITH_${upper})
      _kysera_infra_deprecated("KYSERA_INFRA_WITH_${upper}" "KYSERA_INFRA_${upper}")
      if(NOT KYSERA_INFRA_WITH_${upper})
        set(KYSERA_INFRA_${upper} OFF)
      elseif(KYSERA_INFRA_${upper} STREQUAL "OFF")
        set(KYSERA_INFRA_${upper} AUTO)
      endif()
      unset(KYSERA_INFRA_WITH_${upper} CACHE)
    endif()
  endforeach()

  if(DEFINED KYSERA_INFRA_REQUIRE_ALL_BACKENDS)
    _kysera_infra_deprecated("KYSERA_INFRA_REQUIRE_ALL_BACKENDS" "KYSERA_INFRA_<BACKEND>=ON for each backend")
    foreach(upper IN LISTS backends)
      if(KYSERA_INFRA_REQUIRE_ALL_BACKENDS AND KYSERA_INFRA_${upper} STREQUAL "AUTO")
        set(KYSERA_INFRA_${upper} ON)
      elseif(NOT KYSERA_INFRA_REQUIRE_ALL_BACKENDS AND KYSERA_INFRA_${upper} STREQUAL "ON")
        set(KYSERA_INFRA_${upper} AUTO)
      endif()
    endforeach()
    unset(KYSERA_INFRA_REQUIRE_ALL_BACKENDS CACHE)
  endif()

  # The cache holds the translated, normalised value; the caller's scope gets it too.
  foreach(i RANGE 2)
    list(GET backends ${i} upper)
    list(GET descriptions ${i} description)
    set(value "${KYSERA_INFRA_${upper}}")
    set(KYSERA_INFRA_${upper} "${value}" CACHE STRING "${description}" FORCE)
    set(KYSERA_INFRA_${upper} "${value}" PARENT_SCOPE)
  endforeach()
endfunction()
