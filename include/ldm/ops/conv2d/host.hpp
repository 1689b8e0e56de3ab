#pragma once
// 2-D convolution on the host: NHWC activations, weights [Cout, KH, KW, Cin].
//
// Lowered to GEMMs. In NHWC the KH*KW*Cin inputs of one output pixel are KH runs of up to KW*Cin
// contiguous elements, so gathering them into one row of a column matrix (im2col) costs a few
// memcpy's per row, and the convolution is y[M, Cout] = cols[M, K] * W[Cout, K]^T with
// M = N*Ho*Wo output pixels and K = KH*KW*Cin. Output pixels go through in chunks of rows so the
// column matrix stays within kWorkspaceBytes for any batch or image size. A 1x1, stride 1,
// unpadded convolution reads its input as the column matrix and needs no workspace.
//
// On x86-64 CPUs with AVX-512 or AVX2 and FMA, float convolutions other than pointwise ones run
// as direct convolutions instead (direct_simd.hpp); the GEMM path stays the reference and the
// fallback.
//
// The input gradient is dcols = dy * W followed by col2im. col2im is written as a gather: each
// input pixel sums the column entries that read it, in a fixed (kh, kw) order, so threads write
// disjoint pixels and the result does not depend on the thread count.

#include <algorithm>
#include <climits>
#include <cstddef>
#include <type_traits>
#include <utility>

#include "ldm/core/shape.hpp"
#include "ldm/core/space.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/ops/conv2d/direct_simd.hpp"
#include "ldm/ops/gemm.hpp"
#include "ldm/ops/gemm/column_sums.hpp"

namespace ldm::ops {

// Kernel KH x KW, one stride for both axes, and padding given per side, so that the asymmetric
// padding of AutoencoderKL's downsampler is a geometry like any other.
template <int KH, int KW, int Stride, int PadTop, int PadBottom, int PadLeft, int PadRight>
struct Conv2dGeometry {
  static_assert(KH >= 1 && KW >= 1, "ldm::ops::Conv2dGeometry: the kernel must be at least 1x1");
  static_assert(Stride >= 1, "ldm::ops::Conv2dGeometry: the stride must be at least 1");
  static_assert(PadTop >= 0 && PadBottom >= 0 && PadLeft >= 0 && PadRight >= 0,
                "ldm::ops::Conv2dGeometry: padding must not be negative");

  static constexpr index_t kh = KH, kw = KW, stride = Stride;
  static constexpr index_t pad_top = PadTop, pad_bottom = PadBottom;
  static constexpr index_t pad_left = PadLeft, pad_right = PadRight;

  // Whether one kernel window fits in the padded input; if not there is no output pixel.
  static constexpr bool fits(index_t h, index_t w) {
    return h + pad_top + pad_bottom >= kh && w + pad_left + pad_right >= kw;
  }
  // One output per stride step at which the whole window lies inside the padded input.
  static constexpr index_t out_h(index_t h) { return (h + pad_top + pad_bottom - kh) / stride + 1; }
  static constexpr index_t out_w(index_t w) { return (w + pad_left + pad_right - kw) / stride + 1; }

