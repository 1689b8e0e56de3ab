#pragma once
// Direct NHWC convolution in float for x86-64 CPUs, with AVX-512 or AVX2 + FMA chosen at run time.
//
// im2col turns a 3x3 convolution's input into a column matrix 9x its size (37 MB at 32x32x32,
// batch 32), which the BLAS then packs again: at the autoencoder's small channel counts that
// traffic, not the arithmetic, set the speed. Here each thread copies the few input lines that
// one band of output lines reads into a zero-padded buffer that stays in L1/L2, and register
// tiles of T output pixels x 2 vectors of output channels run over every (kh, kw, ci) of the
// window: two weight vectors loaded and T inputs broadcast per 2T FMAs. Borders cost nothing
// extra: the padding is zeros in the buffer. Pixel tiles run on across output lines, so an odd
// width leaves one short tile per band, not one per line.
//
// The weight gradient turns the same tiles around: R (kh, kw, ci) rows x 2 vectors of output
// channels of dw accumulate in registers over a band's pixels. Bands go to a fixed number of
// groups, each summed in band order into its own partial dw, and the partials are added in group
// order, so dw does not depend on the thread count or timing.
//
// The tile code is written once (direct_tiles.hpp) over a small set of vector operations and
// compiled twice: for 8-float AVX2 vectors (T = R = 6: 12 accumulators of the 16 ymm registers)
// and for 16-float AVX-512 vectors (T = 12, R = 8: 24 and 16 of the 32 zmm registers; 12 rows
// ran out of general registers for their offsets and were 13% slower). Each accumulator lane
// sums the same products in the same order on both, so the two give the same bits. The widest
// set the CPU has runs, unless LDM_CPU_ISA names a narrower one (docs/design.md, "Ops"), and
// AVX2 takes the convolutions with at most 8 output channels, which would fill half an AVX-512
// vector or less: there a 16-float tile loads as much as it multiplies, and ran 7-11% slower
// (Cout = 1).

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LDM_CONV2D_DIRECT 1
#else
#define LDM_CONV2D_DIRECT 0
#endif

#if LDM_CONV2D_DIRECT

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "ldm/core/error.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/host_executor.hpp"

// The tiles' loops over registers must unroll fully, or GCC keeps the accumulator arrays in
// memory; nvcc's front end, which also reads these host functions, does not know GCC's pragma.
#ifdef __CUDACC__
#pragma nv_diag_suppress 1675
#endif

namespace ldm::ops::detail::direct {

// The instruction sets the kernels come in, each a superset of the one before; `none` leaves
// float convolutions on im2col + BLAS.
enum class Isa { none, avx2, avx512 };

inline constexpr std::array<std::pair<std::string_view, Isa>, 3> kIsaNames = {
    {{"none", Isa::none}, {"avx2", Isa::avx2}, {"avx512", Isa::avx512}}};

inline std::string_view isa_name(Isa isa) {
  return kIsaNames[std::size_t(isa)].first;
}

// The widest set this CPU (and its operating system) supports.
inline Isa widest_isa() {
  static const Isa isa = [] {
    const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2 && __builtin_cpu_supports("avx512f")) return Isa::avx512;
    return avx2 ? Isa::avx2 : Isa::none;
  }();
  return isa;
}

// The set LDM_CPU_ISA asks for (`value`, null when unset): the widest when unset or empty.
inline Isa parse_isa(const char* value) {
  if (value == nullptr || *value == '\0') return widest_isa();
  for (const auto& [name, isa] : kIsaNames) {
    if (name != value) continue;
    if (isa > widest_isa())
      fail("LDM_CPU_ISA=", value, ": this CPU supports at most ", isa_name(widest_isa()));
    return isa;
  }
  fail_expected("LDM_CPU_ISA", "avx512, avx2 or none (or unset: the widest the CPU has)",
                std::string("\"") + value + "\"");
}

// The set the kernels use: read from LDM_CPU_ISA once; tests and benchmarks store others.
inline std::atomic<Isa>& selected_isa() {
  static std::atomic<Isa> isa{parse_isa(std::getenv("LDM_CPU_ISA"))};
  return isa;
}

inline Isa isa() {
  return selected_isa().load(std::memory_order_relaxed);
}

// One convolution's sizes as the kernels take them: run-time values, so that the tile code is
// compiled once per instruction set rather than once per shape.
struct Layout {
  index_t ci, co;
  index_t k;                  // kh * kw * ci: one window
  index_t taps;               // kh * kw
  const index_t* tap_offset;  // [taps]: where tap t reads, from a pixel's window origin
  index_t ld;                 // the row length of the partial dw: co rounded up to 16
};

// The 8-float and 16-float vector operations the tiles use beyond the vector types' own
// operators (vec{} is zero, + adds), and their tiles' sizes: output pixels per forward tile,
// (kh, kw, ci) rows per weight-gradient tile. `first(n)` is the mask of lanes [0, n), for a
// channel block's last, partial vector.
#define LDM_DIRECT_AVX2 __attribute__((target("avx2,fma")))
#define LDM_DIRECT_AVX512 __attribute__((target("avx512f,avx2,fma")))

