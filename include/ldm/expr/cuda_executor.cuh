#pragma once
// The CUDA executor: one kernel per assignment, grid-stride over the shared evaluator, on ldm's
// stream; reductions over everything through CUB. Only .cu units include this header.
//
// A block covers tiles of kBlock * kUnroll elements; thread t handles elements t, t + kBlock, ...
// of a tile, so each of its kUnroll independent evaluations is a coalesced warp access and their
// loads overlap. The grid is capped at a few waves and strides over the rest.

#include <thrust/iterator/counting_iterator.h>
#include <thrust/iterator/transform_iterator.h>
#include <cub/device/device_reduce.cuh>

#include "ldm/core/buffer.hpp"
#include "ldm/core/cuda/check.cuh"
#include "ldm/core/cuda/copy.cuh"
#include "ldm/core/cuda/device.cuh"
#include "ldm/core/cuda/memory.cuh"
#include "ldm/core/macros.hpp"
#include "ldm/expr/executor.hpp"

namespace ldm::expr {

namespace cuda_detail {

inline constexpr int kBlock = 256;
inline constexpr int kUnroll = 4;

template <class F>
__global__ void __launch_bounds__(kBlock) for_each_kernel(index_t n, F f) {
  constexpr index_t tile = index_t(kBlock) * kUnroll;
  for (index_t start = index_t(blockIdx.x) * tile; start < n; start += index_t(gridDim.x) * tile) {
    if (start + tile <= n) {
#pragma unroll
      for (int k = 0; k < kUnroll; ++k)
        f(start + k * kBlock + threadIdx.x);
    } else {
      for (index_t i = start + threadIdx.x; i < n; i += kBlock)
        f(i);
    }
  }
}

inline int grid_for(index_t n) {
  const index_t needed = (n + index_t(kBlock) * kUnroll - 1) / (index_t(kBlock) * kUnroll);
  const index_t cap = index_t(cuda_device::multiprocessor_count()) * 8;
  return int(needed < cap ? needed : cap);
}

// Adapts (index -> accumulator) to the iterator CUB reads.
template <class Acc, class Read>
struct IndexToValue {
  Read read;
  LDM_HD Acc operator()(index_t i) const { return read(i); }
};

}  // namespace cuda_detail

template <>
struct executor<cuda> {
  template <class F>
  static void for_each(index_t n, const F& f) {
    if (n <= 0) return;
    cuda_detail::for_each_kernel<<<cuda_detail::grid_for(n), cuda_detail::kBlock, 0,
                                   cuda_device::stream()>>>(n, f);
    LDM_CUDA_CHECK(cudaGetLastError());
  }

  // Returns the reduction to the host, so it waits for the stream. CUB's reduction is
  // deterministic run to run on one GPU.
  template <class Acc, class Read, class Combine>
  static Acc reduce(index_t n, Acc identity, const Read& read, const Combine& combine) {
    if (n <= 0) return identity;
    auto values = thrust::make_transform_iterator(thrust::counting_iterator<index_t>(0),
                                                  cuda_detail::IndexToValue<Acc, Read>{read});
    Buffer<Acc, cuda> result(1);
    std::size_t temp_bytes = 0;
    LDM_CUDA_CHECK(cub::DeviceReduce::Reduce(nullptr, temp_bytes, values, result.data(), n, combine,
                                             identity, cuda_device::stream()));
    // At least one byte: CUB reads a null workspace as a request for its size.
    Buffer<unsigned char, cuda> temp(temp_bytes > 0 ? temp_bytes : 1);
    LDM_CUDA_CHECK(cub::DeviceReduce::Reduce(temp.data(), temp_bytes, values, result.data(), n,
                                             combine, identity, cuda_device::stream()));
    Acc total = identity;
    copy_elements<cuda, host>(result.data(), &total, 1);
    return total;
  }
};

}  // namespace ldm::expr
