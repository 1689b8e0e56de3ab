# ldm_add_version_test(NAME program [args...]): a test that `program args... --version` prints
# exactly "<program> (ldm <project version>)".
function(ldm_add_version_test name program)
  string(REPLACE "." "\\." version "${PROJECT_VERSION}")
  add_test(NAME ${name} COMMAND ${program} ${ARGN} --version)
  set_tests_properties(${name} PROPERTIES LABELS "host;version"
    PASS_REGULAR_EXPRESSION "^${program} \\(ldm ${version}\\)\n$")
endfunction()