struct Avx2 {
  using vec = __m256;
  using mask = __m256i;
  static constexpr index_t lanes = 8, pixels = 6, rows = 6;
  LDM_DIRECT_AVX2 static vec load(const float* p) { return _mm256_loadu_ps(p); }
  LDM_DIRECT_AVX2 static vec broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  LDM_DIRECT_AVX2 static vec fmadd(vec a, vec b, vec c) { return _mm256_fmadd_ps(a, b, c); }
  LDM_DIRECT_AVX2 static void store(float* p, vec v) { _mm256_storeu_ps(p, v); }
  LDM_DIRECT_AVX2 static mask first(index_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  LDM_DIRECT_AVX2 static vec load(const float* p, mask m) { return _mm256_maskload_ps(p, m); }
  LDM_DIRECT_AVX2 static void store(float* p, vec v, mask m) { _mm256_maskstore_ps(p, m, v); }
};

struct Avx512 {
  using vec = __m512;
  using mask = __mmask16;
  static constexpr index_t lanes = 16, pixels = 12, rows = 8;
  LDM_DIRECT_AVX512 static vec load(const float* p) { return _mm512_loadu_ps(p); }
  LDM_DIRECT_AVX512 static vec broadcast(const float* p) { return _mm512_set1_ps(*p); }
  LDM_DIRECT_AVX512 static vec fmadd(vec a, vec b, vec c) { return _mm512_fmadd_ps(a, b, c); }
  LDM_DIRECT_AVX512 static void store(float* p, vec v) { _mm512_storeu_ps(p, v); }
  static mask first(index_t n) { return mask((1u << n) - 1); }
  LDM_DIRECT_AVX512 static vec load(const float* p, mask m) { return _mm512_maskz_loadu_ps(m, p); }
  LDM_DIRECT_AVX512 static void store(float* p, vec v, mask m) { _mm512_mask_storeu_ps(p, m, v); }
};

// The tiles and the band loops, once per instruction set: namespaces avx2 and avx512, each with
// a struct Kernels.
#define LDM_DIRECT_TARGET LDM_DIRECT_AVX2
namespace avx2 {
using V = Avx2;
#include "ldm/ops/conv2d/direct_tiles.hpp"  // IWYU pragma: keep
}  // namespace avx2
#undef LDM_DIRECT_TARGET

#define LDM_DIRECT_TARGET LDM_DIRECT_AVX512
namespace avx512 {
using V = Avx512;
#include "ldm/ops/conv2d/direct_tiles.hpp"  // IWYU pragma: keep
}  // namespace avx512
#undef LDM_DIRECT_TARGET

// The sizes the direct path works in: the zero-padded input width, the taps of the window, the
// output lines per band (about 96 pixels, 16 full AVX2 tiles at width 32) and the input lines
// such a band reads. K: the instruction set's Kernels. The scratch memory is what
// ops/conv2d_scratch.hpp counts for the memory plans: the packed weights at most
// (co rounded up to 16) x k, partial weight gradients of rows co rounded up to 16, and per
// thread one band's buffer.
template <class K, class G, class P>
struct Direct {
  static constexpr index_t wp = P::w + G::pad_left + G::pad_right;
  static constexpr index_t taps = G::kh * G::kw;
  static constexpr index_t k = taps * P::ci;
  // Output channels as packed: whole vectors. A block is K::block channels, the last one narrower
  // where its channels fit one vector.
  static constexpr index_t co_vectors = (P::co + K::lanes - 1) / K::lanes * K::lanes;
  static constexpr index_t ld = (P::co + 15) / 16 * 16;
  static constexpr index_t band_lines = std::clamp<index_t>((96 + P::wo - 1) / P::wo, 1, P::ho);
  static constexpr index_t bands = (P::ho + band_lines - 1) / band_lines;
  static constexpr index_t items = P::n * bands;
  static constexpr index_t buffer_lines = (band_lines - 1) * G::stride + G::kh;
  static constexpr index_t buffer_floats = buffer_lines * wp * P::ci;
  static constexpr index_t band_pixels = band_lines * P::wo;
  static constexpr bool parallel = P::m * P::k >= expr::executor<host>::parallel_threshold;

  // Where tap (kh, kw) of an output pixel reads, relative to the pixel's window origin.
  static constexpr std::array<index_t, taps> tap_offsets() {
    std::array<index_t, taps> offsets{};
    for (index_t t = 0; t < taps; ++t)
      offsets[t] = (t / G::kw * wp + t % G::kw) * P::ci;
    return offsets;
  }
  static constexpr std::array<index_t, taps> tap_offset = tap_offsets();
  static constexpr Layout layout = {P::ci, P::co, k, taps, tap_offset.data(), ld};

