# Installs the configured ldm build into a prefix inside the build tree, then configures, builds and
# runs tests/consumer against that prefix. Any failing step fails the test.
function(step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE result)
  if(NOT result EQUAL 0)
    message(FATAL_ERROR "install_consumer: '${ARGN}' failed with ${result}")
  endif()
endfunction()

set(prefix ${WORK_DIR}/prefix)
file(REMOVE_RECURSE ${WORK_DIR})
step(${CMAKE_COMMAND} --install ${LDM_BUILD_DIR} --prefix ${prefix})
if(NOT EXISTS ${prefix}/share/doc/ldm/LICENSE)
  message(FATAL_ERROR "install_consumer: the install has no share/doc/ldm/LICENSE")
endif()
step(${CMAKE_COMMAND} -S ${CONSUMER_SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
     -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release)
step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
step(${WORK_DIR}/build/consumer)
