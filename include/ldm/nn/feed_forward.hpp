#pragma once
/// @file
/// FeedForward as diffusers builds it for its transformer blocks with activation_fn "geglu":
///   y = net.2(hidden * gelu(gate)),  [hidden | gate] = net.0.proj(x)
/// with net.0.proj a Linear(C, 2 Inner) and net.2 a Linear(Inner, C) (net.1 is a dropout of
/// probability 0 in every configuration ldm builds, so it is left out).

#include "ldm/nn/linear.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"
#include "ldm/ops/geglu.hpp"

namespace ldm::nn {

/// GEGLU feed-forward over [N, L, C] tokens, Inner hidden channels (diffusers: 4 C).
template <class T, class Space, index_t L, index_t C, index_t Inner = 4 * C>
class FeedForward {
  using Proj = Linear<T, Space, C, 2 * Inner>;
  using Out = Linear<T, Space, Inner, C>;

 public:
  /// The element type.
  using value_type = T;
  /// net.0.proj's and net.2's weights and biases.
  static constexpr index_t parameter_count = Proj::parameter_count + Out::parameter_count;
  /// The tokens it transforms.
  template <index_t N>
  using input = Shape<N, L, C>;
  /// The same shape as the input.
  template <index_t N>
  using output = input<N>;

  /// What backward reads.
  template <index_t N>
  struct Saved {
    /// net.0.proj(x): the hidden and gate halves.
    Tensor<T, Shape<N, L, 2 * Inner>, Space> projected;
    /// hidden * gelu(gate): net.2's input.
    Tensor<T, Shape<N, L, Inner>, Space> gated;
  };

  /// backward: the gradients of the gated activations and of the projection, around the two
  /// linear layers' own.
  template <index_t N>
  static constexpr Scratch scratch(const ops::HostScratch& host) {
    return {
        0,
        bytes_of<Tensor<T, Shape<N, L, Inner>, Space>, Tensor<T, Shape<N, L, 2 * Inner>, Space>> +
            peak(scratch_of<Out, N * L>(host).backward, scratch_of<Proj, N * L>(host).backward)};
  }

  /// Takes `net.0.proj` and `net.2` from the binder.
  explicit FeedForward(ParameterBinder<T, Space> b)
      : proj(b.scope("net").scope("0").scope("proj")), out(b.scope("net").scope("2")) {}

  /// Overwrites y and `saved`.
  template <index_t N>
  void forward(View<const T, input<N>, Space> x, Saved<N>& saved, View<T, output<N>, Space> y,
               const Mode& = inference) const {
    proj.forward(x, {}, saved.projected.view());
    ops::geglu_forward(saved.projected, saved.gated.view());
    out.forward(saved.gated, {}, y);
  }

  /// Adds the parameter gradients and overwrites dx.
  template <index_t N>
  void backward(View<const T, input<N>, Space> x, const Saved<N>& saved,
                View<const T, output<N>, Space> dy, View<T, input<N>, Space> dx) const {
    Tensor<T, Shape<N, L, Inner>, Space> dgated;
    Tensor<T, Shape<N, L, 2 * Inner>, Space> dprojected;
    out.backward(saved.gated, {}, dy, dgated.view());
    ops::geglu_backward(saved.projected, dgated, dprojected.view());
    proj.backward(x, {}, dprojected, dx);
  }

  /// net.0.proj: C -> 2 Inner.
  Proj proj;
  /// net.2: Inner -> C.
  Out out;
};

}  // namespace ldm::nn
