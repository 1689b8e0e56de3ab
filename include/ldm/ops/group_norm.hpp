#pragma once
// GroupNorm, and GroupNorm fused with SiLU: the host path, and the CUDA one in .cu units.
#include "ldm/ops/group_norm/host.hpp"
#if defined(__CUDACC__)
#include "ldm/ops/group_norm/cuda.cuh"
#endif
