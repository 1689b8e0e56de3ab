#pragma once
// SiLU and dropout: the host path, and the CUDA one in .cu units.
#include "ldm/ops/activation/host.hpp"
#if defined(__CUDACC__)
#include "ldm/ops/activation/cuda.cuh"
#endif
