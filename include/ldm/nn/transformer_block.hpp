#pragma once
/// @file
/// BasicTransformerBlock as diffusers builds it inside Transformer2DModel (norm_type
/// "layer_norm", activation_fn "geglu", dropout 0, self-attention then cross-attention):
///   h1 = attn1(norm1(x)) + x
///   h2 = attn2(norm2(h1), context) + h1
///   y  = ff(norm3(h2)) + h2
/// over [N, L, C] tokens with a [N, Lc, Cc] context (encoder_hidden_states).

#include "ldm/nn/cross_attention.hpp"
#include "ldm/nn/feed_forward.hpp"
#include "ldm/nn/layer_norm.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"

namespace ldm::nn {

/// One transformer layer: self-attention, cross-attention over a context, GEGLU feed-forward,
/// each pre-normed by a LayerNorm and added to its input.
template <class T, class Space, index_t L, index_t C, index_t HeadDim, index_t Lc, index_t Cc>
class BasicTransformerBlock {
  using Norm = LayerNorm<T, Space, L, C>;
  using SelfAttn = CrossAttention<T, Space, L, C, HeadDim>;
  using CrossAttn = CrossAttention<T, Space, L, C, HeadDim, Lc, Cc>;
  using FF = FeedForward<T, Space, L, C>;

 public:
  /// The element type.
  using value_type = T;
  /// norm1, attn1, norm2, attn2, norm3 and ff.
  static constexpr index_t parameter_count = 3 * Norm::parameter_count + SelfAttn::parameter_count +
                                             CrossAttn::parameter_count + FF::parameter_count;
  /// The tokens (hidden_states).
  template <index_t N>
  using input = Shape<N, L, C>;
  /// The same shape as the input.
  template <index_t N>
  using output = input<N>;
  /// encoder_hidden_states.
  template <index_t N>
  using context = Shape<N, Lc, Cc>;

  /// Each submodule's Saved and the tensors between them.
  template <index_t N>
  struct Saved {
    /// The norms' statistics.
    typename Norm::template Saved<N> norm1, norm2, norm3;
    /// The norms' outputs: attn1's, attn2's and ff's inputs.
    Tensor<T, input<N>, Space> normed1, normed2, normed3;
    /// The attentions' projections and probabilities.
    typename SelfAttn::template Saved<N> attn1;
    /// @copydoc attn1
    typename CrossAttn::template Saved<N> attn2;
    /// The feed-forward's projection and gated activations.
    typename FF::template Saved<N> ff;
    /// The residual stream after attn1 and after attn2: norm2's and norm3's inputs.
    Tensor<T, input<N>, Space> h1, h2;
  };

  /// backward holds three token gradients beside the submodules' own.
  template <index_t N>
  static constexpr Scratch scratch(const ops::HostScratch& host) {
    return {0, 3 * bytes_of<Tensor<T, input<N>, Space>> +
                   peak(scratch_of<FF, N>(host).backward, scratch_of<Norm, N>(host).backward,
                        scratch_of<CrossAttn, N>(host).backward,
                        scratch_of<SelfAttn, N>(host).backward)};
  }

  /// Takes norm1, attn1, norm2, attn2, norm3 and ff from the binder.
  /// @param norm_eps the LayerNorms' eps (diffusers' norm_eps, 1e-5 by default).
  BasicTransformerBlock(ParameterBinder<T, Space> b, double norm_eps)
      : norm1(b.scope("norm1"), norm_eps),
        attn1(b.scope("attn1")),
        norm2(b.scope("norm2"), norm_eps),
        attn2(b.scope("attn2")),
        norm3(b.scope("norm3"), norm_eps),
        ff(b.scope("ff")) {}

  /// Overwrites y and `saved`.
  template <index_t N>
  void forward(View<const T, input<N>, Space> x, View<const T, context<N>, Space> context_states,
               Saved<N>& saved, View<T, output<N>, Space> y, const Mode& mode = inference) const {
    norm1.forward(x, saved.norm1, saved.normed1.view());
    attn1.forward(saved.normed1, saved.attn1, saved.h1.view(), mode);
    saved.h1 += x;
    norm2.forward(saved.h1, saved.norm2, saved.normed2.view());
    attn2.forward(saved.normed2, context_states, saved.attn2, saved.h2.view(), mode);
    saved.h2 += saved.h1;
    norm3.forward(saved.h2, saved.norm3, saved.normed3.view());
    ff.forward(saved.normed3, saved.ff, y, mode);
    y += saved.h2;
  }

  /// Adds the parameter gradients; overwrites dx and dcontext (the gradient of
  /// encoder_hidden_states).
  template <index_t N>
  void backward(View<const T, input<N>, Space> x, View<const T, context<N>, Space> context_states,
                const Saved<N>& saved, View<const T, output<N>, Space> dy,
                View<T, input<N>, Space> dx, View<T, context<N>, Space> dcontext) const {
    Tensor<T, input<N>, Space> dnormed, dh2, dh1;
    ff.backward(saved.normed3, saved.ff, dy, dnormed.view());
    norm3.backward(saved.h2, saved.norm3, dnormed, dh2.view());
    dh2 += dy;
    attn2.backward(saved.normed2, context_states, saved.attn2, dh2, dnormed.view(), dcontext);
    norm2.backward(saved.h1, saved.norm2, dnormed, dh1.view());
    dh1 += dh2;
    attn1.backward(saved.normed1, saved.attn1, dh1, dnormed.view());
    norm1.backward(x, saved.norm1, dnormed, dx);
    dx += dh1;
  }

  /// Before attn1.
  Norm norm1;
  /// Self-attention.
  SelfAttn attn1;
  /// Before attn2.
  Norm norm2;
  /// Cross-attention over the context.
  CrossAttn attn2;
  /// Before ff.
  Norm norm3;
  /// GEGLU feed-forward, 4 C hidden channels.
  FF ff;
};

}  // namespace ldm::nn
