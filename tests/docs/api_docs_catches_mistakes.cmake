# Runs Doxygen with the API reference's settings on undocumented.hpp alone and checks that it
# fails and names both mistakes there, so the api_docs check cannot pass because its settings
# stopped looking. -DDOXYGEN=... -DDOXYFILE=<the configured Doxyfile> -DFIXTURE=... -DWORK_DIR=...
file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
file(WRITE ${WORK_DIR}/Doxyfile "@INCLUDE = ${DOXYFILE}
INPUT = ${FIXTURE}
OUTPUT_DIRECTORY = ${WORK_DIR}
USE_MDFILE_AS_MAINPAGE =
")
execute_process(COMMAND ${DOXYGEN} ${WORK_DIR}/Doxyfile WORKING_DIRECTORY ${WORK_DIR}
                RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
set(messages "${out}${err}")
if(status EQUAL 0)
  message(FATAL_ERROR "doxygen passed a header with an undocumented declaration:\n${messages}")
endif()
foreach(expected "undocumented_function.*is not documented"
                 "argument 'count' of command @param is not found")
  if(NOT messages MATCHES "${expected}")
    message(FATAL_ERROR "doxygen's messages lack '${expected}':\n${messages}")
  endif()
endforeach()
message(STATUS "doxygen refused both mistakes")
