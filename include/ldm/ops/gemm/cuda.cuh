#pragma once
// Row-major GEMM on the device through cuBLAS: C = alpha * op(A) * op(B) + beta * C, the host's
// contract and call form (gemm/host.hpp) with `ldm::cuda{}` as the space tag.
//
// cuBLAS is column-major, so, as on the host, C^T = op(B)^T op(A)^T is one call with A and B
// swapped. float and double run in their own precision: the handle keeps CUBLAS_DEFAULT_MATH, which
// never rounds float operands to TF32, so the device agrees with the host to float accuracy.
// bf16 operands (storage only) multiply exactly in float and accumulate in float
// (CUBLAS_COMPUTE_32F); C is float or bf16.

#include <type_traits>

#include <cublas_v2.h>
#include <library_types.h>

#include "ldm/core/cuda/check.cuh"
#include "ldm/core/cuda/device.cuh"
#include "ldm/core/dtype.hpp"
#include "ldm/core/space.hpp"
#include "ldm/ops/gemm/host.hpp"

namespace ldm::ops {

namespace detail {

// One handle per process, bound to ldm's stream. Never destroyed: work may still be queued, and
// the driver may be unloading, when static destructors run.
inline cublasHandle_t cublas_handle() {
  static cublasHandle_t handle = [] {
    cublasHandle_t created = nullptr;
    LDM_CUDA_CHECK(cublasCreate(&created));
    LDM_CUDA_CHECK(cublasSetStream(created, cuda_device::stream()));
    LDM_CUDA_CHECK(cublasSetMathMode(created, CUBLAS_DEFAULT_MATH));
    return created;
  }();
  return handle;
}

inline cublasOperation_t cublas_op(Trans t) {
  return t == Trans::yes ? CUBLAS_OP_T : CUBLAS_OP_N;
}

// bf16 A and B, C of type TC (float or bf16), float scalars.
template <class TC>
void gemm_bf16(Trans trans_a, Trans trans_b, int m, int n, int k, float alpha, const bf16* a,
               int lda, const bf16* b, int ldb, float beta, TC* c, int ldc) {
  static_assert(std::is_same_v<TC, float> || std::is_same_v<TC, bf16>,
                "ldm::ops::gemm: bf16 operands write float or bf16");
  if (m == 0 || n == 0) return;
  constexpr cudaDataType_t c_type = std::is_same_v<TC, float> ? CUDA_R_32F : CUDA_R_16BF;
  LDM_CUDA_CHECK(cublasGemmEx(cublas_handle(), cublas_op(trans_b), cublas_op(trans_a), n, m, k,
                              &alpha, b, CUDA_R_16BF, ldb, a, CUDA_R_16BF, lda, &beta, c, c_type,
                              ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace detail

// C[M, N] = alpha * op(A)[M, K] * op(B)[K, N] + beta * C on device pointers; leading dimensions
// are row strides, as on the host. With beta = 0, C is not read (NaN in C does not propagate).
template <class T>
void gemm(ldm::cuda, Trans trans_a, Trans trans_b, int m, int n, int k, T alpha, const T* a,
          int lda, const T* b, int ldb, T beta, T* c, int ldc) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "ldm::ops::gemm: the cuBLAS path takes float, double, or bf16 operands");
  if (m == 0 || n == 0) return;
  const cublasOperation_t ta = detail::cublas_op(trans_a), tb = detail::cublas_op(trans_b);
  if constexpr (std::is_same_v<T, float>)
    LDM_CUDA_CHECK(cublasSgemm(detail::cublas_handle(), tb, ta, n, m, k, &alpha, b, ldb, a, lda,
                               &beta, c, ldc));
  else
    LDM_CUDA_CHECK(cublasDgemm(detail::cublas_handle(), tb, ta, n, m, k, &alpha, b, ldb, a, lda,
                               &beta, c, ldc));
}

inline void gemm(ldm::cuda, Trans trans_a, Trans trans_b, int m, int n, int k, float alpha,
                 const bf16* a, int lda, const bf16* b, int ldb, float beta, float* c, int ldc) {
  detail::gemm_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

inline void gemm(ldm::cuda, Trans trans_a, Trans trans_b, int m, int n, int k, float alpha,
                 const bf16* a, int lda, const bf16* b, int ldb, float beta, bf16* c, int ldc) {
  detail::gemm_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// C_i = alpha op(A_i) op(B_i) + beta C_i for i < batch, the matrices `stride_*` elements apart: one
// cuBLAS call.
template <class T>
void gemm_strided_batched(ldm::cuda, Trans trans_a, Trans trans_b, int m, int n, int k, T alpha,
                          const T* a, int lda, long long stride_a, const T* b, int ldb,
                          long long stride_b, T beta, T* c, int ldc, long long stride_c,
                          int batch) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "ldm::ops::gemm_strided_batched: the cuBLAS path takes float or double");
  const cublasOperation_t ta = detail::cublas_op(trans_a), tb = detail::cublas_op(trans_b);
  if constexpr (std::is_same_v<T, float>)
    LDM_CUDA_CHECK(cublasSgemmStridedBatched(detail::cublas_handle(), tb, ta, n, m, k, &alpha, b,
                                             ldb, stride_b, a, lda, stride_a, &beta, c, ldc,
                                             stride_c, batch));
  else
    LDM_CUDA_CHECK(cublasDgemmStridedBatched(detail::cublas_handle(), tb, ta, n, m, k, &alpha, b,
                                             ldb, stride_b, a, lda, stride_a, &beta, c, ldc,
                                             stride_c, batch));
}

}  // namespace ldm::ops
