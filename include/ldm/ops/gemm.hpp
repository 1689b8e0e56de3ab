#pragma once
// GEMM over any memory space: gemm(space, trans_a, trans_b, m, n, k, alpha, a, [lda,] b, [ldb,]
// beta, c[, ldc]). The host path is the BLAS (gemm/host.hpp); a .cu unit adds cuBLAS
// (gemm/cuda.cuh). Ops call it with their tensors' space, so one body serves every backend.
#include "ldm/ops/gemm/host.hpp"

#if defined(__CUDACC__)
#include "ldm/ops/gemm/cuda.cuh"
#endif

namespace ldm::ops {

// Packed operands: the leading dimensions follow from the shapes. Alpha and beta are the
// backend's scalar type (float for bf16 operands, which accumulate in float).
template <class Space, class Scalar, class TA, class TC>
void gemm(Space space, Trans trans_a, Trans trans_b, int m, int n, int k, Scalar alpha, const TA* a,
          const TA* b, Scalar beta, TC* c) {
  gemm(space, trans_a, trans_b, m, n, k, alpha, a, trans_a == Trans::yes ? m : k, b,
       trans_b == Trans::yes ? k : n, beta, c, n);
}

}  // namespace ldm::ops
