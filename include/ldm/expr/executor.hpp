#pragma once
// executor<Space> decides where and in which order indices run. Each space specialises it: the
// host one in host_executor.hpp, the CUDA one in cuda_executor.cuh, which .cu units get here.

namespace ldm::expr {
template <class Space>
struct executor;
}

#if defined(__CUDACC__)
#include "ldm/expr/cuda_executor.cuh"
#endif
