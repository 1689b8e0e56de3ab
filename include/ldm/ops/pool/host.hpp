#pragma once
// 2x2 max pooling with stride 2 and ReLU over NHWC on the host: the piecewise-linear pieces of
// VGG's feature stack (LPIPS), kept together because both pass a gradient through unchanged or
// not at all, decided by the forward values.
//
// Pooling is torch.nn.MaxPool2d(2, 2): floor mode, so an odd last row or column is never read and
// gets a zero gradient. Within a window the first maximum in (row, column) order wins, as in
// PyTorch, and a NaN counts as the maximum (the last one, as PyTorch's scan has it) so that it
// reaches the output. Backward finds the
// winner again from the forward input instead of storing its index: the input is kept anyway (it
// is the previous ReLU's output), and the search is four comparisons.

#include <cmath>

#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::ops {

namespace detail {

inline constexpr index_t kPoolParallelThreshold = expr::executor<host>::parallel_threshold;

template <index_t N, index_t H, index_t W, index_t C, index_t N2, index_t Ho, index_t Wo,
          index_t C2>
constexpr bool max_pool2x2_shapes() {
  static_assert(H >= 2 && W >= 2, "ldm::ops::max_pool2x2: the input must be at least 2x2");
  static_assert(N2 == N && C2 == C,
                "ldm::ops::max_pool2x2: the output must keep the batch and channel extents");
  static_assert(Ho == H / 2 && Wo == W / 2,
                "ldm::ops::max_pool2x2: the output must be Shape<N, H / 2, W / 2, C> (floor)");
  return true;
}

// The offset, relative to the window's top-left element, of the element the window's output
// came from.
template <class T>
index_t max_pool2x2_winner(const T* top_left, index_t row_stride, index_t channel_stride) {
  const index_t offsets[4] = {0, channel_stride, row_stride, row_stride + channel_stride};
  index_t best = 0;
  for (int k = 1; k < 4; ++k) {
    const T value = top_left[offsets[k]];
    if (value > top_left[best] || std::isnan(value)) best = offsets[k];
  }
  return best;
}

}  // namespace detail

template <class T, index_t N, index_t H, index_t W, index_t C, index_t N2, index_t Ho, index_t Wo,
          index_t C2>
void max_pool2x2_forward(View<const T, Shape<N, H, W, C>> x, View<T, Shape<N2, Ho, Wo, C2>> y) {
  static_assert(detail::max_pool2x2_shapes<N, H, W, C, N2, Ho, Wo, C2>());
  const T* xp = x.data();
  T* yp = y.data();
#pragma omp parallel for schedule(static) if (N * Ho * Wo * C >= detail::kPoolParallelThreshold)
  for (index_t row = 0; row < N * Ho; ++row) {
    const T* in = xp + (row / Ho * H + 2 * (row % Ho)) * W * C;
    T* out = yp + row * Wo * C;
    for (index_t ow = 0; ow < Wo; ++ow)
      for (index_t c = 0; c < C; ++c) {
        const T* top_left = in + 2 * ow * C + c;
        out[ow * C + c] = top_left[detail::max_pool2x2_winner(top_left, W * C, C)];
      }
  }
}

// dx = d(loss)/dx given the forward input x and dy, overwriting dx: each output's gradient goes to
// the element it was taken from.
template <class T, index_t N, index_t H, index_t W, index_t C, index_t N2, index_t Ho, index_t Wo,
          index_t C2>
void max_pool2x2_backward(View<const T, Shape<N, H, W, C>> x,
                          View<const T, Shape<N2, Ho, Wo, C2>> dy, View<T, Shape<N, H, W, C>> dx) {
  static_assert(detail::max_pool2x2_shapes<N, H, W, C, N2, Ho, Wo, C2>());
  dx = T(0);
  const T* xp = x.data();
  const T* dyp = dy.data();
  T* dxp = dx.data();
  // Windows do not overlap, so each output row writes input rows no other one touches.
#pragma omp parallel for schedule(static) if (N * Ho * Wo * C >= detail::kPoolParallelThreshold)
  for (index_t row = 0; row < N * Ho; ++row) {
    const index_t in = (row / Ho * H + 2 * (row % Ho)) * W * C;
    const T* grad = dyp + row * Wo * C;
    for (index_t ow = 0; ow < Wo; ++ow)
      for (index_t c = 0; c < C; ++c) {
        const index_t top_left = in + 2 * ow * C + c;
        dxp[top_left + detail::max_pool2x2_winner(xp + top_left, W * C, C)] = grad[ow * C + c];
      }
  }
}

// y = max(x, 0).
template <class T, ShapeType S>
void relu_forward(View<const T, S> x, View<T, S> y) {
  y = maximum(x, T(0));
}

// dx = dy where the unit was active (y > 0), else 0, from the forward output y (which VGG keeps
// in place of its input). dx may be dy itself.
template <class T, ShapeType S>
void relu_backward(View<const T, S> y, View<const T, S> dy, View<T, S> dx) {
  dx = dy * (y > T(0));
}

}  // namespace ldm::ops
