#pragma once
// Everything a .cu translation unit may use: the host library (ldm.hpp) and the CUDA backend.
// A .cpp unit includes ldm/ldm.hpp only and never sees a CUDA header.

#include "ldm/ldm.hpp"

#include "ldm/core/cuda/check.cuh"
#include "ldm/core/cuda/copy.cuh"
#include "ldm/core/cuda/device.cuh"
#include "ldm/core/cuda/memory.cuh"
#include "ldm/expr/cuda_executor.cuh"
