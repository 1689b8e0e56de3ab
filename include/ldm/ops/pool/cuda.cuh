#pragma once
// 2x2 max pooling with stride 2 and ReLU over NHWC on the device, with the host's call forms and
// tie and NaN rules (host.hpp). Backward is one pass over the input: each element finds its
// window's winner again and takes the window's gradient if it is the winner, else zero, so every
// element of dx is written exactly once and the odd last row or column gets zero.

#include "ldm/core/macros.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/cuda_executor.cuh"
#include "ldm/expr/elementwise.hpp"
#include "ldm/ops/pool/host.hpp"

namespace ldm::ops {

namespace pool_cuda {

// As detail::max_pool2x2_winner: the first maximum in (row, column) order, or the last NaN.
template <class T>
__device__ index_t winner(const T* top_left, index_t row_stride, index_t channel_stride) {
  const index_t offsets[4] = {0, channel_stride, row_stride, row_stride + channel_stride};
  index_t best = 0;
  for (int k = 1; k < 4; ++k) {
    const T value = top_left[offsets[k]];
    if (value > top_left[best] || value != value) best = offsets[k];
  }
  return best;
}

}  // namespace pool_cuda

template <class T, index_t N, index_t H, index_t W, index_t C, index_t N2, index_t Ho, index_t Wo,
          index_t C2>
void max_pool2x2_forward(View<const T, Shape<N, H, W, C>, cuda> x,
                         View<T, Shape<N2, Ho, Wo, C2>, cuda> y) {
  static_assert(detail::max_pool2x2_shapes<N, H, W, C, N2, Ho, Wo, C2>());
  const T* xp = x.data();
  T* yp = y.data();
  expr::executor<cuda>::for_each(N * Ho * Wo * C, [=] __device__(index_t o) {
    const index_t c = o % C, ow = o / C % Wo, row = o / (C * Wo);  // row = n * Ho + oh
    const T* top_left = xp + ((row / Ho * H + 2 * (row % Ho)) * W + 2 * ow) * C + c;
    yp[o] = top_left[pool_cuda::winner(top_left, W * C, C)];
  });
}

template <class T, index_t N, index_t H, index_t W, index_t C, index_t N2, index_t Ho, index_t Wo,
          index_t C2>
void max_pool2x2_backward(View<const T, Shape<N, H, W, C>, cuda> x,
                          View<const T, Shape<N2, Ho, Wo, C2>, cuda> dy,
                          View<T, Shape<N, H, W, C>, cuda> dx) {
  static_assert(detail::max_pool2x2_shapes<N, H, W, C, N2, Ho, Wo, C2>());
  const T* xp = x.data();
  const T* dyp = dy.data();
  T* dxp = dx.data();
  expr::executor<cuda>::for_each(N * H * W * C, [=] __device__(index_t i) {
    const index_t c = i % C, w = i / C % W, h = i / (C * W) % H, n = i / (C * W * H);
    const index_t oh = h / 2, ow = w / 2;
    if (oh >= Ho || ow >= Wo) {  // the odd last row or column no window reads
      dxp[i] = T(0);
      return;
    }
    const index_t top_left = ((n * H + 2 * oh) * W + 2 * ow) * C + c;
    const bool won = top_left + pool_cuda::winner(xp + top_left, W * C, C) == i;
    dxp[i] = won ? dyp[((n * Ho + oh) * Wo + ow) * C + c] : T(0);
  });
}

template <class T, ShapeType S>
void relu_forward(View<const T, S, cuda> x, View<T, S, cuda> y) {
  y = maximum(x, T(0));
}

// dx may be dy itself.
template <class T, ShapeType S>
void relu_backward(View<const T, S, cuda> y, View<const T, S, cuda> dy, View<T, S, cuda> dx) {
  dx = dy * (y > T(0));
}

}  // namespace ldm::ops
