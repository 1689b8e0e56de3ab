#pragma once
// The row softmax of attention and its backward on the device, one warp per row (the rest of
// attention is written once, in ops/attention.hpp), with the host's arithmetic
// (attention/host.hpp): the maximum subtracted, exponentials stored, their sum in double, then
// one multiply by the rounded reciprocal.

#include "ldm/core/cuda/check.cuh"
#include "ldm/core/cuda/device.cuh"
#include "ldm/core/macros.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/math.hpp"

namespace ldm::ops {

namespace detail::attention_cuda {

inline constexpr int kWarp = 32;
inline constexpr int kRowsPerBlock = 8;  // one warp per row, 256 threads

template <class T>
__device__ T warp_max(T x) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    x = math::max(x, __shfl_xor_sync(0xffffffffu, x, offset));
  return x;
}

// The butterfly leaves every lane with the same total, in an order fixed by the lane numbers.
__device__ inline double warp_sum(double x) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

// Each lane rewrites only its own columns.
template <class T>
__global__ void __launch_bounds__(kWarp* kRowsPerBlock)
    softmax_rows_kernel(T* scores, index_t rows, index_t length) {
  const index_t row = index_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = int(threadIdx.x % kWarp);
  if (row >= rows) return;  // a whole warp leaves together, so the shuffles below stay full
  T* r = scores + row * length;
  T top = r[0];
  for (index_t j = lane; j < length; j += kWarp)
    top = math::max(top, r[j]);
  top = warp_max(top);
  double total = 0;
  for (index_t j = lane; j < length; j += kWarp) {
    const T e = math::exp(r[j] - top);
    r[j] = e;
    total += double(e);
  }
  const T inverse = T(1 / warp_sum(total));
  for (index_t j = lane; j < length; j += kWarp)
    r[j] *= inverse;
}

template <class T>
__global__ void __launch_bounds__(kWarp* kRowsPerBlock)
    softmax_backward_rows_kernel(const T* probs, T* dscores, index_t rows, index_t length) {
  const index_t row = index_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = int(threadIdx.x % kWarp);
  if (row >= rows) return;
  const T* p = probs + row * length;
  T* d = dscores + row * length;
  double weighted = 0;
  for (index_t j = lane; j < length; j += kWarp)
    weighted += double(p[j]) * double(d[j]);
  const T w = T(warp_sum(weighted));
  for (index_t j = lane; j < length; j += kWarp)
    d[j] = p[j] * (d[j] - w);
}

inline unsigned row_blocks(index_t rows) {
  return unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

}  // namespace detail::attention_cuda

template <class T>
void softmax_rows(ldm::cuda, T* scores, index_t count, index_t length) {
  namespace ac = detail::attention_cuda;
  ac::softmax_rows_kernel<<<ac::row_blocks(count), ac::kWarp * ac::kRowsPerBlock, 0,
                            cuda_device::stream()>>>(scores, count, length);
  LDM_CUDA_CHECK(cudaGetLastError());
}

template <class T>
void softmax_backward_rows(ldm::cuda, const T* probs, T* dscores, index_t count, index_t length) {
  namespace ac = detail::attention_cuda;
  ac::softmax_backward_rows_kernel<<<ac::row_blocks(count), ac::kWarp * ac::kRowsPerBlock, 0,
                                     cuda_device::stream()>>>(probs, dscores, count, length);
  LDM_CUDA_CHECK(cudaGetLastError());
}

}  // namespace ldm::ops
