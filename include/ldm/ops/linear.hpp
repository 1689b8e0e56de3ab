#pragma once
// Linear (fully connected) layers: the host path through ops::gemm, and in a .cu unit the cuBLAS
// path beside it.
#include "ldm/ops/linear/host.hpp"

#if defined(__CUDACC__)
#include "ldm/ops/linear/cuda.cuh"
#endif
