#pragma once
// Row-major GEMM on the host through the BLAS: C = alpha * op(A) * op(B) + beta * C.
//
// The BLAS is column-major; a row-major matrix is its transpose in column-major, so
// C^T = op(B)^T op(A)^T is one column-major call with A and B swapped. We declare the reference
// BLAS Fortran symbols ourselves, which every BLAS (OpenBLAS, MKL, BLIS, reference) exports,
// rather than depend on which cblas.h a system ships.

#include <type_traits>

#include "ldm/core/macros.hpp"
#include "ldm/core/space.hpp"

extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc);
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b, const int* ldb,
            const double* beta, double* c, const int* ldc);
}

namespace ldm::ops {

enum class Trans : bool { no = false, yes = true };

// C[M, N] = alpha * op(A)[M, K] * op(B)[K, N] + beta * C on host pointers. Leading dimensions are
// row strides: for A stored untransposed lda >= K, transposed (A is K x M in memory) lda >= M;
// likewise for B; ldc >= N. Every backend takes this call form with its own space tag first,
// because the operands are raw pointers whose space the type system cannot see.
template <class T>
void gemm(host, Trans trans_a, Trans trans_b, int m, int n, int k, T alpha, const T* a, int lda,
          const T* b, int ldb, T beta, T* c, int ldc) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "ldm::ops::gemm: the host BLAS path takes float or double");
  if (m == 0 || n == 0) return;
  const char ta = trans_a == Trans::yes ? 'T' : 'N';
  const char tb = trans_b == Trans::yes ? 'T' : 'N';
  // Column-major view: C^T (n x m) = op(B)^T (n x k) * op(A)^T (k x m).
  if constexpr (std::is_same_v<T, float>)
    sgemm_(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
  else
    dgemm_(&tb, &ta, &n, &m, &k, &alpha, b, &ldb, a, &lda, &beta, c, &ldc);
}

// C_i = alpha op(A_i) op(B_i) + beta C_i for i < batch, the matrices `stride_*` elements apart.
template <class T>
void gemm_strided_batched(host space, Trans trans_a, Trans trans_b, int m, int n, int k, T alpha,
                          const T* a, int lda, long long stride_a, const T* b, int ldb,
                          long long stride_b, T beta, T* c, int ldc, long long stride_c,
                          int batch) {
  for (int i = 0; i < batch; ++i)
    gemm(space, trans_a, trans_b, m, n, k, alpha, a + i * stride_a, lda, b + i * stride_b, ldb,
         beta, c + i * stride_c, ldc);
}

}  // namespace ldm::ops
