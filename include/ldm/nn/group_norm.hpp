#pragma once
// GroupNorm as PyTorch's nn.GroupNorm (affine), optionally fused with the SiLU that follows it
// everywhere in these models. Statistics are saved by the caller for backward.

#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"
#include "ldm/ops/group_norm.hpp"

namespace ldm::nn {

/// The activation a GroupNorm module fuses into its pass: the op's own.
using Activation = ops::NormActivation;

template <class T, class Space, index_t C, index_t Groups, Activation Act = Activation::none>
class GroupNorm {
  static_assert(C % Groups == 0, "ldm::nn::GroupNorm: the channels must divide into the groups");

 public:
  using value_type = T;
  static constexpr index_t parameter_count = 2 * C;
  static constexpr index_t groups = Groups;

  // The per-(sample, group) statistics backward needs.
  template <index_t N>
  struct Saved {
    Tensor<T, Shape<N, Groups>, Space> mean, rstd;
  };

  GroupNorm(ParameterBinder<T, Space> b, double eps)
      : weight(b.template take<Shape<C>>("weight", {C}, Layout::same, Init::ones, C)),
        bias(b.template take<Shape<C>>("bias", {C}, Layout::same, Init::zeros, C)),
        eps(eps) {}

  template <index_t N, index_t H, index_t W>
  void forward(View<const T, Shape<N, H, W, C>, Space> x, Saved<N>& saved,
               View<T, Shape<N, H, W, C>, Space> y, const Mode& = inference) const {
    ops::group_norm_forward<Groups, Act>(x, weight.value, bias.value, T(eps), y, saved.mean.view(),
                                         saved.rstd.view());
  }

  // Accumulates the parameter gradients and overwrites dx.
  template <index_t N, index_t H, index_t W>
  void backward(View<const T, Shape<N, H, W, C>, Space> x, const Saved<N>& saved,
                View<const T, Shape<N, H, W, C>, Space> dy,
                View<T, Shape<N, H, W, C>, Space> dx) const {
    ops::group_norm_backward<Groups, Act>(x, weight.value, bias.value, saved.mean, saved.rstd, dy,
                                          dx, weight.grad, bias.grad);
  }

  Param<T, Shape<C>, Space> weight, bias;
  double eps;
};

}  // namespace ldm::nn