  static constexpr bool pointwise =
      kh == 1 && kw == 1 && stride == 1 && pad_top + pad_bottom + pad_left + pad_right == 0;
};

// Symmetric padding K / 2: keeps H x W at stride 1 for odd K (3x3 pad 1, 1x1 pad 0); at stride 2
// it is the UNet's downsampler (3x3 stride 2 pad 1).
template <int K, int Stride = 1>
using conv_same = Conv2dGeometry<K, K, Stride, K / 2, K / 2, K / 2, K / 2>;

// AutoencoderKL's Downsample2D: pad (left 0, right 1, top 0, bottom 1), then 3x3 stride 2 pad 0.
using conv_down_asymmetric = Conv2dGeometry<3, 3, 2, 0, 1, 0, 1>;

template <class G>
inline constexpr bool is_conv2d_geometry_v = false;
template <int KH, int KW, int S, int PT, int PB, int PL, int PR>
inline constexpr bool is_conv2d_geometry_v<Conv2dGeometry<KH, KW, S, PT, PB, PL, PR>> = true;

namespace detail {

// Extent `axis` of S, or 1 when S has no such axis, so that a shape of the wrong rank yields the
// op's own static_assert message rather than a cascade of unrelated errors.
template <class S>
constexpr index_t extent_or_one(int axis) {
  return axis < S::rank ? S::extents[axis] : 1;
}

template <class G, class XS, index_t Cout>
struct conv2d_output {
  static_assert(is_conv2d_geometry_v<G>,
                "ldm::ops::conv2d_output_t: G must be a Conv2dGeometry<...> (e.g. conv_same<3>)");
  static_assert(XS::rank == 4, "ldm::ops::conv2d_output_t: the input must be NHWC, Shape<N,H,W,C>");
  static constexpr index_t h = extent_or_one<XS>(1), w = extent_or_one<XS>(2);
  static_assert(G::fits(h, w),
                "ldm::ops::conv2d_output_t: the kernel is larger than the padded input");
  using type = Shape<extent_or_one<XS>(0), G::fits(h, w) ? G::out_h(h) : 1,
                     G::fits(h, w) ? G::out_w(w) : 1, Cout>;
};

}  // namespace detail

// The output shape of a convolution with geometry G of an NHWC input InShape to Cout channels.
template <class G, class InShape, index_t Cout>
using conv2d_output_t = typename detail::conv2d_output<G, InShape, Cout>::type;

namespace detail {

// The GEMM-side memory per call: room for the column matrix of a few thousand output pixels, so
// each chunk still makes GEMMs large enough to run near the BLAS's peak.
inline constexpr std::size_t kWorkspaceBytes = std::size_t(4) << 20;

// The sizes of one convolution, from the input shape, the weight shape and the geometry.
template <class G, class XS, class WS>
struct Conv2dProblem {
  static constexpr index_t n = extent_or_one<XS>(0), h = extent_or_one<XS>(1),
                           w = extent_or_one<XS>(2), ci = extent_or_one<XS>(3),
                           co = extent_or_one<WS>(0);
  static constexpr bool x_is_nhwc = XS::rank == 4;
  static constexpr bool weight_matches = std::is_same_v<WS, Shape<co, G::kh, G::kw, ci>>;
  static constexpr bool fits = G::fits(h, w);
  static constexpr index_t ho = fits ? G::out_h(h) : 1, wo = fits ? G::out_w(w) : 1;
  using y_shape = Shape<n, ho, wo, co>;

  static constexpr index_t k = G::kh * G::kw * ci;  // one column-matrix row
  static constexpr index_t m = n * ho * wo;         // output pixels
  static_assert(k <= INT_MAX && co <= INT_MAX && m <= INT_MAX,
                "ldm::ops::conv2d: the GEMM sizes exceed the BLAS's int range");

