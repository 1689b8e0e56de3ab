#pragma once
/// @file
/// LayerNorm over the last (channel) axis with affine weight and bias, as torch.nn.LayerNorm(C)
/// normalises the tokens of diffusers' transformer blocks, on any space.
///
/// Every leading axis is a row of C values. Statistics are per row with the biased variance, as
/// PyTorch; they accumulate in double and are stored rounded to T, and forward normalises with
/// the stored values, so backward sees exactly the statistics forward used. Forward and the input
/// gradient are one work item per row, which also writes the weight gradient's summands; the
/// parameter gradients are column sums over the rows (ops/gemm/column_sums.hpp), deterministic on
/// every backend.

#include <type_traits>

#include "ldm/core/buffer.hpp"
#include "ldm/core/dtype.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/math.hpp"
#include "ldm/ops/gemm/column_sums.hpp"

namespace ldm::ops {

/// The number of rows LayerNorm sees in a tensor of shape S: every axis but the last.
template <ShapeType S>
inline constexpr index_t layer_norm_rows = S::size / S::extents[S::rank - 1];

namespace detail {

template <class T>
struct LayerNormRowForward {
  const T* x;
  const T* gamma;
  const T* beta;
  T* y;
  T* mean;
  T* rstd;
  index_t channels;
  double eps;
  LDM_HD void operator()(index_t r) const {
    using V = compute_t<T>;
    const T* xr = x + r * channels;
    double total = 0;
    for (index_t c = 0; c < channels; ++c)
      total += double(xr[c]);
    const double mu = total / double(channels);
    double squares = 0;
    for (index_t c = 0; c < channels; ++c) {
      const double d = double(xr[c]) - mu;
      squares += d * d;
    }
    mean[r] = T(mu);
    rstd[r] = T(1 / math::sqrt(squares / double(channels) + eps));
    const V m = V(mean[r]), s = V(rstd[r]);
    T* yr = y + r * channels;
    for (index_t c = 0; c < channels; ++c)
      yr[c] = T((V(xr[c]) - m) * s * V(gamma[c]) + V(beta[c]));
  }
};

// dx = rstd * (g - mean(g) - xhat * mean(g * xhat)) with g = dy * gamma, per row; and the
// summands dy * xhat of the weight gradient, which the same pass over the row has at hand.
template <class T>
struct LayerNormRowBackward {
  const T* x;
  const T* gamma;
  const T* mean;
  const T* rstd;
  const T* dy;
  T* dx;
  T* weight_terms;
  index_t channels;
  LDM_HD void operator()(index_t r) const {
    using V = compute_t<T>;
    const index_t first = r * channels;
    const V m = V(mean[r]), s = V(rstd[r]);
    double g_total = 0, gx_total = 0;
    for (index_t c = 0; c < channels; ++c) {
      const V g = V(dy[first + c]) * V(gamma[c]);
      g_total += double(g);
      gx_total += double(g) * double((V(x[first + c]) - m) * s);
    }
    const V g_mean = V(g_total / double(channels)), gx_mean = V(gx_total / double(channels));
    for (index_t c = 0; c < channels; ++c) {
      const V xhat = (V(x[first + c]) - m) * s;
      const V g = V(dy[first + c]) * V(gamma[c]);
      dx[first + c] = T(s * (g - g_mean - xhat * gx_mean));
      // dy (x - mean) rstd in that order rather than dy xhat, which would round differently.
      weight_terms[first + c] = T(V(dy[first + c]) * (V(x[first + c]) - m) * s);
    }
  }
};

}  // namespace detail

/// y = (x - mean) * rstd * gamma + beta over the last axis; writes y and each row's statistics.
/// @param eps added to the variance (torch.nn.LayerNorm's default is 1e-5).
template <class T, ShapeType S, index_t C, class Space>
void layer_norm_forward(View<const T, S, Space> x, View<const T, Shape<C>, Space> gamma,
                        View<const T, Shape<C>, Space> beta, std::type_identity_t<T> eps,
                        View<T, S, Space> y, View<T, Shape<layer_norm_rows<S>>, Space> mean,
                        View<T, Shape<layer_norm_rows<S>>, Space> rstd) {
  static_assert(S::extents[S::rank - 1] == C,
                "ldm::ops::layer_norm_forward: x's last extent must equal gamma's length");
  expr::executor<Space>::for_each(
      layer_norm_rows<S>,
      detail::LayerNormRowForward<T>{x.data(), gamma.data(), beta.data(), y.data(), mean.data(),
                                     rstd.data(), C, double(eps)});
}

/// Overwrites dx; adds into dgamma and dbeta. dx must not alias x or dy.
template <class T, ShapeType S, index_t C, class Space>
void layer_norm_backward(View<const T, S, Space> x, View<const T, Shape<C>, Space> gamma,
                         View<const T, Shape<layer_norm_rows<S>>, Space> mean,
                         View<const T, Shape<layer_norm_rows<S>>, Space> rstd,
                         View<const T, S, Space> dy, View<T, S, Space> dx,
                         View<T, Shape<C>, Space> dgamma, View<T, Shape<C>, Space> dbeta) {
  static_assert(S::extents[S::rank - 1] == C,
                "ldm::ops::layer_norm_backward: x's last extent must equal gamma's length");
  constexpr index_t rows = layer_norm_rows<S>;
  Buffer<T, Space> terms(std::size_t(S::size));
  expr::executor<Space>::for_each(
      rows, detail::LayerNormRowBackward<T>{x.data(), gamma.data(), mean.data(), rstd.data(),
                                            dy.data(), dx.data(), terms.data(), C});
  add_column_sums(Space{}, terms.data(), rows, C, dgamma.data());
  add_column_sums(Space{}, dy.data(), rows, C, dbeta.data());
}

/// The bytes layer_norm_backward allocates beyond its arguments, for the memory plans: the
/// weight-gradient terms and the column sums' partials.
template <class T, ShapeType S>
constexpr std::size_t layer_norm_backward_scratch() {
  constexpr index_t C = S::extents[S::rank - 1];
  return sizeof(T) * std::size_t(S::size) +
         sizeof(double) * std::size_t(detail::column_sum_partials(layer_norm_rows<S>, C));
}

}  // namespace ldm::ops
