#pragma once
// One tap's term of LPIPS and its gradient on the device: the host functions of lpips_layer.hpp
// over cuda views, in double as on the host.
//
// One warp per pixel: its lanes take the channels in turns (coalesced reads of a pixel's feature
// vector) and combine their sums with a fixed shuffle tree, which lane 0 broadcasts, so every lane
// scales by the same norm. Forward leaves one partial per pixel, summed per sample by
// sample_sums; backward writes each pixel's own gradient elements. No atomics: every run gives the
// same bits.

#include "ldm/core/buffer.hpp"
#include "ldm/core/cuda/check.cuh"
#include "ldm/core/cuda/device.cuh"
#include "ldm/core/cuda/memory.cuh"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/train/lpips_layer.hpp"
#include "ldm/train/sample_sums.hpp"

namespace ldm::train::detail {

inline constexpr int kLpipsWarp = 32;
inline constexpr int kLpipsThreads = 256;  // 8 pixels per block

// The sum of v over the warp, the same value in every lane.
__device__ inline double lpips_warp_sum(double v) {
  for (int offset = kLpipsWarp / 2; offset > 0; offset /= 2)
    v += __shfl_down_sync(0xffffffffu, v, offset);
  return __shfl_sync(0xffffffffu, v, 0);
}

// Where one pixel's feature vectors are: features holds the N reconstructions, then the N
// targets, each of `pixels` pixels of C channels.
template <class T, index_t C>
struct LpipsPixel {
  const T* x;  // the reconstruction's
  const T* y;  // the target's
  double xx, yy;

  __device__ LpipsPixel(const T* features, index_t samples, index_t pixels, index_t n,
                        index_t pixel, int lane)
      : x(features + (n * pixels + pixel) * C), y(features + ((samples + n) * pixels + pixel) * C) {
    double sx = 0, sy = 0;
    for (index_t c = lane; c < C; c += kLpipsWarp) {
      sx += double(x[c]) * double(x[c]);
      sy += double(y[c]) * double(y[c]);
    }
    xx = lpips_warp_sum(sx);
    yy = lpips_warp_sum(sy);
  }
};

// partial[n * pixels + pixel] = sum_c lin[c] (x_c / (|x| + eps) - y_c / (|y| + eps))^2.
template <class T, index_t C>
__global__ void __launch_bounds__(kLpipsThreads)
    lpips_layer_forward_kernel(const T* features, const T* lin, index_t samples, index_t pixels,
                               double* partial) {
  const index_t warp = (index_t(blockIdx.x) * kLpipsThreads + threadIdx.x) / kLpipsWarp;
  const int lane = int(threadIdx.x % kLpipsWarp);
  // The whole warp leaves together, so the shuffles below always see all 32 lanes.
  if (warp >= samples * pixels) return;
  const LpipsPixel<T, C> p(features, samples, pixels, warp / pixels, warp % pixels, lane);
  const double rx = 1 / (::sqrt(p.xx) + kLpipsEps), ry = 1 / (::sqrt(p.yy) + kLpipsEps);
  double s = 0;
  for (index_t c = lane; c < C; c += kLpipsWarp) {
    const double diff = double(p.x[c]) * rx - double(p.y[c]) * ry;
    s += double(lin[c]) * diff * diff;
  }
  s = lpips_warp_sum(s);
  if (lane == 0) partial[warp] = s;
}

// grad += the tap term's gradient at the reconstruction's features (see lpips_layer_backward in
// lpips_layer.hpp for the formula).
template <class T, index_t C>
__global__ void __launch_bounds__(kLpipsThreads)
    lpips_layer_backward_kernel(const T* features, const T* lin, const T* upstream, index_t samples,
                                index_t pixels, T* grad) {
  const index_t warp = (index_t(blockIdx.x) * kLpipsThreads + threadIdx.x) / kLpipsWarp;
  const int lane = int(threadIdx.x % kLpipsWarp);
  if (warp >= samples * pixels) return;
  const index_t n = warp / pixels;
  const LpipsPixel<T, C> p(features, samples, pixels, n, warp % pixels, lane);
  const double scale = 2 * double(upstream[n]) / double(pixels);
  const double norm = ::sqrt(p.xx);
  const double rx = 1 / (norm + kLpipsEps), ry = 1 / (::sqrt(p.yy) + kLpipsEps);
  auto a = [&](index_t c) {
    return scale * double(lin[c]) * (double(p.x[c]) * rx - double(p.y[c]) * ry);
  };
  double dot = 0;
  for (index_t c = lane; c < C; c += kLpipsWarp)
    dot += a(c) * double(p.x[c]);
  dot = lpips_warp_sum(dot);
  const double radial = norm > 0 ? dot * rx * rx / norm : 0.0;
  T* g = grad + warp * C;
  for (index_t c = lane; c < C; c += kLpipsWarp)
    g[c] = T(double(g[c]) + a(c) * rx - double(p.x[c]) * radial);
}

inline unsigned lpips_blocks(index_t warps) {
  constexpr index_t per_block = kLpipsThreads / kLpipsWarp;
  return unsigned((warps + per_block - 1) / per_block);
}

template <class T>
struct LpipsDistanceFinish {
  T* distance;
  double pixels;
  __device__ void operator()(index_t n, double total) const {
    distance[n] = T(double(distance[n]) + total / pixels);
  }
};

// One tap's term added to distance[n], as the host's lpips_layer_forward.
template <class T, index_t B, index_t H, index_t W, index_t C, index_t N>
void lpips_layer_forward(View<const T, Shape<B, H, W, C>, cuda> features,
                         View<const T, Shape<C>, cuda> lin, View<T, Shape<N>, cuda> distance) {
  static_assert(B == 2 * N);
  constexpr index_t pixels = H * W;
  Buffer<double, cuda> partial(std::size_t(N * pixels));
  lpips_layer_forward_kernel<T, C>
      <<<lpips_blocks(N * pixels), kLpipsThreads, 0, cuda_device::stream()>>>(
          features.data(), lin.data(), N, pixels, partial.data());
  LDM_CUDA_CHECK(cudaGetLastError());
  sample_sums(cuda{}, partial.data(), N, pixels,
              LpipsDistanceFinish<T>{distance.data(), double(pixels)});
}

// grad += d(sum_n upstream[n] * term[n]) / d(reconstruction's features), as the host's
// lpips_layer_backward.
template <class T, index_t B, index_t H, index_t W, index_t C, index_t N>
void lpips_layer_backward(View<const T, Shape<B, H, W, C>, cuda> features,
                          View<const T, Shape<C>, cuda> lin, View<const T, Shape<N>, cuda> upstream,
                          View<T, Shape<N, H, W, C>, cuda> grad) {
  static_assert(B == 2 * N);
  constexpr index_t pixels = H * W;
  lpips_layer_backward_kernel<T, C>
      <<<lpips_blocks(N * pixels), kLpipsThreads, 0, cuda_device::stream()>>>(
          features.data(), lin.data(), upstream.data(), N, pixels, grad.data());
  LDM_CUDA_CHECK(cudaGetLastError());
}

}  // namespace ldm::train::detail
