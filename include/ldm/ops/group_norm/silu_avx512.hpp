#pragma once
// The SiLU passes of silu_avx2.hpp sixteen channels at a time, for CPUs with AVX-512F (chosen at
// run time, unless LDM_CPU_ISA names a narrower set). Every lane does what an AVX2 lane does, in
// the same order (the same polynomial, FMAs, rounding and double centring; the sums are per
// channel), so the results are the AVX2 kernels' to the bit.

#include "ldm/ops/group_norm/silu_avx2.hpp"

#if LDM_GROUP_NORM_AVX2

#include <immintrin.h>

#include <cstdlib>
#include <string_view>

#include "ldm/core/shape.hpp"

#define LDM_AVX512F __attribute__((target("avx512f,avx2,fma")))

// g++ 12's AVX-512 intrinsics start from a self-initialised "undefined" vector, which its
// -Wuninitialized reports wherever they are inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace ldm::ops::detail::group_norm_avx512 {

// The CPU has AVX-512F, and LDM_CPU_ISA (which the direct convolutions check) does not ask for
// avx2 or none.
inline bool available() {
  static const bool yes = [] {
    const char* isa = std::getenv("LDM_CPU_ISA");
    const bool allowed = isa == nullptr || *isa == '\0' || std::string_view(isa) == "avx512";
    return allowed && group_norm_avx2::available() && __builtin_cpu_supports("avx512f");
  }();
  return yes;
}

// silu_avx2.hpp's exp, lane for lane.
LDM_AVX512F inline __m512 exp(__m512 x_in) {
  const __m512 x =
      _mm512_min_ps(_mm512_max_ps(x_in, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  const __m512i two_n =
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
  return _mm512_mul_ps(p, _mm512_castsi512_ps(two_n));
}

LDM_AVX512F inline __m512 sigmoid(__m512 z) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp(_mm512_sub_ps(_mm512_setzero_ps(), z))));
}

// silu_avx2.hpp's silu_grad (AVX-512F has no float OR: -|z| through the integer one).
LDM_AVX512F inline __m512 silu_grad(__m512 z) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 minus_abs = _mm512_castsi512_ps(
      _mm512_or_si512(_mm512_castps_si512(z), _mm512_set1_epi32(int(0x80000000u))));
  const __m512 t = exp(minus_abs);
  const __m512 r = _mm512_div_ps(one, _mm512_add_ps(one, t));
  const __m512 tr = _mm512_mul_ps(t, r);
  const __mmask16 positive = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_GE_OQ);
  const __m512 s = _mm512_mask_blend_ps(positive, tr, r);
  const __m512 one_minus_s = _mm512_mask_blend_ps(positive, r, tr);
  return _mm512_mul_ps(s, _mm512_fmadd_ps(z, one_minus_s, one));
}

// The lower and upper eight floats of x, in double.
struct Halves {
  __m512d lo, hi;
};
LDM_AVX512F inline Halves widen(__m512 x) {
  return {_mm512_cvtps_pd(_mm512_castps512_ps256(x)),
          _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)))};
}
LDM_AVX512F inline Halves centre(__m512 x, const double* mu, const double* inv_std) {
  const Halves wide = widen(x);
  return {
      _mm512_mul_pd(_mm512_sub_pd(wide.lo, _mm512_loadu_pd(mu)), _mm512_loadu_pd(inv_std)),
      _mm512_mul_pd(_mm512_sub_pd(wide.hi, _mm512_loadu_pd(mu + 8)), _mm512_loadu_pd(inv_std + 8))};
}
LDM_AVX512F inline __m512 to_float(__m512d lo, __m512d hi) {
  return _mm512_castpd_ps(
      _mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo))),
                         _mm256_castps_pd(_mm512_cvtpd_ps(hi)), 1));
}

// The GroupNorm output before SiLU: the centred value rounded to float, then gamma and beta.
LDM_AVX512F inline __m512 affine(Halves xhat, const float* gamma, const float* beta) {
  return _mm512_fmadd_ps(to_float(xhat.lo, xhat.hi), _mm512_loadu_ps(gamma), _mm512_loadu_ps(beta));
}

// silu_avx2.hpp's silu_forward; C is a multiple of 16.
template <index_t C>
LDM_AVX512F void silu_forward(const float* x, float* y, index_t pixels, const double* mu,
                              const double* inv_std, const float* gamma, const float* beta) {
  static_assert(C % 16 == 0);
  for (index_t p = 0; p < pixels; ++p)
    for (index_t c = 0; c < C; c += 16) {
      const __m512 z =
          affine(centre(_mm512_loadu_ps(x + p * C + c), mu + c, inv_std + c), gamma + c, beta + c);
      _mm512_storeu_ps(y + p * C + c, _mm512_mul_ps(z, sigmoid(z)));
    }
}

// silu_avx2.hpp's silu_backward_sums; C is a multiple of 16.
template <index_t C>
LDM_AVX512F void silu_backward_sums(const float* x, const float* dy, float* dz_out, index_t pixels,
                                    const double* mu, const double* inv_std, const float* gamma,
                                    const float* beta, double* a, double* b) {
  static_assert(C % 16 == 0);
  for (index_t p = 0; p < pixels; ++p)
    for (index_t c = 0; c < C; c += 16) {
      const Halves xhat = centre(_mm512_loadu_ps(x + p * C + c), mu + c, inv_std + c);
      const __m512 z = affine(xhat, gamma + c, beta + c);
      const Halves g = widen(_mm512_loadu_ps(dy + p * C + c));
      const Halves slope = widen(silu_grad(z));
      const __m512d dz_lo = _mm512_mul_pd(g.lo, slope.lo), dz_hi = _mm512_mul_pd(g.hi, slope.hi);
      _mm512_storeu_ps(dz_out + p * C + c, to_float(dz_lo, dz_hi));
      _mm512_storeu_pd(a + c, _mm512_fmadd_pd(dz_lo, xhat.lo, _mm512_loadu_pd(a + c)));
      _mm512_storeu_pd(a + c + 8, _mm512_fmadd_pd(dz_hi, xhat.hi, _mm512_loadu_pd(a + c + 8)));
      _mm512_storeu_pd(b + c, _mm512_add_pd(dz_lo, _mm512_loadu_pd(b + c)));
      _mm512_storeu_pd(b + c + 8, _mm512_add_pd(dz_hi, _mm512_loadu_pd(b + c + 8)));
    }
}

}  // namespace ldm::ops::detail::group_norm_avx512

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#undef LDM_AVX512F

#endif  // LDM_GROUP_NORM_AVX2
