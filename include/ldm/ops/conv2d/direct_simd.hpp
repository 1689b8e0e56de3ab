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
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/ops/conv2d/direct_bands.hpp"

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

// Where tap (kh, kw) of an output pixel reads, relative to the pixel's window origin.
inline std::vector<index_t> tap_offsets(const Problem& p, const Bands& b) {
  std::vector<index_t> offsets(std::size_t(b.taps));
  for (index_t t = 0; t < b.taps; ++t)
    offsets[std::size_t(t)] = (t / p.kw * b.wp + t % p.kw) * p.ci;
  return offsets;
}

// window[q]: where the window of a band's output pixel q begins in the band's buffer buf (the
// same for every band).
inline std::vector<const float*> windows(const Problem& p, const Bands& b, const float* buf) {
  std::vector<const float*> window(std::size_t(b.band_pixels));
  for (index_t q = 0; q < b.band_pixels; ++q)
    window[std::size_t(q)] = buf + (q / p.wo * b.wp + q % p.wo) * p.stride * p.ci;
  return window;
}

// Whether a call is worth the OpenMP team: the same threshold as the executors' loops.
inline bool parallel(const Problem& p, const Bands& b) {
  return p.n * p.ho * p.wo * b.k >= expr::executor<host>::parallel_threshold;
}

// The input lines band `band` of image n reads, zero-padded, into buf; lines in the padding are
// zeros.
inline void fill_band(const Problem& p, const Bands& b, const float* x, index_t n, index_t band,
                      float* buf) {
  const index_t line = b.wp * p.ci;
  const index_t ih0 = band * b.band_lines * p.stride - p.pad_top;
  const index_t lines =
      std::min(b.buffer_lines, (p.ho - band * b.band_lines - 1) * p.stride + p.kh);
  for (index_t r = 0; r < lines; ++r) {
    float* dst = buf + r * line;
    const index_t ih = ih0 + r;
    if (ih < 0 || ih >= p.h) {
      std::fill_n(dst, line, 0.0f);
      continue;
    }
    std::fill_n(dst, p.pad_left * p.ci, 0.0f);
    std::copy_n(x + (n * p.h + ih) * p.w * p.ci, p.w * p.ci, dst + p.pad_left * p.ci);
    std::fill_n(dst + (p.pad_left + p.w) * p.ci, p.pad_right * p.ci, 0.0f);
  }
}

// y = conv(x, w) + bias for float NHWC; w is [Cout, KH, KW, Cin]. K: the instruction set's
// Kernels. The scratch memory is what ops/conv2d_scratch.hpp counts for the memory plans.
template <class K>
void forward(const Problem& p, const float* x, const float* w, const float* bias, float* y) {
  const Bands b(p);
  const index_t block = K::block, co_vectors = packed_channels(p.co, K::lanes);
  const std::vector<index_t> taps = tap_offsets(p, b);
  const Layout layout = {p.ci, p.co, b.k, b.taps, taps.data(), b.ld};
  // Nothing between allocate and release throws.
  const std::size_t packed = std::size_t(co_vectors * b.k + co_vectors);
  float* const space = static_cast<float*>(
      memory<host>::allocate(sizeof(float) * (packed + std::size_t(omp_get_max_threads()) *
                                                           std::size_t(b.buffer_floats))));
  // Weights packed [block][kh][kw][ci][the block's channels], bias padded to whole vectors.
  float* const wpack = space;
  float* const bpack = space + co_vectors * b.k;
  for (index_t o = 0; o < co_vectors; ++o) {
    const index_t blk = o / block, width = std::min(block, co_vectors - blk * block);
    float* dst = wpack + blk * block * b.k + o % block;
    for (index_t q = 0; q < b.k; ++q)
      dst[q * width] = o < p.co ? w[o * b.k + q] : 0.0f;
    bpack[o] = o < p.co ? bias[o] : 0.0f;
  }
#pragma omp parallel if (parallel(p, b))
  {
    float* const buf = space + packed + std::size_t(omp_get_thread_num()) * b.buffer_floats;
    const std::vector<const float*> window = windows(p, b, buf);
#pragma omp for schedule(static)
    for (index_t item = 0; item < b.items; ++item) {
      const index_t n = item / b.bands, band = item % b.bands;
      const index_t oh0 = band * b.band_lines;
      const index_t lines = std::min(b.band_lines, p.ho - oh0);
      fill_band(p, b, x, n, band, buf);
      K::forward_band(layout, window.data(), lines * p.wo, wpack, bpack,
                      y + (n * p.ho + oh0) * p.wo * p.co);
    }
  }
  memory<host>::release(space);
}

