#pragma once
// GroupNorm's passes besides the SiLU (the statistics, and the backward's dx) in float on CPUs
// with AVX-512F, eight channels of doubles at a time. The portable loops (host.hpp) compile for
// the baseline x86-64 (two doubles a vector). Each channel's sums keep their pixel order and no
// multiply is fused into an add (fp-contract=off), so the results are the portable loops' bits.

#include "ldm/ops/group_norm/silu_avx512.hpp"

#if LDM_GROUP_NORM_AVX2

#include <immintrin.h>

#include "ldm/core/shape.hpp"

#define LDM_AVX512F_EXACT __attribute__((target("avx512f,avx2,fma"), optimize("fp-contract=off")))

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wattributes"
#endif

namespace ldm::ops::detail::group_norm_avx512 {

LDM_AVX512F_EXACT inline __m512d widen8(const float* p) {
  return _mm512_cvtps_pd(_mm256_loadu_ps(p));
}

// sum[c] += x[p, c] over one sample's pixels, in pixel order.
template <index_t C>
LDM_AVX512F_EXACT void channel_sums(const float* x, index_t pixels, double* sum) {
  static_assert(C % 8 == 0);
  __m512d acc[C / 8];
  for (index_t v = 0; v < C / 8; ++v)
    acc[v] = _mm512_loadu_pd(sum + 8 * v);
  for (index_t p = 0; p < pixels; ++p)
    for (index_t v = 0; v < C / 8; ++v)
      acc[v] = _mm512_add_pd(acc[v], widen8(x + p * C + 8 * v));
  for (index_t v = 0; v < C / 8; ++v)
    _mm512_storeu_pd(sum + 8 * v, acc[v]);
}

// sum[c] += (x[p, c] - mu[c])^2 over one sample's pixels, in pixel order.
template <index_t C>
LDM_AVX512F_EXACT void squared_deviations(const float* x, index_t pixels, const double* mu,
                                          double* sum) {
  static_assert(C % 8 == 0);
  __m512d acc[C / 8], centre[C / 8];
  for (index_t v = 0; v < C / 8; ++v) {
    acc[v] = _mm512_loadu_pd(sum + 8 * v);
    centre[v] = _mm512_loadu_pd(mu + 8 * v);
  }
  for (index_t p = 0; p < pixels; ++p)
    for (index_t v = 0; v < C / 8; ++v) {
      const __m512d d = _mm512_sub_pd(widen8(x + p * C + 8 * v), centre[v]);
      acc[v] = _mm512_add_pd(acc[v], _mm512_mul_pd(d, d));
    }
  for (index_t v = 0; v < C / 8; ++v)
    _mm512_storeu_pd(sum + 8 * v, acc[v]);
}

// The backward's second pass over one sample: dx = inv_std * (dz * gamma - mean_dxhat - xhat *
// mean_dxhat_xhat) with xhat = (x - mu) * inv_std. dz may be dx itself.
template <index_t C>
LDM_AVX512F_EXACT void input_gradient(const float* x, const float* dz, float* dx, index_t pixels,
                                      const double* mu, const double* inv_std, const float* gamma,
                                      const double* mean_dxhat, const double* mean_dxhat_xhat) {
  static_assert(C % 8 == 0);
  for (index_t p = 0; p < pixels; ++p)
    for (index_t c = 0; c < C; c += 8) {
      const __m512d s = _mm512_loadu_pd(inv_std + c);
      const __m512d xhat =
          _mm512_mul_pd(_mm512_sub_pd(widen8(x + p * C + c), _mm512_loadu_pd(mu + c)), s);
      const __m512d dxhat = _mm512_mul_pd(widen8(dz + p * C + c), widen8(gamma + c));
      const __m512d centred =
          _mm512_sub_pd(_mm512_sub_pd(dxhat, _mm512_loadu_pd(mean_dxhat + c)),
                        _mm512_mul_pd(xhat, _mm512_loadu_pd(mean_dxhat_xhat + c)));
      _mm256_storeu_ps(dx + p * C + c, _mm512_cvtpd_ps(_mm512_mul_pd(s, centred)));
    }
}

}  // namespace ldm::ops::detail::group_norm_avx512

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#undef LDM_AVX512F_EXACT

#endif  // LDM_GROUP_NORM_AVX2
