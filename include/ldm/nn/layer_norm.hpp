#pragma once
/// @file
/// LayerNorm as torch.nn.LayerNorm(C) with affine weight and bias, over the channels of L tokens:
/// the norm1/norm2/norm3 of diffusers' BasicTransformerBlock.

#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"
#include "ldm/ops/layer_norm.hpp"

namespace ldm::nn {

/// LayerNorm over the last axis of [N, L, C] tokens; parameters `weight` and `bias` of C values.
template <class T, class Space, index_t L, index_t C>
class LayerNorm {
 public:
  /// The element type.
  using value_type = T;
  /// weight and bias.
  static constexpr index_t parameter_count = 2 * C;
  /// The tokens it normalises.
  template <index_t N>
  using input = Shape<N, L, C>;
  /// The same shape as the input.
  template <index_t N>
  using output = input<N>;

  /// The per-token statistics backward reads.
  template <index_t N>
  struct Saved {
    /// Each token's mean and 1 / sqrt(variance + eps).
    Tensor<T, Shape<N * L>, Space> mean, rstd;
  };

  /// backward's weight-gradient terms and column partial sums.
  template <index_t N>
  static constexpr Scratch scratch(const ops::HostScratch&) {
    return {0, ops::layer_norm_backward_scratch<T, input<N>>()};
  }

  /// Takes `weight` (ones) and `bias` (zeros) from the binder.
  /// @param eps added to the variance (diffusers' norm_eps, 1e-5 by default).
  LayerNorm(ParameterBinder<T, Space> b, double eps)
      : weight(b.template take<Shape<C>>("weight", {C}, Layout::same, Init::ones, C)),
        bias(b.template take<Shape<C>>("bias", {C}, Layout::same, Init::zeros, C)),
        eps(eps) {}

  /// Overwrites y (which may not alias x) and the statistics in `saved`.
  template <index_t N>
  void forward(View<const T, input<N>, Space> x, Saved<N>& saved, View<T, output<N>, Space> y,
               const Mode& = inference) const {
    ops::layer_norm_forward(x, weight.value, bias.value, T(eps), y, saved.mean.view(),
                            saved.rstd.view());
  }

  /// Adds the parameter gradients and overwrites dx.
  template <index_t N>
  void backward(View<const T, input<N>, Space> x, const Saved<N>& saved,
                View<const T, output<N>, Space> dy, View<T, input<N>, Space> dx) const {
    ops::layer_norm_backward(x, weight.value, saved.mean, saved.rstd, dy, dx, weight.grad,
                             bias.grad);
  }

  /// gamma and beta.
  Param<T, Shape<C>, Space> weight, bias;
  /// Added to the variance.
  double eps;
};

}  // namespace ldm::nn