// dw += d(loss)/dw for float NHWC; dw is [Cout, KH, KW, Cin].
template <class K>
void backward_weights(const Problem& p, const float* x, const float* dy, float* dw) {
  const Bands b(p);
  const std::vector<index_t> taps = tap_offsets(p, b);
  const Layout layout = {p.ci, p.co, b.k, b.taps, taps.data(), b.ld};
  const index_t groups = b.weight_groups();
  const std::size_t part_floats = std::size_t(b.k * b.ld);
  float* const space = static_cast<float*>(memory<host>::allocate(
      sizeof(float) * (std::size_t(groups) * part_floats +
                       std::size_t(omp_get_max_threads()) * std::size_t(b.buffer_floats))));
#pragma omp parallel if (parallel(p, b))
  {
    float* const buf = space + std::size_t(groups) * part_floats +
                       std::size_t(omp_get_thread_num()) * std::size_t(b.buffer_floats);
    const std::vector<const float*> window = windows(p, b, buf);
#pragma omp for schedule(static)
    for (index_t g = 0; g < groups; ++g) {
      float* part = space + std::size_t(g) * part_floats;
      std::fill_n(part, part_floats, 0.0f);
      for (index_t item = g * b.items / groups; item < (g + 1) * b.items / groups; ++item) {
        const index_t n = item / b.bands, band = item % b.bands;
        const index_t oh0 = band * b.band_lines;
        fill_band(p, b, x, n, band, buf);
        K::weight_band(layout, window.data(), std::min(b.band_lines, p.ho - oh0) * p.wo,
                       dy + (n * p.ho + oh0) * p.wo * p.co, part);
      }
    }
#pragma omp for schedule(static)
    for (index_t q = 0; q < b.k; ++q)
      for (index_t o = 0; o < p.co; ++o) {
        float total = 0;
        for (index_t g = 0; g < groups; ++g)
          total += space[std::size_t(g) * part_floats + std::size_t(q * b.ld + o)];
        dw[o * b.k + q] += total;
      }
  }
  memory<host>::release(space);
}

// The entry points for conv2d/host.hpp: the selected instruction set's kernels (not `none`),
// AVX2's where Cout fits one AVX2 vector.
inline bool use_avx512(const Problem& p) {
  return isa() == Isa::avx512 && p.co > Avx2::lanes;
}

inline void forward(const Problem& p, const float* x, const float* w, const float* bias, float* y) {
  if (use_avx512(p))
    forward<avx512::Kernels>(p, x, w, bias, y);
  else
    forward<avx2::Kernels>(p, x, w, bias, y);
}

inline void backward_weights(const Problem& p, const float* x, const float* dy, float* dw) {
  if (use_avx512(p))
    backward_weights<avx512::Kernels>(p, x, dy, dw);
  else
    backward_weights<avx2::Kernels>(p, x, dy, dw);
}

}  // namespace ldm::ops::detail::direct

#ifdef __CUDACC__
#pragma nv_diag_default 1675
#endif

#undef LDM_DIRECT_AVX2
#undef LDM_DIRECT_AVX512

#endif  // LDM_CONV2D_DIRECT
