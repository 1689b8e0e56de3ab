# The API reference (Doxygen, from the public headers; docs/Doxyfile.in lists them):
#   cmake --build build/host --target docs    -> build/host/docs/api/html/index.html
# and, with the tests, the api_docs test: the same run (about a second), which fails on any
# Doxygen warning, so an undocumented public declaration fails CI.
find_program(LDM_DOXYGEN doxygen)
set(LDM_DOCS_DIR ${PROJECT_BINARY_DIR}/docs/api)
configure_file(${PROJECT_SOURCE_DIR}/docs/Doxyfile.in ${PROJECT_BINARY_DIR}/docs/Doxyfile @ONLY)

if(LDM_DOXYGEN)
  add_custom_target(docs
    COMMAND ${LDM_DOXYGEN} ${PROJECT_BINARY_DIR}/docs/Doxyfile
    COMMAND ${CMAKE_COMMAND} -E echo "ldm: API reference in ${LDM_DOCS_DIR}/html/index.html"
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}/docs
    COMMENT "Doxygen: the API reference"
    VERBATIM)
  set(_ldm_api_docs_command ${LDM_DOXYGEN} ${PROJECT_BINARY_DIR}/docs/Doxyfile)
else()
  set(_ldm_doxygen_missing
    "doxygen not found: install it (Debian: apt-get install doxygen) and configure again")
  add_custom_target(docs
    COMMAND ${CMAKE_COMMAND} -E echo "ldm: ${_ldm_doxygen_missing}"
    COMMAND ${CMAKE_COMMAND} -E false
    VERBATIM)
  file(WRITE ${PROJECT_BINARY_DIR}/docs/doxygen_missing.cmake
    "message(FATAL_ERROR \"ldm: ${_ldm_doxygen_missing}\")\n")
  set(_ldm_api_docs_command ${CMAKE_COMMAND} -P ${PROJECT_BINARY_DIR}/docs/doxygen_missing.cmake)
endif()

if(LDM_BUILD_TESTS AND NOT LDM_TEST_SUBSET)
  add_test(NAME api_docs COMMAND ${_ldm_api_docs_command}
    WORKING_DIRECTORY ${PROJECT_BINARY_DIR}/docs)
  set_tests_properties(api_docs PROPERTIES LABELS "host;docs")
  # The check itself must be able to fail: the same settings on a header with two mistakes.
  if(LDM_DOXYGEN)
    add_test(NAME api_docs_catches_mistakes
      COMMAND ${CMAKE_COMMAND} -DDOXYGEN=${LDM_DOXYGEN}
        -DDOXYFILE=${PROJECT_BINARY_DIR}/docs/Doxyfile
        -DFIXTURE=${PROJECT_SOURCE_DIR}/tests/docs/undocumented.hpp
        -DWORK_DIR=${PROJECT_BINARY_DIR}/docs/catches_mistakes
        -P ${PROJECT_SOURCE_DIR}/tests/docs/api_docs_catches_mistakes.cmake)
    set_tests_properties(api_docs_catches_mistakes PROPERTIES LABELS "host;docs")
  endif()
endif()
