#pragma once
// Nearest-neighbour upsampling by 2 and channel concatenation over NHWC on the host: the pieces of
// the UNet and decoder up paths that only move data.
//
// Upsampling is F.interpolate(scale_factor=2, mode="nearest"): y[n, 2h + a, 2w + b, c] =
// x[n, h, w, c] for a, b in {0, 1}. Seen as Shape<N, H, 2, W, 2, C>, y is x broadcast along the
// two inserted axes, and the backward pass is the sum over them.
//
// Concatenation is torch.cat([a, b], dim=1) in NCHW, channels of a first: the UNet up path
// concatenates its skip connection second.

#include <algorithm>

#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/reduce.hpp"

namespace ldm::ops {

namespace detail {
template <index_t N, index_t H, index_t W, index_t C, index_t N2, index_t H2, index_t W2,
          index_t C2>
constexpr bool upsample_nearest2x_shapes() {
  static_assert(N2 == N && C2 == C,
                "ldm::ops::upsample_nearest2x: the output must keep the batch and channel extents");
  static_assert(H2 == 2 * H && W2 == 2 * W,
                "ldm::ops::upsample_nearest2x: the output must be Shape<N, 2 * H, 2 * W, C>");
  return true;
}
}  // namespace detail

template <class T, index_t N, index_t H, index_t W, index_t C, index_t N2, index_t H2, index_t W2,
          index_t C2>
void upsample_nearest2x_forward(View<const T, Shape<N, H, W, C>> x,
                                View<T, Shape<N2, H2, W2, C2>> y) {
  static_assert(detail::upsample_nearest2x_shapes<N, H, W, C, N2, H2, W2, C2>());
  using Split = Shape<N, H, 2, W, 2, C>;
  y.template reshape<Split>() = ldm::broadcast<Split, 2, 4>(x);
}

// dx[n, h, w, c] = the sum of the 4 elements of dy that x[n, h, w, c] was copied to.
template <class T, index_t N, index_t H, index_t W, index_t C, index_t N2, index_t H2, index_t W2,
          index_t C2>
void upsample_nearest2x_backward(View<const T, Shape<N2, H2, W2, C2>> dy,
                                 View<T, Shape<N, H, W, C>> dx) {
  static_assert(detail::upsample_nearest2x_shapes<N, H, W, C, N2, H2, W2, C2>());
  using Split = Shape<N, H, 2, W, 2, C>;
  dx = ldm::sum<2, 4>(dy.template reshape<Split>());
}

// y = [a, b] along the channel axis.
template <class T, index_t N, index_t H, index_t W, index_t Ca, index_t Cb, index_t Cy>
void concat_channels_forward(View<const T, Shape<N, H, W, Ca>> a,
                             View<const T, Shape<N, H, W, Cb>> b, View<T, Shape<N, H, W, Cy>> y) {
  static_assert(Cy == Ca + Cb,
                "ldm::ops::concat_channels: the output's channels must be a's plus b's");
  constexpr index_t pixels = N * H * W;
  [[maybe_unused]] constexpr bool parallel =
      pixels * Cy >= expr::executor<host>::parallel_threshold;
#pragma omp parallel for schedule(static) if (parallel)
  for (index_t p = 0; p < pixels; ++p) {
    std::copy_n(a.data() + p * Ca, Ca, y.data() + p * Cy);
    std::copy_n(b.data() + p * Cb, Cb, y.data() + p * Cy + Ca);
  }
}

// Splits dy into the gradients of a (its first Ca channels) and b (the rest); both overwritten.
template <class T, index_t N, index_t H, index_t W, index_t Ca, index_t Cb, index_t Cy>
void concat_channels_backward(View<const T, Shape<N, H, W, Cy>> dy, View<T, Shape<N, H, W, Ca>> da,
                              View<T, Shape<N, H, W, Cb>> db) {
  static_assert(Cy == Ca + Cb,
                "ldm::ops::concat_channels: the output's channels must be a's plus b's");
  constexpr index_t pixels = N * H * W;
  [[maybe_unused]] constexpr bool parallel =
      pixels * Cy >= expr::executor<host>::parallel_threshold;
#pragma omp parallel for schedule(static) if (parallel)
  for (index_t p = 0; p < pixels; ++p) {
    std::copy_n(dy.data() + p * Cy, Ca, da.data() + p * Ca);
    std::copy_n(dy.data() + p * Cy + Ca, Cb, db.data() + p * Cb);
  }
}

}  // namespace ldm::ops
