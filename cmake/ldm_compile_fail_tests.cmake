# Tests that code which must not compile does not, for the reason we expect.
#
# Each <dir>/*.cpp holds one mistake inside `#ifndef LDM_COMPILE_FAIL_CONTROL` and a first line
#   // expect: <regular expression the compiler's message must match>
# Two tests per file: the control build (mistake compiled out) must succeed, which proves the
# file is otherwise fine; the real build must fail with a message matching the expectation.
function(ldm_add_compile_fail_tests dir)
  file(GLOB sources CONFIGURE_DEPENDS ${dir}/*.cpp)
  foreach(source ${sources})
    get_filename_component(name ${source} NAME_WE)
    file(STRINGS ${source} expect_line LIMIT_COUNT 1 REGEX "^// expect: ")
    string(REGEX REPLACE "^// expect: " "" expected "${expect_line}")
    if(expected STREQUAL "")
      message(FATAL_ERROR "${source}: the first line must be '// expect: <message regex>'")
    endif()

    foreach(kind fail control)
      set(target compile_${kind}_${name})
      add_library(${target} OBJECT EXCLUDE_FROM_ALL ${source})
      target_link_libraries(${target} PRIVATE ldm::ldm)
      if(kind STREQUAL "control")
        target_compile_definitions(${target} PRIVATE LDM_COMPILE_FAIL_CONTROL)
      endif()
      add_test(NAME ${target}
        COMMAND ${CMAKE_COMMAND} --build ${CMAKE_BINARY_DIR} --target ${target})
      # Builds in one tree must not run concurrently.
      set_tests_properties(${target} PROPERTIES LABELS "host;compile" RESOURCE_LOCK ldm_build_tree)
    endforeach()
    set_tests_properties(compile_fail_${name} PROPERTIES
      PASS_REGULAR_EXPRESSION "${expected}")
  endforeach()
endfunction()
