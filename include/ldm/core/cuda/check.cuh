#pragma once
// One macro checks every CUDA runtime and library call: LDM_CUDA_CHECK(cudaMalloc(&p, n)) throws
// ldm::Error naming the call, the file and line, and the library's own name for the status.

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "ldm/core/error.hpp"

namespace ldm::cuda_detail {

inline const char* status_name(cudaError_t status) {
  return cudaGetErrorName(status);
}
inline const char* status_text(cudaError_t status) {
  return cudaGetErrorString(status);
}
inline bool failed(cudaError_t status) {
  return status != cudaSuccess;
}

inline const char* status_name(cublasStatus_t status) {
  return cublasGetStatusName(status);
}
inline const char* status_text(cublasStatus_t status) {
  return cublasGetStatusString(status);
}
inline bool failed(cublasStatus_t status) {
  return status != CUBLAS_STATUS_SUCCESS;
}

template <class Status>
void check(Status status, const char* call, const char* file, int line) {
  if (failed(status))
    fail("CUDA call `", call, "` at ", file, ":", line, " failed: ", status_text(status), " (",
         status_name(status), ")");
}

}  // namespace ldm::cuda_detail

#define LDM_CUDA_CHECK(call) ::ldm::cuda_detail::check((call), #call, __FILE__, __LINE__)
