#pragma once
// Training losses (MSE, L1, KL, softmax cross-entropy): the host path, and the CUDA one in .cu
// units.
#include "ldm/ops/loss/host.hpp"
#if defined(__CUDACC__)
#include "ldm/ops/loss/cuda.cuh"
#endif
