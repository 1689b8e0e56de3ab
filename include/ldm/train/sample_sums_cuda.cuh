#pragma once
// sample_sums (sample_sums.hpp) on the device: one block per sample, each thread summing a fixed
// stride of the partials, then CUB's block tree: the same order on every run, so the result is
// reproducible (no atomics).

#include <cub/block/block_reduce.cuh>

#include "ldm/core/cuda/check.cuh"
#include "ldm/core/cuda/device.cuh"
#include "ldm/core/macros.hpp"
#include "ldm/core/space.hpp"

namespace ldm::train::detail {

inline constexpr int kSampleSumThreads = 256;

template <class Finish>
__global__ void __launch_bounds__(kSampleSumThreads)
    sample_sums_kernel(const double* partials, index_t count, Finish finish) {
  using Reduce = cub::BlockReduce<double, kSampleSumThreads>;
  __shared__ typename Reduce::TempStorage temp;
  const index_t n = blockIdx.x;
  const double* p = partials + n * count;
  double s = 0;
  for (index_t i = threadIdx.x; i < count; i += kSampleSumThreads)
    s += p[i];
  const double total = Reduce(temp).Sum(s);
  if (threadIdx.x == 0) finish(n, total);
}

// On ldm's stream; `finish` is a device functor taken by value.
template <class Finish>
void sample_sums(cuda, const double* partials, index_t samples, index_t count,
                 const Finish& finish) {
  if (samples <= 0) return;
  sample_sums_kernel<<<unsigned(samples), kSampleSumThreads, 0, cuda_device::stream()>>>(
      partials, count, finish);
  LDM_CUDA_CHECK(cudaGetLastError());
}

}  // namespace ldm::train::detail
