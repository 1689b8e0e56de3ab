#pragma once
// 2x2 max pooling and ReLU: the host path, and the CUDA one in .cu units.
#include "ldm/ops/pool/host.hpp"
#if defined(__CUDACC__)
#include "ldm/ops/pool/cuda.cuh"
#endif
