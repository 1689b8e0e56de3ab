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
     -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_BUILD_TYPE=Release -DREADME_PROGRAM=${README_PROGRAM})
step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
step(${WORK_DIR}/build/consumer)
# The README's training program, built outside ldm's tree, answers --help with its flags.
execute_process(COMMAND ${WORK_DIR}/build/train_rgb64 --help OUTPUT_VARIABLE help
                RESULT_VARIABLE result)
if(NOT result EQUAL 0 OR NOT help MATCHES "--batch N +images per step: a multiple of 8")
  message(FATAL_ERROR "install_consumer: train_rgb64 --help gave ${result}:\n${help}")
endif()