  // window[p]: where the window of a band's output pixel p begins in the band's buffer buf (the
  // same for every band). On the thread's stack: 8 bytes per pixel of a band.
  using Windows = std::array<const float*, band_pixels>;
  static Windows windows(const float* buf) {
    Windows window;
    for (index_t p = 0; p < band_pixels; ++p)
      window[p] = buf + (p / P::wo * wp + p % P::wo) * G::stride * P::ci;
    return window;
  }
};

// The input lines band `band` of image n reads, zero-padded, into buf; lines in the padding are
// zeros.
template <class K, class G, class P>
void fill_band(const float* x, index_t n, index_t band, float* buf) {
  using D = Direct<K, G, P>;
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

// y = conv(x, w) + bias for float NHWC; w is [Cout, KH, KW, Cin].
template <class K, class G, class P>
void forward(const float* x, const float* w, const float* bias, float* y) {
  using D = Direct<K, G, P>;
  constexpr index_t block = K::block;
  // Nothing between allocate and release throws.
  const std::size_t packed = std::size_t(D::co_vectors * D::k + D::co_vectors);
  float* const space = static_cast<float*>(memory<host>::allocate(
      sizeof(float) * (packed + std::size_t(omp_get_max_threads()) * D::buffer_floats)));
  // Weights packed [block][kh][kw][ci][the block's channels], bias padded to whole vectors.
  float* const wpack = space;
  float* const bpack = space + D::co_vectors * D::k;
  for (index_t o = 0; o < D::co_vectors; ++o) {
    const index_t b = o / block, width = std::min(block, D::co_vectors - b * block);
    float* dst = wpack + b * block * D::k + o % block;
    for (index_t q = 0; q < D::k; ++q)
      dst[q * width] = o < P::co ? w[o * D::k + q] : 0.0f;
    bpack[o] = o < P::co ? bias[o] : 0.0f;
  }
#pragma omp parallel if (D::parallel)
  {
    float* const buf = space + packed + std::size_t(omp_get_thread_num()) * D::buffer_floats;
    const typename D::Windows window = D::windows(buf);
#pragma omp for schedule(static)
    for (index_t item = 0; item < D::items; ++item) {
      const index_t n = item / D::bands, band = item % D::bands;
      const index_t oh0 = band * D::band_lines;
      const index_t lines = std::min(D::band_lines, P::ho - oh0);
      fill_band<K, G, P>(x, n, band, buf);
      K::forward_band(D::layout, window.data(), lines * P::wo, wpack, bpack,
                      y + (n * P::ho + oh0) * P::wo * P::co);
    }
  }
  memory<host>::release(space);
}

// dw += d(loss)/dw for float NHWC; dw is [Cout, KH, KW, Cin].
template <class K, class G, class P>
void backward_weights(const float* x, const float* dy, float* dw) {
  using D = Direct<K, G, P>;
  // A count fixed by the problem alone, so the summation order is too.
  constexpr index_t groups = std::min<index_t>(D::items, 8);
  constexpr std::size_t part_floats = std::size_t(D::k * D::ld);
  float* const space = static_cast<float*>(memory<host>::allocate(
      sizeof(float) *
      (groups * part_floats + std::size_t(omp_get_max_threads()) * D::buffer_floats)));
#pragma omp parallel if (D::parallel)
  {
    float* const buf =
        space + groups * part_floats + std::size_t(omp_get_thread_num()) * D::buffer_floats;
    const typename D::Windows window = D::windows(buf);
#pragma omp for schedule(static)
    for (index_t g = 0; g < groups; ++g) {
      float* part = space + g * part_floats;
      std::fill_n(part, part_floats, 0.0f);
      for (index_t item = g * D::items / groups; item < (g + 1) * D::items / groups; ++item) {
        const index_t n = item / D::bands, band = item % D::bands;
        const index_t oh0 = band * D::band_lines;
        fill_band<K, G, P>(x, n, band, buf);
        K::weight_band(D::layout, window.data(), std::min(D::band_lines, P::ho - oh0) * P::wo,
                       dy + (n * P::ho + oh0) * P::wo * P::co, part);
      }
    }
#pragma omp for schedule(static)
    for (index_t q = 0; q < D::k; ++q)
      for (index_t o = 0; o < P::co; ++o) {
        float total = 0;
        for (index_t g = 0; g < groups; ++g)
          total += space[g * part_floats + q * D::ld + o];
        dw[o * D::k + q] += total;
      }
  }
  memory<host>::release(space);
}

// The entry points for conv2d/host.hpp: the selected instruction set's kernels (not `none`),
// AVX2's where Cout fits one AVX2 vector.
template <class P>
bool use_avx512() {
  return isa() == Isa::avx512 && P::co > Avx2::lanes;
}

template <class G, class P>
void forward(const float* x, const float* w, const float* bias, float* y) {
  if (use_avx512<P>())
    forward<avx512::Kernels, G, P>(x, w, bias, y);
  else
    forward<avx2::Kernels, G, P>(x, w, bias, y);
}

template <class G, class P>
void backward_weights(const float* x, const float* dy, float* dw) {
  if (use_avx512<P>())
    backward_weights<avx512::Kernels, G, P>(x, dy, dw);
  else
    backward_weights<avx2::Kernels, G, P>(x, dy, dw);
}

}  // namespace ldm::ops::detail::direct

#ifdef __CUDACC__
#pragma nv_diag_default 1675
#endif

#undef LDM_DIRECT_AVX2
#undef LDM_DIRECT_AVX512

#endif  // LDM_CONV2D_DIRECT
