# Runs an MPI job in which one rank fails and checks that the whole job ends: a non-zero exit,
# within SECONDS, with EXPECT (a regular expression) in its output. A hang is stopped at
# 10 * SECONDS and reported as one.
#   cmake -DCOMMAND="mpirun;-np;2;prog;mode" -DSECONDS=10 -DEXPECT=regex -P expect_job_ends.cmake
string(TIMESTAMP start "%s")
execute_process(COMMAND ${COMMAND} RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out
  TIMEOUT ${SECONDS}0)
string(TIMESTAMP end "%s")
math(EXPR elapsed "${end} - ${start}")
message("${out}")
message(STATUS "exit status ${status} after about ${elapsed} s")
if(status STREQUAL "0")
  message(FATAL_ERROR "the job exited 0: a failed rank must end it with a non-zero status")
endif()
if(NOT status MATCHES "^[0-9]+$")
  message(FATAL_ERROR "the job did not end by itself (${status}): a failed rank left it hanging")
endif()
if(elapsed GREATER SECONDS)
  message(FATAL_ERROR "the job took ${elapsed} s to end, more than ${SECONDS} s")
endif()
if(NOT out MATCHES "${EXPECT}")
  message(FATAL_ERROR "the output does not match '${EXPECT}'")
endif()
