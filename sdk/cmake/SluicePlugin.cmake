# sluice_add_plugin(<target> <sources>...)
#
# Builds a Sluice plugin: a MODULE library named <target>.so (no "lib"
# prefix), hidden visibility (only the SL_PLUGIN_DEFINE descriptor is
# exported), compiled against the SDK header only - a plugin never links
# against the runtime.
#
# Used in the Sluice tree (where SLUICE_PLUGIN_OUTPUT_DIR collects every
# plugin next to the `sluice` binary) and shipped with the installed CMake
# package (where SLUICE_PLUGIN_OUTPUT_DIR is normally undefined and the .so
# lands in the usual CMAKE_LIBRARY_OUTPUT_DIRECTORY / current binary dir).
include_guard(GLOBAL)

function(sluice_add_plugin target)
  if(NOT ARGN)
    message(FATAL_ERROR "sluice_add_plugin(${target}): no source files given")
  endif()
  if(NOT TARGET Sluice::sdk)
    message(FATAL_ERROR "sluice_add_plugin(${target}): target Sluice::sdk not found; "
                        "call find_package(Sluice) first")
  endif()
  add_library(${target} MODULE ${ARGN})
  target_link_libraries(${target} PRIVATE Sluice::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    C_VISIBILITY_PRESET hidden
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED SLUICE_PLUGIN_OUTPUT_DIR AND NOT SLUICE_PLUGIN_OUTPUT_DIR STREQUAL "")
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${SLUICE_PLUGIN_OUTPUT_DIR})
  endif()
endfunction()
