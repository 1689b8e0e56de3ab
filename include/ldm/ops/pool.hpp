#pragma once
// 2x2 max pooling with stride 2 and ReLU over NHWC, on any space: the piecewise-linear pieces of
// VGG's feature stack (LPIPS), kept together because both pass a gradient through unchanged or
// not at all, decided by the forward values.
//
// Pooling is torch.nn.MaxPool2d(2, 2): floor mode, so an odd last row or column is never read and
// gets a zero gradient. Within a window the first maximum in (row, column) order wins, as in
// PyTorch, and a NaN counts as the maximum (the last one, as PyTorch's scan has it) so that it
// reaches the output. Backward finds the winner again from the forward input instead of storing
// its index: the input is kept anyway (it is the previous ReLU's output), and the search is four
// comparisons. It is one pass over the input: each element takes its window's gradient if it is
// the winner, else zero, so every element of dx is written exactly once.

#include "ldm/core/macros.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::ops {

namespace detail {

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
// came from. `value != value` is the NaN test that both host and device code have.
template <class T>
LDM_HD index_t max_pool2x2_winner(const T* top_left, index_t row_stride, index_t channel_stride) {
  const index_t offsets[4] = {0, channel_stride, row_stride, row_stride + channel_stride};
  index_t best = 0;
  for (int k = 1; k < 4; ++k) {
    const T value = top_left[offsets[k]];
    if (value > top_left[best] || value != value) best = offsets[k];
  }
  return best;
}

template <class T, index_t H, index_t W, index_t C>
struct MaxPool2x2Forward {
  const T* x;
  T* y;
  LDM_HD void operator()(index_t o) const {
    constexpr index_t Ho = H / 2, Wo = W / 2;
    const index_t c = o % C, ow = o / C % Wo, row = o / (C * Wo);  // row = n * Ho + oh
    const T* top_left = x + ((row / Ho * H + 2 * (row % Ho)) * W + 2 * ow) * C + c;
    y[o] = top_left[max_pool2x2_winner(top_left, W * C, C)];
  }
};

template <class T, index_t H, index_t W, index_t C>
struct MaxPool2x2Backward {
  const T* x;
  const T* dy;
  T* dx;
  LDM_HD void operator()(index_t i) const {
    constexpr index_t Ho = H / 2, Wo = W / 2;
    const index_t c = i % C, w = i / C % W, h = i / (C * W) % H, n = i / (C * W * H);
    const index_t oh = h / 2, ow = w / 2;
    if (oh >= Ho || ow >= Wo) {  // the odd last row or column no window reads
      dx[i] = T(0);
      return;
    }
    const index_t top_left = ((n * H + 2 * oh) * W + 2 * ow) * C + c;
    const bool won = top_left + max_pool2x2_winner(x + top_left, W * C, C) == i;
    dx[i] = won ? dy[((n * Ho + oh) * Wo + ow) * C + c] : T(0);
  }
};

}  // namespace detail

template <class T, index_t N, index_t H, index_t W, index_t C, index_t N2, index_t Ho, index_t Wo,
          index_t C2, class Space>
void max_pool2x2_forward(View<const T, Shape<N, H, W, C>, Space> x,
                         View<T, Shape<N2, Ho, Wo, C2>, Space> y) {
  static_assert(detail::max_pool2x2_shapes<N, H, W, C, N2, Ho, Wo, C2>());
  expr::executor<Space>::for_each(N * Ho * Wo * C,
                                  detail::MaxPool2x2Forward<T, H, W, C>{x.data(), y.data()});
}

// dx = d(loss)/dx given the forward input x and dy, overwriting dx: each output's gradient goes to
// the element it was taken from.
template <class T, index_t N, index_t H, index_t W, index_t C, index_t N2, index_t Ho, index_t Wo,
          index_t C2, class Space>
void max_pool2x2_backward(View<const T, Shape<N, H, W, C>, Space> x,
                          View<const T, Shape<N2, Ho, Wo, C2>, Space> dy,
                          View<T, Shape<N, H, W, C>, Space> dx) {
  static_assert(detail::max_pool2x2_shapes<N, H, W, C, N2, Ho, Wo, C2>());
  expr::executor<Space>::for_each(
      N * H * W * C, detail::MaxPool2x2Backward<T, H, W, C>{x.data(), dy.data(), dx.data()});
}

// y = max(x, 0).
template <class T, ShapeType S, class Space>
void relu_forward(View<const T, S, Space> x, View<T, S, Space> y) {
  y = maximum(x, T(0));
}

// dx = dy where the unit was active (y > 0), else 0, from the forward output y (which VGG keeps
// in place of its input). dx may be dy itself.
template <class T, ShapeType S, class Space>
void relu_backward(View<const T, S, Space> y, View<const T, S, Space> dy, View<T, S, Space> dx) {
  dx = dy * (y > T(0));
}

}  // namespace ldm::ops
