#pragma once
// GEMM: the host BLAS path, and in a .cu unit cuBLAS beside it.
#include "ldm/ops/gemm/host.hpp"

#if defined(__CUDACC__)
#include "ldm/ops/gemm/cuda.cuh"
#endif
