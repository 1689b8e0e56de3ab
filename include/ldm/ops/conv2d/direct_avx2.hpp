#pragma once
// Direct NHWC convolution in float for x86-64 CPUs with AVX2 and FMA, chosen at run time.
//
// im2col turns a 3x3 convolution's input into a column matrix 9x its size (37 MB at 32x32x32,
// batch 32), which the BLAS then packs again: at the autoencoder's small channel counts that
// traffic, not the arithmetic, set the speed. Here each thread copies the few input lines that
// one band of output lines reads into a zero-padded buffer that stays in L1/L2, and register
// tiles of 6 output pixels x 16 output channels (12 accumulators) run over every (kh, kw, ci)
// of the window: two weight vectors loaded and six inputs broadcast per 12 FMAs. Borders cost
// nothing extra: the padding is zeros in the buffer. Pixel tiles run on across output lines, so
// an odd width leaves one short tile per band, not one per line.
//
// The weight gradient turns the same tiles around: 6 (kh, kw, ci) rows x 16 output channels of dw
// accumulate in registers over a band's pixels. Bands go to a fixed number of groups, each summed
// in band order into its own partial dw, and the partials are added in group order, so dw does
// not depend on the thread count or timing.

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LDM_CONV2D_AVX2 1
#else
#define LDM_CONV2D_AVX2 0
#endif

#if LDM_CONV2D_AVX2

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <utility>

#include "ldm/core/shape.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/host_executor.hpp"

#define LDM_AVX2_FMA __attribute__((target("avx2,fma")))

// The tiles' loops over registers must unroll fully, or GCC keeps the accumulator arrays in
// memory; nvcc's front end, which also reads these host functions, does not know GCC's pragma.
#ifdef __CUDACC__
#pragma nv_diag_suppress 1675
#endif

