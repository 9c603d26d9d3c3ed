# Finds cpp-httplib for the `http` component: its CMake package (vcpkg `cpp-httplib`, Debian
# has none), then pkg-config (Debian `libcpp-httplib-dev`), then a bare single-header httplib.h.
# Sets <out> TRUE when httplib::httplib exists afterwards, else FALSE and <out>_REASON.
function(kysera_infra_find_httplib out)
  if(NOT TARGET httplib::httplib)
    find_package(httplib CONFIG QUIET)
  endif()
  # Debian's libcpp-httplib-dev is the compiled (split) form without a CMake package: its
  # pkg-config file gives the library and the feature macros its header must see.
  if(NOT TARGET httplib::httplib)
    find_package(PkgConfig QUIET)
    if(PKG_CONFIG_FOUND)
      pkg_check_modules(KYSERA_INFRA_HTTPLIB_PC QUIET IMPORTED_TARGET GLOBAL cpp-httplib)
      if(TARGET PkgConfig::KYSERA_INFRA_HTTPLIB_PC)
        add_library(httplib::httplib INTERFACE IMPORTED GLOBAL)
        set_target_properties(httplib::httplib PROPERTIES INTERFACE_LINK_LIBRARIES PkgConfig::KYSERA_INFRA_HTTPLIB_PC)
      endif()
    endif()
  endif()
  # Last, a bare httplib.h: the single-header form, which needs no library.
  if(NOT TARGET httplib::httplib)
    find_path(KYSERA_INFRA_HTTPLIB_INCLUDE_DIR httplib.h)
    if(KYSERA_INFRA_HTTPLIB_INCLUDE_DIR)
      add_library(httplib::httplib INTERFACE IMPORTED GLOBAL)
      set_target_properties(httplib::httplib PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${KYSERA_INFRA_HTTPLIB_INCLUDE_DIR}")
    endif()
  endif()
  if(TARGET httplib::httplib)
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
    set(${out}_REASON "cpp-httplib not found (Debian: libcpp-httplib-dev, vcpkg: cpp-httplib)" PARENT_SCOPE)
  endif()
endfunction()