  template <class T>
  static constexpr index_t chunk_rows =
      std::clamp<index_t>(index_t(kWorkspaceBytes / (sizeof(T) * k)), 1, m);
};

// One host allocation for a call's scratch memory, released on every way out.
class Workspace {
 public:
  explicit Workspace(std::size_t bytes) : data_(memory<host>::allocate(bytes)) {}
  ~Workspace() { memory<host>::release(data_); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;

  template <class U>
  U* as() const {
    return static_cast<U*>(data_);
  }

 private:
  void* data_;
};

inline constexpr index_t kParallelThreshold = expr::executor<host>::parallel_threshold;

// Row r of the column matrix: the inputs output pixel r reads, in (kh, kw, ci) order, zero where
// the window lies in the padding.
template <class G, class P, class T>
void im2col_row(const T* x, index_t r, T* row) {
  constexpr index_t ci = P::ci, kernel_row = G::kw * ci;
  const index_t n = r / (P::ho * P::wo), pixel = r % (P::ho * P::wo);
  const index_t ih0 = pixel / P::wo * G::stride - G::pad_top;
  const index_t iw0 = pixel % P::wo * G::stride - G::pad_left;
  // The kernel columns that land inside the image: one contiguous run of input pixels.
  const index_t kw_begin = std::max<index_t>(0, -iw0);
  const index_t kw_end = std::min<index_t>(G::kw, P::w - iw0);
  for (index_t kh = 0; kh < G::kh; ++kh) {
    T* dst = row + kh * kernel_row;
    const index_t ih = ih0 + kh;
    if (ih < 0 || ih >= P::h || kw_end <= kw_begin) {
      std::fill_n(dst, kernel_row, T(0));
      continue;
    }
    const T* src = x + ((n * P::h + ih) * P::w + iw0 + kw_begin) * ci;
    std::fill_n(dst, kw_begin * ci, T(0));
    std::copy_n(src, (kw_end - kw_begin) * ci, dst + kw_begin * ci);
    std::fill_n(dst + kw_end * ci, (G::kw - kw_end) * ci, T(0));
  }
}

// The input lines (n * H + ih), as [begin, end), that the windows of output rows [r0, r_end) read.
template <class G, class P>
std::pair<index_t, index_t> touched_lines(index_t r0, index_t r_end) {
  const index_t first_n = r0 / (P::ho * P::wo), last_n = (r_end - 1) / (P::ho * P::wo);
  const index_t first_oh = r0 % (P::ho * P::wo) / P::wo;
  const index_t last_oh = (r_end - 1) % (P::ho * P::wo) / P::wo;
  const index_t begin =
      first_n * P::h + std::clamp<index_t>(first_oh * G::stride - G::pad_top, 0, P::h - 1);
  const index_t end =
      last_n * P::h +
      std::clamp<index_t>(last_oh * G::stride - G::pad_top + G::kh - 1, 0, P::h - 1) + 1;
  return {begin, end};
}

// dx += the column-matrix rows [r0, r0 + rows) folded back onto the input pixels they were read
// from. Parallel over input lines (n, ih): only the lines this chunk's windows touch.
template <class G, class P, class T>
void col2im_add(const T* cols, index_t r0, index_t rows, T* dx) {
  constexpr index_t ci = P::ci;
  const index_t r_end = r0 + rows;
  const std::pair<index_t, index_t> lines = touched_lines<G, P>(r0, r_end);
  const index_t line_begin = lines.first, line_end = lines.second;
#pragma omp parallel for schedule(static) if (rows * P::k >= kParallelThreshold)
  for (index_t line = line_begin; line < line_end; ++line) {
    const index_t n = line / P::h, ih = line % P::h;
    for (index_t iw = 0; iw < P::w; ++iw) {
      T* dst = dx + (line * P::w + iw) * ci;
      // Only kernel offsets congruent to the padded position modulo the stride land on a
      // stride step; start there and step by the stride.
      for (index_t kh = (ih + G::pad_top) % G::stride; kh < G::kh; kh += G::stride) {
        if (kh > ih + G::pad_top) break;
        const index_t oh = (ih + G::pad_top - kh) / G::stride;
        if (oh >= P::ho) continue;
        for (index_t kw = (iw + G::pad_left) % G::stride; kw < G::kw; kw += G::stride) {
          if (kw > iw + G::pad_left) break;
          const index_t ow = (iw + G::pad_left - kw) / G::stride;
          if (ow >= P::wo) continue;
          const index_t r = (n * P::ho + oh) * P::wo + ow;
          if (r < r0 || r >= r_end) continue;
          const T* src = cols + (r - r0) * P::k + (kh * G::kw + kw) * ci;
#pragma omp simd
          for (index_t c = 0; c < ci; ++c)
            dst[c] += src[c];
        }
      }
    }
  }
}

// The rules every conv2d pass states, on either backend: P is the problem from the input's (x or
// dx) and the weights' (w or dw) shapes, YS the output's (y or dy) and BS the bias's (bias or
// db; void for the input gradient, which has none).
template <class G, class T, class P, class YS, class BS = void>
constexpr void check_conv2d() {
  static_assert(is_conv2d_geometry_v<G>,
                "ldm::ops::conv2d: G must be a Conv2dGeometry<...> (e.g. conv_same<3>)");
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "ldm::ops::conv2d: the GEMM paths take float or double");
  static_assert(P::x_is_nhwc, "ldm::ops::conv2d: x (or dx) must be NHWC, Shape<N, H, W, Cin>");
  static_assert(P::weight_matches,
                "ldm::ops::conv2d: w (or dw) must have shape Shape<Cout, G::kh, G::kw, Cin> with "
                "Cin from x");
  static_assert(std::is_void_v<BS> || std::is_same_v<BS, Shape<P::co>>,
                "ldm::ops::conv2d: bias (or db) must have shape Shape<Cout> with Cout from w");
  static_assert(P::fits, "ldm::ops::conv2d: the kernel is larger than the padded input");
  static_assert(std::is_same_v<YS, typename P::y_shape>,
                "ldm::ops::conv2d: y (or dy) must have shape conv2d_output_t<G, XShape, Cout>");
}

// Whether the direct kernels take this convolution: float with a window to slide (a pointwise
// convolution is already a plain GEMM on x). Below 8 output channels they leave vector lanes
// idle, yet still beat a GEMM that narrow on its 9x larger column matrix (1.3x at 32 -> 1).
template <class G, class T>
bool use_direct() {
#if LDM_CONV2D_DIRECT
  if constexpr (std::is_same_v<T, float> && !G::pointwise)
    return direct::isa() != direct::Isa::none;
#endif
  return false;
}

}  // namespace detail

// y = conv(x, w) + bias, overwriting y. x: Shape<N, H, W, Cin>, w: Shape<Cout, KH, KW, Cin>,
// bias: Shape<Cout>, y: conv2d_output_t<G, Shape<N, H, W, Cin>, Cout>.
template <class G, class T, class XS, class WS, class BS, class YS>
void conv2d_forward(View<const T, XS> x, View<const T, WS> w, View<const T, BS> bias,
                    View<T, YS> y) {
  using P = detail::Conv2dProblem<G, XS, WS>;
  detail::check_conv2d<G, T, P, YS, BS>();

#if LDM_CONV2D_DIRECT
  if (detail::use_direct<G, T>()) {
    if constexpr (std::is_same_v<T, float>)
      detail::direct::forward(detail::direct::problem_of<G, P>(), x.data(), w.data(), bias.data(),
                              y.data());
    return;
  }
#endif
  if constexpr (G::pointwise) {
    y = broadcast<YS, 0, 1, 2>(bias);
    gemm(host{}, Trans::no, Trans::yes, int(P::m), int(P::co), int(P::k), T(1), x.data(), w.data(),
         T(1), y.data());
  } else {
    constexpr index_t chunk = P::template chunk_rows<T>;
    detail::Workspace workspace(sizeof(T) * chunk * P::k);
    T* cols = workspace.as<T>();
    for (index_t r0 = 0; r0 < P::m; r0 += chunk) {
      const index_t rows = std::min(chunk, P::m - r0);
      // The bias goes in with the gather, so that a chunk costs one parallel region (each
      // region's fork and join is paid again on every chunk).
#pragma omp parallel for schedule(static) if (rows * P::k >= detail::kParallelThreshold)
      for (index_t i = 0; i < rows; ++i) {
        detail::im2col_row<G, P>(x.data(), r0 + i, cols + i * P::k);
        std::copy_n(bias.data(), P::co, y.data() + (r0 + i) * P::co);
      }
      gemm(host{}, Trans::no, Trans::yes, int(rows), int(P::co), int(P::k), T(1), cols, w.data(),
           T(1), y.data() + r0 * P::co);
    }
  }
}

// dx = d(loss)/dx given dy = d(loss)/dy, overwriting dx. Takes no x: the convolution is linear
// in its input. A network's first layer skips this call.
template <class G, class T, class WS, class YS, class XS>
void conv2d_backward_input(View<const T, WS> w, View<const T, YS> dy, View<T, XS> dx) {
  using P = detail::Conv2dProblem<G, XS, WS>;
  detail::check_conv2d<G, T, P, YS>();

  if constexpr (G::pointwise) {
    // With beta = 0 the BLAS never reads C, so whatever dx held (NaN included) is overwritten.
    gemm(host{}, Trans::no, Trans::no, int(P::m), int(P::k), int(P::co), T(1), dy.data(), w.data(),
         T(0), dx.data());
  } else if constexpr (G::stride == 1 && P::ci >= 8 && G::pad_top < G::kh &&
                       G::pad_bottom < G::kh && G::pad_left < G::kw && G::pad_right < G::kw) {
    // At stride 1 the input gradient is itself a convolution: of dy with the kernel flipped in
    // space and transposed in channels, padded by kernel - 1 - padding. That runs as a forward
    // convolution, whose GEMM writes dx directly, instead of a GEMM into a column matrix 9x the
    // size of dx (which the BLAS first zeroes) and a scatter back. With few input channels the
    // flipped convolution's GEMM would be too narrow to pay.
    using Flipped =
        Conv2dGeometry<G::kh, G::kw, 1, G::kh - 1 - G::pad_top, G::kh - 1 - G::pad_bottom,
                       G::kw - 1 - G::pad_left, G::kw - 1 - G::pad_right>;
    Tensor<T, Shape<P::ci, G::kh, G::kw, P::co>> flipped;
    for (index_t o = 0; o < P::co; ++o)
      for (index_t a = 0; a < G::kh; ++a)
        for (index_t b = 0; b < G::kw; ++b)
          for (index_t c = 0; c < P::ci; ++c)
            flipped(c, G::kh - 1 - a, G::kw - 1 - b, o) = w(o, a, b, c);
    const Tensor<T, Shape<P::ci>> no_bias;
    conv2d_forward<Flipped>(dy, flipped.view(), no_bias.view(), dx);
  } else {
    constexpr index_t chunk = P::template chunk_rows<T>;
    detail::Workspace workspace(sizeof(T) * chunk * P::k);
    T* cols = workspace.as<T>();
    // Stride and padding can leave input pixels that no window reads; their gradient is zero.
    dx = T(0);
    for (index_t r0 = 0; r0 < P::m; r0 += chunk) {
      const index_t rows = std::min(chunk, P::m - r0);
      gemm(host{}, Trans::no, Trans::no, int(rows), int(P::k), int(P::co), T(1),
           dy.data() + r0 * P::co, w.data(), T(0), cols);
      detail::col2im_add<G, P>(cols, r0, rows, dx.data());
    }
  }
}

// dw += d(loss)/dw and db += d(loss)/db given the forward input x and dy = d(loss)/dy.
// Accumulates, as every parameter gradient does (docs/design.md, "Ops").
template <class G, class T, class XS, class YS, class WS, class BS>
void conv2d_backward_params(View<const T, XS> x, View<const T, YS> dy, View<T, WS> dw,
                            View<T, BS> db) {
  using P = detail::Conv2dProblem<G, XS, WS>;
  detail::check_conv2d<G, T, P, YS, BS>();

  const bool direct = detail::use_direct<G, T>();
  constexpr index_t chunk = G::pointwise ? 0 : P::template chunk_rows<T>;
  detail::Workspace workspace(direct ? 0 : sizeof(T) * chunk * P::k);
  add_column_sums(host{}, dy.data(), P::m, P::co, db.data());
#if LDM_CONV2D_DIRECT
  if (direct) {
    if constexpr (std::is_same_v<T, float>)
      detail::direct::backward_weights(detail::direct::problem_of<G, P>(), x.data(), dy.data(),
                                       dw.data());
    return;
  }
#endif
  if constexpr (G::pointwise) {
    gemm(host{}, Trans::yes, Trans::no, int(P::co), int(P::k), int(P::m), T(1), dy.data(), x.data(),
         T(1), dw.data());
  } else {
    T* cols = workspace.as<T>();
    for (index_t r0 = 0; r0 < P::m; r0 += chunk) {
      const index_t rows = std::min(chunk, P::m - r0);
#pragma omp parallel for schedule(static) if (rows * P::k >= detail::kParallelThreshold)
      for (index_t i = 0; i < rows; ++i)
        detail::im2col_row<G, P>(x.data(), r0 + i, cols + i * P::k);
      gemm(host{}, Trans::yes, Trans::no, int(P::co), int(P::k), int(rows), T(1),
           dy.data() + r0 * P::co, cols, T(1), dw.data());
    }
  }
}

}  // namespace ldm::ops
