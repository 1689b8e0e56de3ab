#pragma once
// GroupNorm over NHWC on the host (torch.nn.GroupNorm with affine parameters), and GroupNorm
// followed by SiLU in one pass, the pairing every ResNet block and decoder output uses.
//
// Group g holds the C / G consecutive channels [g * C/G, (g + 1) * C/G). Statistics are per
// (sample, group) over H * W * C/G values, with the biased variance as PyTorch. The host is the
// reference the CUDA backend is tested against, so it works in double throughout: two passes
// (mean, then squared deviations) keep the variance exact for activations whose mean is far larger
// than their spread, and the normalisation subtracts the double mean before rounding to T.
//
// mean and rstd = 1 / sqrt(var + eps) are saved for the backward pass; the fused backward also
// takes beta, to recompute the pre-activation instead of storing it.

#include <array>
#include <cmath>
#include <type_traits>

#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/math.hpp"

namespace ldm::ops {

namespace detail {

enum class NormActivation { none, silu };

template <index_t Groups, index_t C>
constexpr bool valid_group_count() {
  static_assert(Groups > 0 && C % Groups == 0,
                "ldm::ops::group_norm: the channel count C must be a multiple of the group count");
  return true;
}

template <NormActivation Act, class T>
T norm_activation(T z) {
  if constexpr (Act == NormActivation::silu)
    return math::silu(z);
  else
    return z;
}

template <NormActivation Act, index_t Groups, class T, index_t N, index_t H, index_t W, index_t C>
void group_norm_forward(View<const T, Shape<N, H, W, C>> x, View<const T, Shape<C>> gamma,
                        View<const T, Shape<C>> beta, T eps, View<T, Shape<N, H, W, C>> y,
                        View<T, Shape<N, Groups>> mean, View<T, Shape<N, Groups>> rstd) {
  static_assert(valid_group_count<Groups, C>());
  constexpr index_t pixels = H * W, group_channels = C / Groups;
  constexpr double count = double(pixels * group_channels);
  constexpr bool parallel = N * H * W * C >= expr::executor<host>::parallel_threshold;
#pragma omp parallel for collapse(2) schedule(static) if (parallel)
  for (index_t n = 0; n < N; ++n)
    for (index_t g = 0; g < Groups; ++g) {
      const T* xg = x.data() + n * pixels * C + g * group_channels;
      T* yg = y.data() + n * pixels * C + g * group_channels;
      const T* gamma_g = gamma.data() + g * group_channels;
      const T* beta_g = beta.data() + g * group_channels;

      double sum = 0;
      for (index_t p = 0; p < pixels; ++p)
        for (index_t k = 0; k < group_channels; ++k)
          sum += double(xg[p * C + k]);
      const double mu = sum / count;
      double squares = 0;
      for (index_t p = 0; p < pixels; ++p)
        for (index_t k = 0; k < group_channels; ++k) {
          const double d = double(xg[p * C + k]) - mu;
          squares += d * d;
        }
      const double inv_std = 1 / std::sqrt(squares / count + double(eps));
      mean(n, g) = T(mu);
      rstd(n, g) = T(inv_std);

      // Centring needs double (a large mean would cancel in float); the activation does not,
      // and exp in double costs twice as much as in float.
      for (index_t p = 0; p < pixels; ++p)
        for (index_t k = 0; k < group_channels; ++k) {
          const T xhat = T((double(xg[p * C + k]) - mu) * inv_std);
          yg[p * C + k] = norm_activation<Act>(xhat * gamma_g[k] + beta_g[k]);
        }
    }
}

// beta is read only with an activation, to recompute the pre-activation z; it may be null without.
template <NormActivation Act, index_t Groups, class T, index_t N, index_t H, index_t W, index_t C>
void group_norm_backward(View<const T, Shape<N, H, W, C>> x, View<const T, Shape<C>> gamma,
                         const std::type_identity_t<T>* beta, View<const T, Shape<N, Groups>> mean,
                         View<const T, Shape<N, Groups>> rstd, View<const T, Shape<N, H, W, C>> dy,
                         View<T, Shape<N, H, W, C>> dx, View<T, Shape<C>> dgamma,
                         View<T, Shape<C>> dbeta) {
  static_assert(valid_group_count<Groups, C>());
  constexpr index_t pixels = H * W, group_channels = C / Groups;
  constexpr double count = double(pixels * group_channels);
  constexpr bool parallel = N * H * W * C >= expr::executor<host>::parallel_threshold;
  // One task per group: the group's channels of dgamma and dbeta sum over every sample, so a task
  // owning all samples of its group writes them without races and in a fixed order.
#pragma omp parallel for schedule(static) if (parallel)
  for (index_t g = 0; g < Groups; ++g) {
    const T* gamma_g = gamma.data() + g * group_channels;
    std::array<double, group_channels> dgamma_g{}, dbeta_g{};
    for (index_t n = 0; n < N; ++n) {
      const index_t base = n * pixels * C + g * group_channels;
      const T* xg = x.data() + base;
      const T* dyg = dy.data() + base;
      T* dxg = dx.data() + base;
      const double mu = double(mean(n, g)), inv_std = double(rstd(n, g));
      // dz is the gradient reaching z = xhat * gamma + beta. With an activation, the first pass
      // recomputes z (the forward pass does not keep it) and parks dz in dx, so the second pass
      // need not evaluate the exponential again; dx is overwritten there anyway.
      double sum_dxhat = 0, sum_dxhat_xhat = 0;
      for (index_t p = 0; p < pixels; ++p)
        for (index_t k = 0; k < group_channels; ++k) {
          const double xhat = (double(xg[p * C + k]) - mu) * inv_std;
          double dz = double(dyg[p * C + k]);
          if constexpr (Act == NormActivation::silu) {
            const T z = T(xhat) * gamma_g[k] + beta[g * group_channels + k];
            const T s = math::sigmoid(z);
            dz *= double(s * (1 + z * (1 - s)));
            dxg[p * C + k] = T(dz);
          }
          const double dxhat = dz * double(gamma_g[k]);
          sum_dxhat += dxhat;
          sum_dxhat_xhat += dxhat * xhat;
          dgamma_g[k] += dz * xhat;
          dbeta_g[k] += dz;
        }
      const double mean_dxhat = sum_dxhat / count, mean_dxhat_xhat = sum_dxhat_xhat / count;
      for (index_t p = 0; p < pixels; ++p)
        for (index_t k = 0; k < group_channels; ++k) {
          const double xhat = (double(xg[p * C + k]) - mu) * inv_std;
          const T* dz = Act == NormActivation::silu ? dxg : dyg;
          const double dxhat = double(dz[p * C + k]) * double(gamma_g[k]);
          dxg[p * C + k] = T(inv_std * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat));
        }
    }
    for (index_t k = 0; k < group_channels; ++k) {
      dgamma[g * group_channels + k] += T(dgamma_g[k]);
      dbeta[g * group_channels + k] += T(dbeta_g[k]);
    }
  }
}

}  // namespace detail

