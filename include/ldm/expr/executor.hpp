#pragma once
// executor<Space> decides where and in which order indices run. Each space specialises it:
// the host one here, the CUDA one in ldm/expr/cuda_executor.cuh (only .cu units include it).

namespace ldm::expr {
template <class Space>
struct executor;
}