namespace ldm::ops::detail::avx2 {

inline bool available() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// Output channels per register tile (two 8-float vectors), and the tile's other extent: output
// pixels in the forward pass, (kh, kw, ci) rows in the weight gradient. 12 accumulators plus two
// weight vectors and a broadcast fill 15 of the 16 ymm registers.
inline constexpr index_t kLanes = 8, kBlock = 16, kTile = 6;

// Lanes [0, n) set: the store mask of a channel block's last, partial vector.
LDM_AVX2_FMA inline __m256i first_lanes(index_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// The sizes the direct path works in: the zero-padded input width, the taps of the window, the
// output lines per band (about 96 pixels, 16 full tiles at width 32) and the input lines such a
// band reads.
template <class G, class P>
struct Direct {
  static constexpr index_t wp = P::w + G::pad_left + G::pad_right;
  static constexpr index_t taps = G::kh * G::kw;
  static constexpr index_t k = taps * P::ci;
  static constexpr index_t blocks = (P::co + kBlock - 1) / kBlock;
  static constexpr index_t co_pad = blocks * kBlock;
  static constexpr index_t band_lines = std::clamp<index_t>((96 + P::wo - 1) / P::wo, 1, P::ho);
  static constexpr index_t bands = (P::ho + band_lines - 1) / band_lines;
  static constexpr index_t items = P::n * bands;
  static constexpr index_t buffer_lines = (band_lines - 1) * G::stride + G::kh;
  static constexpr index_t buffer_floats = buffer_lines * wp * P::ci;
  static constexpr bool parallel = P::m * P::k >= expr::executor<host>::parallel_threshold;
  // Where tap (kh, kw) of an output pixel reads, relative to the pixel's window origin.
  static constexpr index_t tap_offset(index_t tap) {
    return (tap / G::kw * wp + tap % G::kw) * P::ci;
  }
  // The window origin of pixel p of a band, in the band's buffer.
  static constexpr index_t origin(index_t p) {
    return (p / P::wo * G::stride * wp + p % P::wo * G::stride) * P::ci;
  }
};

// The input lines band `band` of image n reads, zero-padded, into buf; lines in the padding are
// zeros.
template <class G, class P>
void fill_band(const float* x, index_t n, index_t band, float* buf) {
  using D = Direct<G, P>;
  constexpr index_t line = D::wp * P::ci;
  const index_t ih0 = band * D::band_lines * G::stride - G::pad_top;
  const index_t lines =
      std::min(D::buffer_lines, (P::ho - band * D::band_lines - 1) * G::stride + G::kh);
  for (index_t r = 0; r < lines; ++r) {
    float* dst = buf + r * line;
    const index_t ih = ih0 + r;
    if (ih < 0 || ih >= P::h) {
      std::fill_n(dst, line, 0.0f);
      continue;
    }
    std::fill_n(dst, G::pad_left * P::ci, 0.0f);
    std::copy_n(x + (n * P::h + ih) * P::w * P::ci, P::w * P::ci, dst + G::pad_left * P::ci);
    std::fill_n(dst + (G::pad_left + P::w) * P::ci, G::pad_right * P::ci, 0.0f);
  }
}

// Output pixels in[0..PX) (window origins) x CV vectors of channels: acc = bias + the window
// sums, stored to out[p] for the first `valid` channels.
template <index_t CV, index_t PX>
LDM_AVX2_FMA void forward_tile(const float* const* in, const index_t* tap_offset, index_t taps,
                               index_t ci, const float* w, const float* bias, float* const* out,
                               index_t valid) {
  __m256 acc[PX][CV];
#pragma GCC unroll 2
  for (index_t v = 0; v < CV; ++v) {
    const __m256 b = _mm256_loadu_ps(bias + v * kLanes);
#pragma GCC unroll 6
    for (index_t p = 0; p < PX; ++p)
      acc[p][v] = b;
  }
  for (index_t t = 0; t < taps; ++t) {
    const float* src[PX];
#pragma GCC unroll 6
    for (index_t p = 0; p < PX; ++p)
      src[p] = in[p] + tap_offset[t];
    const float* wt = w + t * ci * kBlock;
    for (index_t c = 0; c < ci; ++c) {
      __m256 wv[CV];
#pragma GCC unroll 2
      for (index_t v = 0; v < CV; ++v)
        wv[v] = _mm256_loadu_ps(wt + c * kBlock + v * kLanes);
#pragma GCC unroll 6
      for (index_t p = 0; p < PX; ++p) {
        const __m256 b = _mm256_broadcast_ss(src[p] + c);
#pragma GCC unroll 2
        for (index_t v = 0; v < CV; ++v)
          acc[p][v] = _mm256_fmadd_ps(b, wv[v], acc[p][v]);
      }
    }
  }
#pragma GCC unroll 2
  for (index_t v = 0; v < CV; ++v) {
    const index_t lanes = valid - v * kLanes;
    if (lanes >= kLanes) {
#pragma GCC unroll 6
      for (index_t p = 0; p < PX; ++p)
        _mm256_storeu_ps(out[p] + v * kLanes, acc[p][v]);
    } else {
      const __m256i mask = first_lanes(lanes);
#pragma GCC unroll 6
      for (index_t p = 0; p < PX; ++p)
        _mm256_maskstore_ps(out[p] + v * kLanes, mask, acc[p][v]);
    }
  }
}

// The tile shapes by channel vectors and pixels: a band's last tile is short.
using ForwardTile = void (*)(const float* const*, const index_t*, index_t, index_t, const float*,
                             const float*, float* const*, index_t);

// One band of output lines from its filled buffer. w is packed [block][kh][kw][ci][16], bias
// padded to whole blocks; y_band points at the band's first output pixel.
template <class G, class P>
LDM_AVX2_FMA void forward_band(const float* buf, index_t pixels, const float* w, const float* bias,
                               float* y_band) {
  using D = Direct<G, P>;
  static constexpr ForwardTile tiles[2][kTile] = {
      {forward_tile<1, 1>, forward_tile<1, 2>, forward_tile<1, 3>, forward_tile<1, 4>,
       forward_tile<1, 5>, forward_tile<1, 6>},
      {forward_tile<2, 1>, forward_tile<2, 2>, forward_tile<2, 3>, forward_tile<2, 4>,
       forward_tile<2, 5>, forward_tile<2, 6>}};
  index_t tap_offset[D::taps];
  for (index_t t = 0; t < D::taps; ++t)
    tap_offset[t] = D::tap_offset(t);
  for (index_t b = 0; b < D::blocks; ++b) {
    const index_t valid = std::min(kBlock, P::co - b * kBlock);
    const float* wb = w + b * kBlock * D::k;
    for (index_t p0 = 0; p0 < pixels; p0 += kTile) {
      const float* in[kTile];
      float* out[kTile];
      const index_t px = std::min(kTile, pixels - p0);
      for (index_t i = 0; i < px; ++i) {
        in[i] = buf + D::origin(p0 + i);
        out[i] = y_band + (p0 + i) * P::co + b * kBlock;
      }
      tiles[valid > kLanes][px - 1](in, tap_offset, D::taps, P::ci, wb, bias + b * kBlock, out,
                                    valid);
    }
  }
}

// y = conv(x, w) + bias for float NHWC; w is [Cout, KH, KW, Cin].
template <class G, class P>
void forward(const float* x, const float* w, const float* bias, float* y) {
  using D = Direct<G, P>;
  // Nothing between allocate and release throws.
  const int threads = omp_get_max_threads();
  const std::size_t packed = std::size_t(D::co_pad * D::k + D::co_pad);
  const std::size_t buffers = std::size_t(threads) * std::size_t(D::buffer_floats);
  float* const space =
      static_cast<float*>(memory<host>::allocate(sizeof(float) * (packed + buffers)));
  float* const wpack = space;
  float* const bpack = space + D::co_pad * D::k;
  for (index_t o = 0; o < D::co_pad; ++o) {
    const index_t b = o / kBlock, j = o % kBlock;
    float* dst = wpack + b * kBlock * D::k + j;
    for (index_t q = 0; q < D::k; ++q)
      dst[q * kBlock] = o < P::co ? w[o * D::k + q] : 0.0f;
    bpack[o] = o < P::co ? bias[o] : 0.0f;
  }
#pragma omp parallel if (D::parallel)
  {
    float* buf = space + packed + std::size_t(omp_get_thread_num()) * D::buffer_floats;
#pragma omp for schedule(static)
    for (index_t item = 0; item < D::items; ++item) {
      const index_t n = item / D::bands, band = item % D::bands;
      const index_t oh0 = band * D::band_lines;
      const index_t lines = std::min(D::band_lines, P::ho - oh0);
      fill_band<G, P>(x, n, band, buf);
      forward_band<G, P>(buf, lines * P::wo, wpack, bpack, y + (n * P::ho + oh0) * P::wo * P::co);
    }
  }
  memory<host>::release(space);
}

// acc[j][.] = sum over a band's pixels of x(row j of the tile) * dy, for RC rows (kh, kw, ci)
// at offsets row_offset[j] from each pixel's window origin and CV vectors of channels; added to
// part[j * ld]. Masked: the block has fewer than 8 * CV channels, so dy is read with a mask
// rather than past the next pixel's channels (or the end of dy).
template <index_t CV, index_t RC, bool Masked, class G, class P>
LDM_AVX2_FMA void weight_tile(const float* buf, const index_t* row_offset, index_t lines,
                              const float* dy, index_t valid, float* part) {
  using D = Direct<G, P>;
  __m256 acc[RC][CV];
#pragma GCC unroll 6
  for (index_t j = 0; j < RC; ++j)
#pragma GCC unroll 2
    for (index_t v = 0; v < CV; ++v)
      acc[j][v] = _mm256_setzero_ps();
  const __m256i mask = first_lanes(valid - (CV - 1) * kLanes);
  for (index_t r = 0; r < lines; ++r) {
    const float* line = buf + r * G::stride * D::wp * P::ci;
    const float* dline = dy + r * P::wo * P::co;
    const float* src[RC];
#pragma GCC unroll 6
    for (index_t j = 0; j < RC; ++j)
      src[j] = line + row_offset[j];
    for (index_t ow = 0; ow < P::wo; ++ow) {
      __m256 d[CV];
#pragma GCC unroll 2
      for (index_t v = 0; v < CV; ++v)
        d[v] = Masked && v == CV - 1 ? _mm256_maskload_ps(dline + ow * P::co + v * kLanes, mask)
                                     : _mm256_loadu_ps(dline + ow * P::co + v * kLanes);
#pragma GCC unroll 6
      for (index_t j = 0; j < RC; ++j) {
        const __m256 b = _mm256_broadcast_ss(src[j] + ow * G::stride * P::ci);
#pragma GCC unroll 2
        for (index_t v = 0; v < CV; ++v)
          acc[j][v] = _mm256_fmadd_ps(b, d[v], acc[j][v]);
      }
    }
  }
#pragma GCC unroll 6
  for (index_t j = 0; j < RC; ++j)
#pragma GCC unroll 2
    for (index_t v = 0; v < CV; ++v) {
      float* dst = part + j * D::co_pad + v * kLanes;
      _mm256_storeu_ps(dst, _mm256_add_ps(_mm256_loadu_ps(dst), acc[j][v]));
    }
}

// The tile shapes by channel vectors, mask and rows: the last tile of rows is short.
using WeightTile = void (*)(const float*, const index_t*, index_t, const float*, index_t, float*);
template <index_t CV, bool Masked, class G, class P, std::size_t... R>
constexpr std::array<WeightTile, kTile> weight_tiles(std::index_sequence<R...>) {
  return {weight_tile<CV, index_t(R) + 1, Masked, G, P>...};
}

// part[(kh, kw, ci)][co] += one band's contribution to dw; dy_band points at the band's first
// output pixel.
template <class G, class P>
LDM_AVX2_FMA void weight_band(const float* buf, index_t lines, const float* dy_band, float* part) {
  using D = Direct<G, P>;
  constexpr auto rows = std::make_index_sequence<kTile>();
  static constexpr std::array<WeightTile, kTile> tiles[2][2] = {
      {weight_tiles<1, false, G, P>(rows), weight_tiles<2, false, G, P>(rows)},
      {weight_tiles<1, true, G, P>(rows), weight_tiles<2, true, G, P>(rows)}};
  for (index_t q0 = 0; q0 < D::k; q0 += kTile) {
    const index_t count = std::min(kTile, D::k - q0);
    index_t row_offset[kTile];
    for (index_t j = 0; j < count; ++j)
      row_offset[j] = D::tap_offset((q0 + j) / P::ci) + (q0 + j) % P::ci;
    for (index_t b = 0; b < D::blocks; ++b) {
      const index_t valid = std::min(kBlock, P::co - b * kBlock);
      const float* dyb = dy_band + b * kBlock;
      float* pb = part + q0 * D::co_pad + b * kBlock;
      const bool masked = valid % kLanes != 0;
      tiles[masked][valid > kLanes][count - 1](buf, row_offset, lines, dyb, valid, pb);
    }
  }
}

// dw += d(loss)/dw for float NHWC; dw is [Cout, KH, KW, Cin].
template <class G, class P>
void backward_weights(const float* x, const float* dy, float* dw) {
  using D = Direct<G, P>;
  // A count fixed by the problem alone, so the summation order is too.
  constexpr index_t groups = std::min<index_t>(D::items, 8);
  constexpr std::size_t part_floats = std::size_t(D::k * D::co_pad);
  const int threads = omp_get_max_threads();
  const std::size_t buffers = std::size_t(threads) * std::size_t(D::buffer_floats);
  float* const space =
      static_cast<float*>(memory<host>::allocate(sizeof(float) * (groups * part_floats + buffers)));
#pragma omp parallel if (D::parallel)
  {
    float* buf =
        space + groups * part_floats + std::size_t(omp_get_thread_num()) * D::buffer_floats;
#pragma omp for schedule(static)
    for (index_t g = 0; g < groups; ++g) {
      float* part = space + g * part_floats;
      std::fill_n(part, part_floats, 0.0f);
      for (index_t item = g * D::items / groups; item < (g + 1) * D::items / groups; ++item) {
        const index_t n = item / D::bands, band = item % D::bands;
        const index_t oh0 = band * D::band_lines;
        fill_band<G, P>(x, n, band, buf);
        weight_band<G, P>(buf, std::min(D::band_lines, P::ho - oh0),
                          dy + (n * P::ho + oh0) * P::wo * P::co, part);
      }
    }
#pragma omp for schedule(static)
    for (index_t q = 0; q < D::k; ++q)
      for (index_t o = 0; o < P::co; ++o) {
        float total = 0;
        for (index_t g = 0; g < groups; ++g)
          total += space[g * part_floats + q * D::co_pad + o];
        dw[o * D::k + q] += total;
      }
  }
  memory<host>::release(space);
}

}  // namespace ldm::ops::detail::avx2

#ifdef __CUDACC__
#pragma nv_diag_default 1675
#endif

#undef LDM_AVX2_FMA

#endif  // LDM_CONV2D_AVX2
