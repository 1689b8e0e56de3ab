#pragma once
// 2-D convolution on the device: the host's contract (conv2d/host.hpp: NHWC activations, weights
// [Cout, KH, KW, Cin], every Conv2dGeometry) over cuda views, lowered to cuBLAS GEMMs.
//
// As on the host, y[M, Cout] = cols[M, K] * W[Cout, K]^T with M = N*Ho*Wo output pixels and
// K = KH*KW*Cin in (kh, kw, ci) order, the order of a weight row. A pointwise convolution reads x
// as its column matrix. Otherwise an im2col kernel fills the column matrix for a chunk of output
// pixels at a time, so the workspace stays within kDeviceWorkspaceBytes for any batch or image.
//
// The input gradient is dcols = dy * W, then a col2im gather: each input element sums, in a fixed
// (kh, kw) order, the column entries that read it, so every thread writes its own element (no
// atomics) and the result is the same on every run.

#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "ldm/core/buffer.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/cuda_executor.cuh"
#include "ldm/ops/conv2d/host.hpp"
#include "ldm/ops/gemm.hpp"
#include "ldm/ops/gemm/column_sums.hpp"

namespace ldm::ops {

namespace detail {

// Column-matrix memory per call: large enough that one chunk covers the output of most layers at
// training batch sizes (one GEMM per pass), small enough to leave the activations their memory.
inline constexpr std::size_t kDeviceWorkspaceBytes = std::size_t(256) << 20;

template <class T, class P>
inline constexpr index_t device_chunk_rows =
    std::clamp<index_t>(index_t(kDeviceWorkspaceBytes / (sizeof(T) * P::k)), 1, P::m);

// Element i of the column matrix of rows [r0, r0 + rows): the input output pixel r0 + i / K reads
// at kernel position i % K, zero where the window lies in the padding.
template <class G, class P, class T>
struct Im2col {
  const T* x;
  T* cols;
  index_t r0;
  LDM_HD void operator()(index_t i) const {
    const index_t r = r0 + i / P::k, j = i % P::k;
    const index_t n = r / (P::ho * P::wo), pixel = r % (P::ho * P::wo);
    const index_t kh = j / (G::kw * P::ci), kw = j / P::ci % G::kw, c = j % P::ci;
    const index_t ih = pixel / P::wo * G::stride - G::pad_top + kh;
    const index_t iw = pixel % P::wo * G::stride - G::pad_left + kw;
    const bool inside = ih >= 0 && ih < P::h && iw >= 0 && iw < P::w;
    cols[i] = inside ? x[((n * P::h + ih) * P::w + iw) * P::ci + c] : T(0);
  }
};

// dx element (first_line * W * Ci + i) gets the sum of the column entries of rows [r0, r_end)
// that read it; added to dx when `accumulate`, written otherwise.
template <class G, class P, class T>
struct Col2imGather {
  const T* cols;
  T* dx;
  index_t first_line, r0, r_end;
  bool accumulate;
  LDM_HD void operator()(index_t i) const {
    const index_t e = first_line * P::w * P::ci + i;
    const index_t c = e % P::ci, iw = e / P::ci % P::w, line = e / (P::ci * P::w);
    const index_t n = line / P::h, ih = line % P::h;
    T acc = 0;
    for (index_t kh = 0; kh < G::kh; ++kh) {
      const index_t th = ih + G::pad_top - kh;  // oh * stride for the window reading row ih
      if (th < 0) break;
      if (th % G::stride != 0 || th / G::stride >= P::ho) continue;
      for (index_t kw = 0; kw < G::kw; ++kw) {
        const index_t tw = iw + G::pad_left - kw;
        if (tw < 0) break;
        if (tw % G::stride != 0 || tw / G::stride >= P::wo) continue;
        const index_t r = (n * P::ho + th / G::stride) * P::wo + tw / G::stride;
        if (r < r0 || r >= r_end) continue;
        acc += cols[(r - r0) * P::k + (kh * G::kw + kw) * P::ci + c];
      }
    }
    dx[e] = accumulate ? dx[e] + acc : acc;
  }
};

// The column matrix of x a chunk of output pixels at a time: fills it for rows [r0, r0 + rows)
// and calls consume(r0, rows, cols), for every chunk in order.
template <class G, class P, class T, class Consume>
void for_each_column_chunk(const T* x, index_t chunk, Consume consume) {
  Buffer<T, ldm::cuda> cols(std::size_t(chunk * P::k));
  for (index_t r0 = 0; r0 < P::m; r0 += chunk) {
    const index_t rows = std::min(chunk, P::m - r0);
    expr::executor<ldm::cuda>::for_each(rows * P::k, Im2col<G, P, T>{x, cols.data(), r0});
    consume(r0, rows, cols.data());
  }
}

// The three passes with the chunk size as a parameter, so tests can force several chunks.
template <class G, class T, class XS, class WS, class YS>
void conv2d_forward_chunked(View<const T, XS, ldm::cuda> x, View<const T, WS, ldm::cuda> w,
                            View<const T, Shape<WS::extents[0]>, ldm::cuda> bias,
                            View<T, YS, ldm::cuda> y, index_t chunk) {
  using P = Conv2dProblem<G, XS, WS>;
  y = broadcast<YS, 0, 1, 2>(bias);
  if constexpr (G::pointwise) {
    gemm(ldm::cuda{}, Trans::no, Trans::yes, int(P::m), int(P::co), int(P::k), T(1), x.data(),
         w.data(), T(1), y.data());
  } else {
    for_each_column_chunk<G, P>(x.data(), chunk, [&](index_t r0, index_t rows, const T* cols) {
      gemm(ldm::cuda{}, Trans::no, Trans::yes, int(rows), int(P::co), int(P::k), T(1), cols,
           w.data(), T(1), y.data() + r0 * P::co);
    });
  }
}

template <class G, class T, class WS, class YS, class XS>
void conv2d_backward_input_chunked(View<const T, WS, ldm::cuda> w, View<const T, YS, ldm::cuda> dy,
                                   View<T, XS, ldm::cuda> dx, index_t chunk) {
  using P = Conv2dProblem<G, XS, WS>;
  if constexpr (G::pointwise) {
    // beta = 0: cuBLAS does not read dx, so whatever it held (NaN included) is overwritten.
    gemm(ldm::cuda{}, Trans::no, Trans::no, int(P::m), int(P::k), int(P::co), T(1), dy.data(),
         w.data(), T(0), dx.data());
  } else {
    Buffer<T, ldm::cuda> cols(std::size_t(chunk * P::k));
    constexpr index_t line_elements = P::w * P::ci;
    for (index_t r0 = 0; r0 < P::m; r0 += chunk) {
      const index_t rows = std::min(chunk, P::m - r0);
      gemm(ldm::cuda{}, Trans::no, Trans::no, int(rows), int(P::k), int(P::co), T(1),
           dy.data() + r0 * P::co, w.data(), T(0), cols.data());
      // The first chunk writes every element of dx (zero where it reads none, as for pixels no
      // window reads at all); later chunks add onto the lines their windows touch.
      const bool first = r0 == 0;
      const auto [begin, end] =
          first ? std::pair<index_t, index_t>{0, P::n * P::h} : touched_lines<G, P>(r0, r0 + rows);
      expr::executor<ldm::cuda>::for_each(
          (end - begin) * line_elements,
          Col2imGather<G, P, T>{cols.data(), dx.data(), begin, r0, r0 + rows, !first});
    }
  }
}

template <class G, class T, class XS, class YS, class WS>
void conv2d_backward_params_chunked(View<const T, XS, ldm::cuda> x, View<const T, YS, ldm::cuda> dy,
                                    View<T, WS, ldm::cuda> dw,
                                    View<T, Shape<WS::extents[0]>, ldm::cuda> db, index_t chunk) {
  using P = Conv2dProblem<G, XS, WS>;
  add_column_sums(ldm::cuda{}, dy.data(), P::m, P::co, db.data());
  if constexpr (G::pointwise) {
    gemm(ldm::cuda{}, Trans::yes, Trans::no, int(P::co), int(P::k), int(P::m), T(1), dy.data(),
         x.data(), T(1), dw.data());
  } else {
    for_each_column_chunk<G, P>(x.data(), chunk, [&](index_t r0, index_t rows, const T* cols) {
      gemm(ldm::cuda{}, Trans::yes, Trans::no, int(P::co), int(P::k), int(rows), T(1),
           dy.data() + r0 * P::co, cols, T(1), dw.data());
    });
  }
}

}  // namespace detail

// y = conv(x, w) + bias, overwriting y. x: Shape<N, H, W, Cin>, w: Shape<Cout, KH, KW, Cin>,
// bias: Shape<Cout>, y: conv2d_output_t<G, Shape<N, H, W, Cin>, Cout>.
template <class G, class T, class XS, class WS, class BS, class YS>
void conv2d_forward(View<const T, XS, ldm::cuda> x, View<const T, WS, ldm::cuda> w,
                    View<const T, BS, ldm::cuda> bias, View<T, YS, ldm::cuda> y) {
  using P = detail::Conv2dProblem<G, XS, WS>;
  detail::check_conv2d<G, T, P, YS, BS>();
  detail::conv2d_forward_chunked<G>(x, w, bias, y, detail::device_chunk_rows<T, P>);
}

// dx = d(loss)/dx given dy = d(loss)/dy, overwriting dx.
template <class G, class T, class WS, class YS, class XS>
void conv2d_backward_input(View<const T, WS, ldm::cuda> w, View<const T, YS, ldm::cuda> dy,
                           View<T, XS, ldm::cuda> dx) {
  using P = detail::Conv2dProblem<G, XS, WS>;
  detail::check_conv2d<G, T, P, YS>();
  detail::conv2d_backward_input_chunked<G>(w, dy, dx, detail::device_chunk_rows<T, P>);
}

// dw += d(loss)/dw and db += d(loss)/db given the forward input x and dy = d(loss)/dy.
template <class G, class T, class XS, class YS, class WS, class BS>
void conv2d_backward_params(View<const T, XS, ldm::cuda> x, View<const T, YS, ldm::cuda> dy,
                            View<T, WS, ldm::cuda> dw, View<T, BS, ldm::cuda> db) {
  using P = detail::Conv2dProblem<G, XS, WS>;
  detail::check_conv2d<G, T, P, YS, BS>();
  detail::conv2d_backward_params_chunked<G>(x, dy, dw, db, detail::device_chunk_rows<T, P>);
}

}  // namespace ldm::ops
