# Finds the BLAS for host GEMMs and sets LDM_BLAS_LIBRARIES.
#
# OpenBLAS built with OpenMP is preferred where installed (Debian: libopenblas-openmp-dev): the host
# executor's loops use OpenMP, and a pthreads OpenBLAS beside the OpenMP runtime keeps two thread
# pools spinning against each other; bench_conv2d measured convolutions 5-50x slower that way on
# two cores. Any other BLAS found by FindBLAS works, just without that guarantee.
find_library(LDM_OPENBLAS_OPENMP NAMES openblas
  PATHS /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp NO_DEFAULT_PATH)
if(LDM_OPENBLAS_OPENMP)
  set(LDM_BLAS_LIBRARIES ${LDM_OPENBLAS_OPENMP})
else()
  find_package(BLAS REQUIRED)
  set(LDM_BLAS_LIBRARIES ${BLAS_LIBRARIES})
endif()
