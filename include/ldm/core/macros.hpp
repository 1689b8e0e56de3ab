#pragma once
/// @file
/// The one marker for functions that run on both sides: empty in a plain C++ translation unit,
/// __host__ __device__ when nvcc compiles the unit, so host code never needs CUDA headers.

/// @cond
#if defined(__CUDACC__)
#define LDM_HD __host__ __device__
#else
#define LDM_HD
#endif
/// @endcond

#include <cstdint>

namespace ldm {
/// Linear element indices. 64-bit: a 64x256x256x128 activation already has 2^29 elements.
using index_t = std::int64_t;
}  // namespace ldm
