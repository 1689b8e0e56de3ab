#pragma once
// Multi-head scaled dot-product attention: the host path, and in a .cu unit cuBLAS and the row
// softmax kernels beside it.
#include "ldm/ops/attention/host.hpp"

#if defined(__CUDACC__)
#include "ldm/ops/attention/cuda.cuh"
#endif
