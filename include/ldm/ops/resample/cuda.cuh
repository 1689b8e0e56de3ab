#pragma once
// Nearest-neighbour upsampling by 2 and channel concatenation over NHWC on the device, with the
// host's call forms (host.hpp). Upsampling is the same broadcast and sum expressions as on the
// host; concatenation is one pass over the wider tensor, so each element is written once.

#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/cuda_executor.cuh"
#include "ldm/expr/reduce.hpp"
#include "ldm/ops/resample/host.hpp"

namespace ldm::ops {

template <class T, index_t N, index_t H, index_t W, index_t C, index_t N2, index_t H2, index_t W2,
          index_t C2>
void upsample_nearest2x_forward(View<const T, Shape<N, H, W, C>, cuda> x,
                                View<T, Shape<N2, H2, W2, C2>, cuda> y) {
  static_assert(detail::upsample_nearest2x_shapes<N, H, W, C, N2, H2, W2, C2>());
  using Split = Shape<N, H, 2, W, 2, C>;
  y.template reshape<Split>() = ldm::broadcast<Split, 2, 4>(x);
}

template <class T, index_t N, index_t H, index_t W, index_t C, index_t N2, index_t H2, index_t W2,
          index_t C2>
void upsample_nearest2x_backward(View<const T, Shape<N2, H2, W2, C2>, cuda> dy,
                                 View<T, Shape<N, H, W, C>, cuda> dx) {
  static_assert(detail::upsample_nearest2x_shapes<N, H, W, C, N2, H2, W2, C2>());
  using Split = Shape<N, H, 2, W, 2, C>;
  dx = ldm::sum<2, 4>(dy.template reshape<Split>());
}

template <class T, index_t N, index_t H, index_t W, index_t Ca, index_t Cb, index_t Cy>
void concat_channels_forward(View<const T, Shape<N, H, W, Ca>, cuda> a,
                             View<const T, Shape<N, H, W, Cb>, cuda> b,
                             View<T, Shape<N, H, W, Cy>, cuda> y) {
  static_assert(Cy == Ca + Cb,
                "ldm::ops::concat_channels: the output's channels must be a's plus b's");
  const T* ap = a.data();
  const T* bp = b.data();
  T* yp = y.data();
  expr::executor<cuda>::for_each(N * H * W * Cy, [=] __device__(index_t i) {
    const index_t p = i / Cy, c = i % Cy;
    yp[i] = c < Ca ? ap[p * Ca + c] : bp[p * Cb + (c - Ca)];
  });
}

template <class T, index_t N, index_t H, index_t W, index_t Ca, index_t Cb, index_t Cy>
void concat_channels_backward(View<const T, Shape<N, H, W, Cy>, cuda> dy,
                              View<T, Shape<N, H, W, Ca>, cuda> da,
                              View<T, Shape<N, H, W, Cb>, cuda> db) {
  static_assert(Cy == Ca + Cb,
                "ldm::ops::concat_channels: the output's channels must be a's plus b's");
  const T* dyp = dy.data();
  T* dap = da.data();
  T* dbp = db.data();
  expr::executor<cuda>::for_each(N * H * W * Cy, [=] __device__(index_t i) {
    const index_t p = i / Cy, c = i % Cy;
    if (c < Ca)
      dap[p * Ca + c] = dyp[i];
    else
      dbp[p * Cb + (c - Ca)] = dyp[i];
  });
}

}  // namespace ldm::ops
