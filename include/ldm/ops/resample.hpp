#pragma once
// Nearest-neighbour upsampling and channel concatenation: the host path, and the CUDA one in .cu
// units.
#include "ldm/ops/resample/host.hpp"
#if defined(__CUDACC__)
#include "ldm/ops/resample/cuda.cuh"
#endif
