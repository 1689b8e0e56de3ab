#pragma once
// GroupNorm and GroupNorm + SiLU over NHWC on the device (the contract: ops/group_norm.hpp).
//
// Everything past the loads works in double, as the host reference does, and rounds once on
// store. No float atomics anywhere, so results are the same run to run:
// - forward: one block per (sample, group) reduces the group's sum, then its squared deviations
//   from the mean (two passes keep the variance exact when the mean dwarfs the spread), with
//   CUB's block reduction, whose order is fixed for a block size; the same block writes y.
// - backward: with dz the gradient reaching z = xhat * gamma + beta, per (sample, channel) sums
//   A = sum over pixels of dz * xhat and B = sum of dz are reduced in a fixed order; from them
//   each (sample, group) gets the two group means dx needs, dx is one elementwise pass, and
//   dgamma and dbeta add A and B over the batch in sample order.
// The fused SiLU recomputes z from x in both backward passes instead of storing it.

#include <cstddef>
#include <type_traits>

#include <cub/block/block_reduce.cuh>

#include "ldm/core/buffer.hpp"
#include "ldm/core/cuda/check.cuh"
#include "ldm/core/cuda/device.cuh"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/cuda_executor.cuh"
#include "ldm/expr/math.hpp"
#include "ldm/ops/group_norm/activation.hpp"

namespace ldm::ops {

namespace detail::group_norm_cuda {

inline constexpr int kStatsBlock = 256;
// Channel sums: a warp's lanes take consecutive channels (coalesced loads), kRows warps split the
// pixels.
inline constexpr int kChannelTile = 32;
inline constexpr int kRows = 8;

template <NormActivation Act, index_t Groups, index_t Pixels, index_t C, class T>
__global__ void __launch_bounds__(kStatsBlock)
    forward_kernel(const T* x, const T* gamma, const T* beta, double eps, T* y, T* mean, T* rstd) {
  constexpr index_t group_channels = C / Groups, count = Pixels * group_channels;
  using Reduce = cub::BlockReduce<double, kStatsBlock>;
  __shared__ typename Reduce::TempStorage temp;
  __shared__ double group_mean, group_rstd;

  // Element j of the group is pixel j / group_channels, channel g * group_channels + j % ...
  const index_t n = blockIdx.x / Groups, g = blockIdx.x % Groups;
  const index_t first = n * Pixels * C + g * group_channels;
  auto at = [=](index_t j) { return first + j / group_channels * C + j % group_channels; };

  double total = 0;
  for (index_t j = threadIdx.x; j < count; j += kStatsBlock)
    total += double(x[at(j)]);
  total = Reduce(temp).Sum(total);
  if (threadIdx.x == 0) group_mean = total / double(count);
  __syncthreads();  // also lets the second reduction reuse temp
  const double mu = group_mean;

  double squares = 0;
  for (index_t j = threadIdx.x; j < count; j += kStatsBlock) {
    const double d = double(x[at(j)]) - mu;
    squares += d * d;
  }
  squares = Reduce(temp).Sum(squares);
  if (threadIdx.x == 0) {
    group_rstd = 1 / math::sqrt(squares / double(count) + eps);
    mean[blockIdx.x] = T(mu);
    rstd[blockIdx.x] = T(group_rstd);
  }
  __syncthreads();
  const double inv_std = group_rstd;

  for (index_t j = threadIdx.x; j < count; j += kStatsBlock) {
    const index_t i = at(j), c = g * group_channels + j % group_channels;
    const double xhat = (double(x[i]) - mu) * inv_std;
    y[i] = T(norm_activation<Act>(xhat * double(gamma[c]) + double(beta[c])));
  }
}

// a[n * C + c] = sum over pixels of dz * xhat, b[n * C + c] = sum of dz. Grid: (channel tiles,
// samples); each thread sums every kRows-th pixel of one channel, then the kRows partial sums are
// added in row order.
template <NormActivation Act, index_t Groups, index_t Pixels, index_t C, class T>
__global__ void __launch_bounds__(kChannelTile* kRows)
    channel_sums_kernel(const T* x, const T* gamma, const T* beta, const T* mean, const T* rstd,
                        const T* dy, double* a, double* b) {
  constexpr index_t group_channels = C / Groups;
  __shared__ double partial_a[kRows][kChannelTile], partial_b[kRows][kChannelTile];
  const index_t n = blockIdx.y, c = index_t(blockIdx.x) * kChannelTile + threadIdx.x;
  double sum_a = 0, sum_b = 0;
  if (c < C) {
    const double mu = double(mean[n * Groups + c / group_channels]);
    const double inv_std = double(rstd[n * Groups + c / group_channels]);
    const double scale = double(gamma[c]);
    const double shift = beta ? double(beta[c]) : 0.0;
    for (index_t p = threadIdx.y; p < Pixels; p += kRows) {
      const index_t i = (n * Pixels + p) * C + c;
      const double xhat = (double(x[i]) - mu) * inv_std;
      const double dz = norm_activation_grad<Act>(xhat * scale + shift, double(dy[i]));
      sum_a += dz * xhat;
      sum_b += dz;
    }
  }
  partial_a[threadIdx.y][threadIdx.x] = sum_a;
  partial_b[threadIdx.y][threadIdx.x] = sum_b;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    for (int r = 1; r < kRows; ++r) {
      sum_a += partial_a[r][threadIdx.x];
      sum_b += partial_b[r][threadIdx.x];
    }
    a[n * C + c] = sum_a;
    b[n * C + c] = sum_b;
  }
}

}  // namespace detail::group_norm_cuda

