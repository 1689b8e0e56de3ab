#pragma once
// The SiLU passes of the fused GroupNorm + SiLU in float, eight channels at a time, for x86-64
// CPUs with AVX2 and FMA (chosen at run time). libm's expf is one call per element: with it the
// fused backward was about a sixth of the autoencoder's training step on the host. The centring
// stays in double, as in the portable loops (host.hpp).

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define LDM_GROUP_NORM_AVX2 1
#else
#define LDM_GROUP_NORM_AVX2 0
#endif

#if LDM_GROUP_NORM_AVX2

#include <immintrin.h>

#include "ldm/core/shape.hpp"

#define LDM_AVX2_FMA __attribute__((target("avx2,fma")))

namespace ldm::ops::detail::group_norm_avx2 {

inline bool available() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// e^x = 2^n e^r with n = round(x / ln 2) and |r| <= ln(2) / 2, e^r by its Taylor polynomial to
// degree 7 (truncation below 1e-8 relative). x is clamped to [-87, 88], where 2^n is a normal
// float; beyond it the sigmoid and SiLU's derivative are within a rounding of their limits anyway.
LDM_AVX2_FMA inline __m256 exp(__m256 x_in) {
  const __m256 x =
      _mm256_min_ps(_mm256_max_ps(x_in, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // ln 2 in two parts: n * ln2_hi is exact for every n in range.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145752f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.42860677e-6f), r);
  __m256 p = _mm256_set1_ps(1.0f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i two_n =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(two_n));
}

// 1 / (1 + e^-z).
LDM_AVX2_FMA inline __m256 sigmoid(__m256 z) {
  const __m256 one = _mm256_set1_ps(1.0f);
  return _mm256_div_ps(one, _mm256_add_ps(one, exp(_mm256_sub_ps(_mm256_setzero_ps(), z))));
}

// SiLU's derivative in the stable form of math::silu_grad: s and 1 - s both from t = e^-|z|, so
// 1 - s is never formed by cancellation.
LDM_AVX2_FMA inline __m256 silu_grad(__m256 z) {
  const __m256 one = _mm256_set1_ps(1.0f);
  const __m256 minus_abs = _mm256_or_ps(z, _mm256_set1_ps(-0.0f));  // -|z|: the sign bit set
  const __m256 t = exp(minus_abs);
  const __m256 r = _mm256_div_ps(one, _mm256_add_ps(one, t));
  const __m256 tr = _mm256_mul_ps(t, r);
  const __m256 positive = _mm256_cmp_ps(z, _mm256_setzero_ps(), _CMP_GE_OQ);
  const __m256 s = _mm256_blendv_ps(tr, r, positive);
  const __m256 one_minus_s = _mm256_blendv_ps(r, tr, positive);
  return _mm256_mul_ps(s, _mm256_fmadd_ps(z, one_minus_s, one));
}

// (x - mu) * inv_std in double for 8 channels, as two halves.
struct Centred {
  __m256d lo, hi;
};
LDM_AVX2_FMA inline Centred centre(__m256 x, const double* mu, const double* inv_std) {
  return {
      _mm256_mul_pd(_mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(x)), _mm256_loadu_pd(mu)),
                    _mm256_loadu_pd(inv_std)),
      _mm256_mul_pd(
          _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1)), _mm256_loadu_pd(mu + 4)),
          _mm256_loadu_pd(inv_std + 4))};
}
LDM_AVX2_FMA inline __m256 to_float(__m256d lo, __m256d hi) {
  return _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
}

// y = silu(xhat * gamma + beta) over one sample's pixels; C is a multiple of 8, mu and inv_std
// per channel.
template <index_t C>
LDM_AVX2_FMA void silu_forward(const float* x, float* y, index_t pixels, const double* mu,
                               const double* inv_std, const float* gamma, const float* beta) {
  for (index_t p = 0; p < pixels; ++p)
    for (index_t c = 0; c < C; c += 8) {
      const Centred xhat = centre(_mm256_loadu_ps(x + p * C + c), mu + c, inv_std + c);
      const __m256 z = _mm256_fmadd_ps(to_float(xhat.lo, xhat.hi), _mm256_loadu_ps(gamma + c),
                                       _mm256_loadu_ps(beta + c));
      _mm256_storeu_ps(y + p * C + c, _mm256_mul_ps(z, sigmoid(z)));
    }
}

// The backward's first pass over one sample: dz = dy * silu'(z) to dz_out (rounded to float), and
// per channel a += dz * xhat, b += dz in double.
template <index_t C>
LDM_AVX2_FMA void silu_backward_sums(const float* x, const float* dy, float* dz_out, index_t pixels,
                                     const double* mu, const double* inv_std, const float* gamma,
                                     const float* beta, double* a, double* b) {
  for (index_t p = 0; p < pixels; ++p)
    for (index_t c = 0; c < C; c += 8) {
      const Centred xhat = centre(_mm256_loadu_ps(x + p * C + c), mu + c, inv_std + c);
      const __m256 z = _mm256_fmadd_ps(to_float(xhat.lo, xhat.hi), _mm256_loadu_ps(gamma + c),
                                       _mm256_loadu_ps(beta + c));
      const __m256 slope = silu_grad(z);
      const __m256 g = _mm256_loadu_ps(dy + p * C + c);
      const __m256d dz_lo = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(g)),
                                          _mm256_cvtps_pd(_mm256_castps256_ps128(slope)));
      const __m256d dz_hi = _mm256_mul_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(g, 1)),
                                          _mm256_cvtps_pd(_mm256_extractf128_ps(slope, 1)));
      _mm256_storeu_ps(dz_out + p * C + c, to_float(dz_lo, dz_hi));
      _mm256_storeu_pd(a + c, _mm256_fmadd_pd(dz_lo, xhat.lo, _mm256_loadu_pd(a + c)));
      _mm256_storeu_pd(a + c + 4, _mm256_fmadd_pd(dz_hi, xhat.hi, _mm256_loadu_pd(a + c + 4)));
      _mm256_storeu_pd(b + c, _mm256_add_pd(dz_lo, _mm256_loadu_pd(b + c)));
      _mm256_storeu_pd(b + c + 4, _mm256_add_pd(dz_hi, _mm256_loadu_pd(b + c + 4)));
    }
}

}  // namespace ldm::ops::detail::group_norm_avx2

#undef LDM_AVX2_FMA

#endif  // LDM_GROUP_NORM_AVX2