// y = (x - mean) * rstd * gamma + beta per group; writes y and the saved statistics.
template <index_t Groups, class T, index_t N, index_t H, index_t W, index_t C>
void group_norm_forward(View<const T, Shape<N, H, W, C>> x, View<const T, Shape<C>> gamma,
                        View<const T, Shape<C>> beta, std::type_identity_t<T> eps,
                        View<T, Shape<N, H, W, C>> y, View<T, Shape<N, Groups>> mean,
                        View<T, Shape<N, Groups>> rstd) {
  detail::group_norm_forward<detail::NormActivation::none, Groups>(x, gamma, beta, eps, y, mean,
                                                                   rstd);
}

// Overwrites dx; adds into dgamma and dbeta.
template <index_t Groups, class T, index_t N, index_t H, index_t W, index_t C>
void group_norm_backward(View<const T, Shape<N, H, W, C>> x, View<const T, Shape<C>> gamma,
                         View<const T, Shape<N, Groups>> mean, View<const T, Shape<N, Groups>> rstd,
                         View<const T, Shape<N, H, W, C>> dy, View<T, Shape<N, H, W, C>> dx,
                         View<T, Shape<C>> dgamma, View<T, Shape<C>> dbeta) {
  detail::group_norm_backward<detail::NormActivation::none, Groups>(x, gamma, nullptr, mean, rstd,
                                                                    dy, dx, dgamma, dbeta);
}

// y = silu(group_norm(x)), without materialising the normalised tensor.
template <index_t Groups, class T, index_t N, index_t H, index_t W, index_t C>
void group_norm_silu_forward(View<const T, Shape<N, H, W, C>> x, View<const T, Shape<C>> gamma,
                             View<const T, Shape<C>> beta, std::type_identity_t<T> eps,
                             View<T, Shape<N, H, W, C>> y, View<T, Shape<N, Groups>> mean,
                             View<T, Shape<N, Groups>> rstd) {
  detail::group_norm_forward<detail::NormActivation::silu, Groups>(x, gamma, beta, eps, y, mean,
                                                                   rstd);
}

// Overwrites dx; adds into dgamma and dbeta. Takes beta to recompute the pre-activation.
template <index_t Groups, class T, index_t N, index_t H, index_t W, index_t C>
void group_norm_silu_backward(View<const T, Shape<N, H, W, C>> x, View<const T, Shape<C>> gamma,
                              View<const T, Shape<C>> beta, View<const T, Shape<N, Groups>> mean,
                              View<const T, Shape<N, Groups>> rstd,
                              View<const T, Shape<N, H, W, C>> dy, View<T, Shape<N, H, W, C>> dx,
                              View<T, Shape<C>> dgamma, View<T, Shape<C>> dbeta) {
  detail::group_norm_backward<detail::NormActivation::silu, Groups>(x, gamma, beta.data(), mean,
                                                                    rstd, dy, dx, dgamma, dbeta);
}

}  // namespace ldm::ops