namespace detail {

template <NormActivation Act, index_t Groups, class T, index_t N, index_t H, index_t W, index_t C>
void group_norm_forward(View<const T, Shape<N, H, W, C>, cuda> x,
                        View<const T, Shape<C>, cuda> gamma, View<const T, Shape<C>, cuda> beta,
                        T eps, View<T, Shape<N, H, W, C>, cuda> y,
                        View<T, Shape<N, Groups>, cuda> mean,
                        View<T, Shape<N, Groups>, cuda> rstd) {
  static_assert(valid_group_count<Groups, C>());
  group_norm_cuda::forward_kernel<Act, Groups, H * W, C>
      <<<unsigned(N * Groups), group_norm_cuda::kStatsBlock, 0, cuda_device::stream()>>>(
          x.data(), gamma.data(), beta.data(), double(eps), y.data(), mean.data(), rstd.data());
  LDM_CUDA_CHECK(cudaGetLastError());
}

// beta is read only with an activation (to recompute z); it may be null without.
template <NormActivation Act, index_t Groups, class T, index_t N, index_t H, index_t W, index_t C>
void group_norm_backward(View<const T, Shape<N, H, W, C>, cuda> x,
                         View<const T, Shape<C>, cuda> gamma, const std::type_identity_t<T>* beta,
                         View<const T, Shape<N, Groups>, cuda> mean,
                         View<const T, Shape<N, Groups>, cuda> rstd,
                         View<const T, Shape<N, H, W, C>, cuda> dy,
                         View<T, Shape<N, H, W, C>, cuda> dx, View<T, Shape<C>, cuda> dgamma,
                         View<T, Shape<C>, cuda> dbeta) {
  namespace gn = group_norm_cuda;
  static_assert(valid_group_count<Groups, C>());
  constexpr index_t pixels = H * W, group_channels = C / Groups;
  constexpr double count = double(pixels * group_channels);

  Buffer<double, cuda> sums(std::size_t(2 * N * C));
  double* a = sums.data();
  double* b = a + N * C;
  const dim3 tiles(unsigned((C + gn::kChannelTile - 1) / gn::kChannelTile), unsigned(N));
  gn::channel_sums_kernel<Act, Groups, pixels, C>
      <<<tiles, dim3(gn::kChannelTile, gn::kRows), 0, cuda_device::stream()>>>(
          x.data(), gamma.data(), beta, mean.data(), rstd.data(), dy.data(), a, b);
  LDM_CUDA_CHECK(cudaGetLastError());

  // Per (sample, group): the means over the group of dxhat = dz * gamma and of dxhat * xhat.
  Buffer<double, cuda> terms(std::size_t(2 * N * Groups));
  double* mean_dxhat = terms.data();
  double* mean_dxhat_xhat = mean_dxhat + N * Groups;
  const T* g = gamma.data();
  expr::executor<cuda>::for_each(N * Groups, [=] __device__(index_t ng) {
    const index_t n = ng / Groups, first = ng % Groups * group_channels;
    double sum_dxhat = 0, sum_dxhat_xhat = 0;
    for (index_t c = first; c < first + group_channels; ++c) {
      sum_dxhat += double(g[c]) * b[n * C + c];
      sum_dxhat_xhat += double(g[c]) * a[n * C + c];
    }
    mean_dxhat[ng] = sum_dxhat / count;
    mean_dxhat_xhat[ng] = sum_dxhat_xhat / count;
  });

  // Reads index i of x and dy before writing index i of dx, so dx may alias either.
  const T* xp = x.data();
  const T* dyp = dy.data();
  const T* mp = mean.data();
  const T* rp = rstd.data();
  T* dxp = dx.data();
  expr::executor<cuda>::for_each(N * pixels * C, [=] __device__(index_t i) {
    const index_t c = i % C, ng = i / (pixels * C) * Groups + c / group_channels;
    const double inv_std = double(rp[ng]);
    const double xhat = (double(xp[i]) - double(mp[ng])) * inv_std;
    const double scale = double(g[c]);
    const double shift = beta ? double(beta[c]) : 0.0;
    const double dz = norm_activation_grad<Act>(xhat * scale + shift, double(dyp[i]));
    dxp[i] = T(inv_std * (dz * scale - mean_dxhat[ng] - xhat * mean_dxhat_xhat[ng]));
  });

  T* dg = dgamma.data();
  T* db = dbeta.data();
  expr::executor<cuda>::for_each(C, [=] __device__(index_t c) {
    double sum_a = 0, sum_b = 0;
    for (index_t n = 0; n < N; ++n) {
      sum_a += a[n * C + c];
      sum_b += b[n * C + c];
    }
    dg[c] = T(double(dg[c]) + sum_a);
    db[c] = T(double(db[c]) + sum_b);
  });
}

}  // namespace detail

}  // namespace ldm::ops
