#pragma once
// Nearest-neighbour upsampling by 2 and channel concatenation over NHWC, on any space: the pieces
// of the UNet and decoder up paths that only move data.
//
// Upsampling is F.interpolate(scale_factor=2, mode="nearest"): y[n, 2h + a, 2w + b, c] =
// x[n, h, w, c] for a, b in {0, 1}. Seen as Shape<N, H, 2, W, 2, C>, y is x broadcast along the
// two inserted axes, and the backward pass is the sum over them.
//
// Concatenation is torch.cat([a, b], dim=1) in NCHW, channels of a first (the UNet up path
// concatenates its skip connection second); splitting is its inverse, torch.split. Each is the
// other's backward pass.

#include "ldm/core/macros.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/executor.hpp"
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

template <index_t Ca, index_t Cb, index_t Cy>
constexpr bool concat_channels_shapes() {
  static_assert(Cy == Ca + Cb,
                "ldm::ops::concat_channels/split_channels: the whole's channels must be a's plus "
                "b's");
  return true;
}

// One work item per element of the whole [pixels, Ca + Cb], so each element is moved once and
// consecutive items touch consecutive addresses of it.
template <class T, index_t Ca, index_t Cb>
struct ConcatChannels {
  const T* a;
  const T* b;
  T* whole;
  LDM_HD void operator()(index_t i) const {
    const index_t p = i / (Ca + Cb), c = i % (Ca + Cb);
    whole[i] = c < Ca ? a[p * Ca + c] : b[p * Cb + (c - Ca)];
  }
};

template <class T, index_t Ca, index_t Cb>
struct SplitChannels {
  const T* whole;
  T* a;
  T* b;
  LDM_HD void operator()(index_t i) const {
    const index_t p = i / (Ca + Cb), c = i % (Ca + Cb);
    if (c < Ca)
      a[p * Ca + c] = whole[i];
    else
      b[p * Cb + (c - Ca)] = whole[i];
  }
};

}  // namespace detail

template <class T, index_t N, index_t H, index_t W, index_t C, index_t N2, index_t H2, index_t W2,
          index_t C2, class Space>
void upsample_nearest2x_forward(View<const T, Shape<N, H, W, C>, Space> x,
                                View<T, Shape<N2, H2, W2, C2>, Space> y) {
  static_assert(detail::upsample_nearest2x_shapes<N, H, W, C, N2, H2, W2, C2>());
  using Split = Shape<N, H, 2, W, 2, C>;
  y.template reshape<Split>() = ldm::broadcast<Split, 2, 4>(x);
}

// dx[n, h, w, c] = the sum of the 4 elements of dy that x[n, h, w, c] was copied to.
template <class T, index_t N, index_t H, index_t W, index_t C, index_t N2, index_t H2, index_t W2,
          index_t C2, class Space>
void upsample_nearest2x_backward(View<const T, Shape<N2, H2, W2, C2>, Space> dy,
                                 View<T, Shape<N, H, W, C>, Space> dx) {
  static_assert(detail::upsample_nearest2x_shapes<N, H, W, C, N2, H2, W2, C2>());
  using Split = Shape<N, H, 2, W, 2, C>;
  dx = ldm::sum<2, 4>(dy.template reshape<Split>());
}

// y = [a, b] along the channel axis, overwritten.
template <class T, index_t N, index_t H, index_t W, index_t Ca, index_t Cb, index_t Cy, class Space>
void concat_channels(View<const T, Shape<N, H, W, Ca>, Space> a,
                     View<const T, Shape<N, H, W, Cb>, Space> b,
                     View<T, Shape<N, H, W, Cy>, Space> y) {
  static_assert(detail::concat_channels_shapes<Ca, Cb, Cy>());
  expr::executor<Space>::for_each(N * H * W * Cy,
                                  detail::ConcatChannels<T, Ca, Cb>{a.data(), b.data(), y.data()});
}

// a = the first Ca channels of y, b = the rest; both overwritten.
template <class T, index_t N, index_t H, index_t W, index_t Ca, index_t Cb, index_t Cy, class Space>
void split_channels(View<const T, Shape<N, H, W, Cy>, Space> y,
                    View<T, Shape<N, H, W, Ca>, Space> a, View<T, Shape<N, H, W, Cb>, Space> b) {
  static_assert(detail::concat_channels_shapes<Ca, Cb, Cy>());
  expr::executor<Space>::for_each(N * H * W * Cy,
                                  detail::SplitChannels<T, Ca, Cb>{y.data(), a.data(), b.data()});
}

}  // namespace ldm::ops
