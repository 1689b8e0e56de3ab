#pragma once
// GroupNorm and GroupNorm + SiLU over NHWC on the host (the contract: ops/group_norm.hpp).
//
// The host is the reference the CUDA backend is tested against, so statistics and centring work
// in double: two passes (mean, then squared deviations) keep the variance exact for activations
// whose mean is far larger than their spread, and the normalisation subtracts the double mean
// before rounding to T. In float on CPUs with AVX2 the SiLU passes evaluate the exponential by a
// polynomial, eight channels at a time (silu_avx2.hpp), sixteen with AVX-512 (silu_avx512.hpp).

#include <array>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/math.hpp"
#include "ldm/ops/group_norm/activation.hpp"
#include "ldm/ops/group_norm/passes_avx512.hpp"
#include "ldm/ops/group_norm/silu_avx2.hpp"
#include "ldm/ops/group_norm/silu_avx512.hpp"

namespace ldm::ops {

namespace detail {

// Whether the SiLU passes run eight channels at a time (silu_avx2.hpp).
template <NormActivation Act, class T, index_t C>
bool vector_silu() {
#if LDM_GROUP_NORM_AVX2
  if constexpr (Act == NormActivation::silu && std::is_same_v<T, float> && C % 8 == 0)
    return group_norm_avx2::available();
#endif
  return false;
}

// Whether they run sixteen at a time (silu_avx512.hpp): the same bits, fewer instructions.
template <NormActivation Act, class T, index_t C>
bool wide_silu() {
#if LDM_GROUP_NORM_AVX2
  if constexpr (C % 16 == 0) return vector_silu<Act, T, C>() && group_norm_avx512::available();
#endif
  return false;
}

// Whether the statistics and the backward's dx run eight doubles at a time (passes_avx512.hpp):
// the same bits as the loops here.
template <class T, index_t C>
bool wide_passes() {
#if LDM_GROUP_NORM_AVX2
  if constexpr (std::is_same_v<T, float> && C % 8 == 0) return group_norm_avx512::available();
#endif
  return false;
}

// One task per sample, walking its pixels in memory order with the channels innermost: per-channel
// sums in double are combined per group (a task per group would read one float in every
// C / group-size, a cache line per element at the models' 1-channel groups).
template <NormActivation Act, index_t Groups, class T, index_t N, index_t H, index_t W, index_t C>
void group_norm_forward(View<const T, Shape<N, H, W, C>> x, View<const T, Shape<C>> gamma,
                        View<const T, Shape<C>> beta, T eps, View<T, Shape<N, H, W, C>> y,
                        View<T, Shape<N, Groups>> mean, View<T, Shape<N, Groups>> rstd) {
  static_assert(valid_group_count<Groups, C>());
  constexpr index_t pixels = H * W, group_channels = C / Groups;
  constexpr double count = double(pixels * group_channels);
  [[maybe_unused]] constexpr bool parallel =
      N * H * W * C >= expr::executor<host>::parallel_threshold;
  // Adds the channels of each group, and gives every channel its group's total / count.
  auto group_means = [](std::array<double, C>& per_channel) {
    for (index_t g = 0; g < Groups; ++g) {
      double total = 0;
      for (index_t c = g * group_channels; c < (g + 1) * group_channels; ++c)
        total += per_channel[c];
      for (index_t c = g * group_channels; c < (g + 1) * group_channels; ++c)
        per_channel[c] = total / count;
    }
  };
#pragma omp parallel for schedule(static) if (parallel)
  for (index_t n = 0; n < N; ++n) {
    const T* xn = x.data() + n * pixels * C;
    T* yn = y.data() + n * pixels * C;
    std::array<double, C> mu{}, inv_std{};
    const bool wide = wide_passes<T, C>();
#if LDM_GROUP_NORM_AVX2
    if constexpr (std::is_same_v<T, float> && C % 8 == 0)
      if (wide) group_norm_avx512::channel_sums<C>(xn, pixels, mu.data());
#endif
    for (index_t p = 0; p < pixels && !wide; ++p)
      for (index_t c = 0; c < C; ++c)
        mu[c] += double(xn[p * C + c]);
    group_means(mu);
#if LDM_GROUP_NORM_AVX2
    if constexpr (std::is_same_v<T, float> && C % 8 == 0)
      if (wide) group_norm_avx512::squared_deviations<C>(xn, pixels, mu.data(), inv_std.data());
#endif
    for (index_t p = 0; p < pixels && !wide; ++p)
      for (index_t c = 0; c < C; ++c) {
        const double d = double(xn[p * C + c]) - mu[c];
        inv_std[c] += d * d;
      }
    group_means(inv_std);
    for (index_t c = 0; c < C; ++c)
      inv_std[c] = 1 / std::sqrt(inv_std[c] + double(eps));
    for (index_t g = 0; g < Groups; ++g) {
      mean(n, g) = T(mu[g * group_channels]);
      rstd(n, g) = T(inv_std[g * group_channels]);
    }

    // Centring needs double (a large mean would cancel in float); the activation does not,
    // and exp in double costs twice as much as in float.
#if LDM_GROUP_NORM_AVX2
    if (vector_silu<Act, T, C>()) {
      if constexpr (std::is_same_v<T, float>) {
        if constexpr (C % 16 == 0)
          if (wide_silu<Act, T, C>()) {
            group_norm_avx512::silu_forward<C>(xn, yn, pixels, mu.data(), inv_std.data(),
                                               gamma.data(), beta.data());
            continue;
          }
        group_norm_avx2::silu_forward<C>(xn, yn, pixels, mu.data(), inv_std.data(), gamma.data(),
                                         beta.data());
      }
      continue;
    }
#endif
    for (index_t p = 0; p < pixels; ++p)
      for (index_t c = 0; c < C; ++c) {
        const T xhat = T((double(xn[p * C + c]) - mu[c]) * inv_std[c]);
        yn[p * C + c] = norm_activation<Act>(xhat * gamma[c] + beta[c]);
      }
  }
}

// beta is read only with an activation, to recompute the pre-activation z; it may be null without.
//
// With dz the gradient reaching z = xhat * gamma + beta, per channel c of a sample
//   A_c = sum over pixels of dz * xhat,  B_c = sum over pixels of dz,
// are that sample's share of dgamma_c and dbeta_c, and the group sums dx needs are
// sum(dxhat) = sum over the group's c of gamma_c B_c, sum(dxhat * xhat) = the same with A_c. So
// one task per sample walks its pixels in memory order with the channels innermost, and only the
// two C-long sums depend on the group. (A task per group instead reads one float in every
// C / group-size, a cache line per element at the models' 1-channel groups, and re-reads the
// tensor once per group.) dgamma and dbeta add the samples' sums in sample order, so they do not
// depend on the thread count.
template <NormActivation Act, index_t Groups, class T, index_t N, index_t H, index_t W, index_t C>
void group_norm_backward(View<const T, Shape<N, H, W, C>> x, View<const T, Shape<C>> gamma,
                         const std::type_identity_t<T>* beta, View<const T, Shape<N, Groups>> mean,
                         View<const T, Shape<N, Groups>> rstd, View<const T, Shape<N, H, W, C>> dy,
                         View<T, Shape<N, H, W, C>> dx, View<T, Shape<C>> dgamma,
                         View<T, Shape<C>> dbeta) {
  static_assert(valid_group_count<Groups, C>());
  constexpr index_t pixels = H * W, group_channels = C / Groups;
  constexpr double count = double(pixels * group_channels);
  [[maybe_unused]] constexpr bool parallel =
      N * H * W * C >= expr::executor<host>::parallel_threshold;
  std::vector<double> sample_sums(std::size_t(2 * N * C));
#pragma omp parallel for schedule(static) if (parallel)
  for (index_t n = 0; n < N; ++n) {
    const T* xn = x.data() + n * pixels * C;
    const T* dyn = dy.data() + n * pixels * C;
    T* dxn = dx.data() + n * pixels * C;
    double* a = sample_sums.data() + 2 * n * C;
    double* b = a + C;
    std::array<double, C> mu, inv_std;
    for (index_t c = 0; c < C; ++c) {
      mu[c] = double(mean(n, c / group_channels));
      inv_std[c] = double(rstd(n, c / group_channels));
    }
    // With an activation, the first pass recomputes z (the forward pass does not keep it) and
    // parks dz in dx, so the second pass need not evaluate the exponential again; dx is
    // overwritten there anyway.
    const bool vector = vector_silu<Act, T, C>();
#if LDM_GROUP_NORM_AVX2
    if constexpr (std::is_same_v<T, float>) {
      if constexpr (C % 16 == 0)
        if (wide_silu<Act, T, C>())
          group_norm_avx512::silu_backward_sums<C>(xn, dyn, dxn, pixels, mu.data(), inv_std.data(),
                                                   gamma.data(), beta, a, b);
      if (vector && !wide_silu<Act, T, C>())
        group_norm_avx2::silu_backward_sums<C>(xn, dyn, dxn, pixels, mu.data(), inv_std.data(),
                                               gamma.data(), beta, a, b);
    }
#endif
    for (index_t p = 0; p < pixels && !vector; ++p)
      for (index_t c = 0; c < C; ++c) {
        const double xhat = (double(xn[p * C + c]) - mu[c]) * inv_std[c];
        double dz = double(dyn[p * C + c]);
        if constexpr (Act == NormActivation::silu) {
          const T z = T(xhat) * gamma[c] + beta[c];
          dz *= double(math::silu_grad(z));
          dxn[p * C + c] = T(dz);
        }
        a[c] += dz * xhat;
        b[c] += dz;
      }
    std::array<double, C> mean_dxhat, mean_dxhat_xhat;
    for (index_t g = 0; g < Groups; ++g) {
      double sum_dxhat = 0, sum_dxhat_xhat = 0;
      for (index_t c = g * group_channels; c < (g + 1) * group_channels; ++c) {
        sum_dxhat += double(gamma[c]) * b[c];
        sum_dxhat_xhat += double(gamma[c]) * a[c];
      }
      for (index_t c = g * group_channels; c < (g + 1) * group_channels; ++c) {
        mean_dxhat[c] = sum_dxhat / count;
        mean_dxhat_xhat[c] = sum_dxhat_xhat / count;
      }
    }
    const T* dz = Act == NormActivation::silu ? dxn : dyn;
    const bool wide = wide_passes<T, C>();
#if LDM_GROUP_NORM_AVX2
    if constexpr (std::is_same_v<T, float> && C % 8 == 0)
      if (wide)
        group_norm_avx512::input_gradient<C>(xn, dz, dxn, pixels, mu.data(), inv_std.data(),
                                             gamma.data(), mean_dxhat.data(),
                                             mean_dxhat_xhat.data());
#endif
    for (index_t p = 0; p < pixels && !wide; ++p)
      for (index_t c = 0; c < C; ++c) {
        const double xhat = (double(xn[p * C + c]) - mu[c]) * inv_std[c];
        const double dxhat = double(dz[p * C + c]) * double(gamma[c]);
        dxn[p * C + c] = T(inv_std[c] * (dxhat - mean_dxhat[c] - xhat * mean_dxhat_xhat[c]));
      }
  }
  for (index_t c = 0; c < C; ++c) {
    double sum_a = 0, sum_b = 0;
    for (index_t n = 0; n < N; ++n) {
      sum_a += sample_sums[std::size_t(2 * n * C + c)];
      sum_b += sample_sums[std::size_t(2 * n * C + C + c)];
    }
    dgamma[c] += T(sum_a);
    dbeta[c] += T(sum_b);
  }
}

}  // namespace detail

}  // namespace ldm::ops
