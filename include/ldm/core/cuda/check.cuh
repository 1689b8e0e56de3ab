#pragma once
// One macro checks every CUDA runtime and library call: LDM_CUDA_CHECK(cudaMalloc(&p, n)) throws
// ldm::Error naming the call, the file and line, and the library's own name for the status.

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "ldm/core/error.hpp"

namespace ldm::cuda_detail {

// What check needs of each library's status type: its success value and its two descriptions.
template <class Status>
struct StatusApi;

template <>
struct StatusApi<cudaError_t> {
  static constexpr cudaError_t success = cudaSuccess;
  static constexpr auto name = cudaGetErrorName;
  static constexpr auto text = cudaGetErrorString;
};

template <>
struct StatusApi<cublasStatus_t> {
  static constexpr cublasStatus_t success = CUBLAS_STATUS_SUCCESS;
  static constexpr auto name = cublasGetStatusName;
  static constexpr auto text = cublasGetStatusString;
};

template <class Status>
void check(Status status, const char* call, const char* file, int line) {
  using Api = StatusApi<Status>;
  if (status != Api::success)
    fail("CUDA call `", call, "` at ", file, ":", line, " failed: ", Api::text(status), " (",
         Api::name(status), ")");
}

}  // namespace ldm::cuda_detail

#define LDM_CUDA_CHECK(call) ::ldm::cuda_detail::check((call), #call, __FILE__, __LINE__)
