#pragma once
// Conv2d: the host im2col + BLAS path, and in a .cu unit the im2col + cuBLAS path beside it.
#include "ldm/ops/conv2d/host.hpp"

#if defined(__CUDACC__)
#include "ldm/ops/conv2d/cuda.cuh"
#endif
