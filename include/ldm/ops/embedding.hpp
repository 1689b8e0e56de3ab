#pragma once
// Sinusoidal timestep embedding: the host path, and the CUDA one in .cu units.
#include "ldm/ops/embedding/host.hpp"
#if defined(__CUDACC__)
#include "ldm/ops/embedding/cuda.cuh"
#endif
