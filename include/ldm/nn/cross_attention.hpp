#pragma once
/// @file
/// diffusers' Attention without its group norm and residual: L query tokens of C channels attend
/// to Lc context tokens of Cc channels,
///   q = to_q(x);  k, v = to_k(context), to_v(context);  o = softmax(q k^T / sqrt(d)) v
///   y = to_out.0(o)
/// with heads of HeadDim channels; to_out.0 has a bias, to_q, to_k and to_v have one when
/// ProjectionBias says so. BasicTransformerBlock's attentions have none (bias=False): attn2 is
/// this with the text encoder's hidden states as the context, attn1 (self-attention) the case
/// Lc = L, Cc = C with x as its own context, which the three-argument forward and four-argument
/// backward run. nn::Attention (UNet2DModel's and AutoencoderKL's) is self-attention with the
/// biases, between its group norm and its residual.

#include "ldm/nn/linear.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"
#include "ldm/ops/attention.hpp"

namespace ldm::nn {

/// Multi-head attention of [N, L, C] tokens over a [N, Lc, Cc] context (by default, themselves).
template <class T, class Space, index_t L, index_t C, index_t HeadDim, index_t Lc = L,
          index_t Cc = C, Bias ProjectionBias = Bias::none>
class CrossAttention {
  static_assert(C % HeadDim == 0,
                "ldm::nn::CrossAttention: the channels must divide into heads of HeadDim");
  using Query = Linear<T, Space, C, C, ProjectionBias>;
  using KeyValue = Linear<T, Space, Cc, C, ProjectionBias>;
  using Out = Linear<T, Space, C, C>;
  static constexpr bool self_attention = L == Lc && C == Cc;

  // The gradients at the projections' outputs, each written whole by the attention's backward.
  template <index_t N>
  struct ProjectionGradients {
    Tensor<T, Shape<N, L, C>, Space> dq{uninitialized};
    Tensor<T, Shape<N, Lc, C>, Space> dk{uninitialized}, dv{uninitialized};
  };

 public:
  /// The element type.
  using value_type = T;
  /// diffusers' heads = dim / attention_head_dim.
  static constexpr index_t heads = C / HeadDim;
  /// to_q, to_k, to_v (their weights, and biases if ProjectionBias says so) and to_out.0 (weight
  /// and bias).
  static constexpr index_t parameter_count =
      Query::parameter_count + 2 * KeyValue::parameter_count + Out::parameter_count;
  /// The query tokens.
  template <index_t N>
  using input = Shape<N, L, C>;
  /// The same shape as the input.
  template <index_t N>
  using output = input<N>;
  /// The tokens attended to (diffusers' encoder_hidden_states).
  template <index_t N>
  using context = Shape<N, Lc, Cc>;

  /// The projections and the attention probabilities backward reads.
  template <index_t N>
  struct Saved {
    /// Queries and the attention's output (to_out.0's input).
    Tensor<T, Shape<N, L, C>, Space> q, o;
    /// Keys and values.
    Tensor<T, Shape<N, Lc, C>, Space> k, v;
    /// The softmax, per head.
    Tensor<T, Shape<N, heads, L, Lc>, Space> probs;
  };

  /// backward: the gradients of q, k and v throughout; first the gradient of o beside to_out.0's
  /// and the attention's own (its score gradients), then to_v's share of the context gradient (in
  /// self-attention, to_k's and to_v's shares of dx in turn) beside the projections' own.
  template <index_t N>
  static constexpr Scratch scratch(const ops::HostScratch& host) {
    const std::size_t through_attention = bytes_of<Tensor<T, Shape<N, L, C>, Space>> +
                                          peak(scratch_of<Out, N * L>(host).backward,
                                               bytes_of<Tensor<T, Shape<N, heads, L, Lc>, Space>>);
    const std::size_t projections =
        bytes_of<Tensor<T, context<N>, Space>> +
        peak(scratch_of<Query, N * L>(host).backward, scratch_of<KeyValue, N * Lc>(host).backward);
    return {0, bytes_of<ProjectionGradients<N>> + peak(through_attention, projections)};
  }

  /// Takes to_q, to_k, to_v and to_out.0 from the binder.
  explicit CrossAttention(ParameterBinder<T, Space> b)
      : to_q(b.scope("to_q")),
        to_k(b.scope("to_k")),
        to_v(b.scope("to_v")),
        to_out(b.scope("to_out").scope("0")) {}

  /// Cross-attention: overwrites y and `saved`.
  template <index_t N>
  void forward(View<const T, input<N>, Space> x, View<const T, context<N>, Space> context_states,
               Saved<N>& saved, View<T, output<N>, Space> y, const Mode& = inference) const {
    to_q.forward(x, {}, saved.q.view());
    to_k.forward(context_states, {}, saved.k.view());
    to_v.forward(context_states, {}, saved.v.view());
    ops::attention_forward<heads>(saved.q, saved.k, saved.v, saved.o.view(), saved.probs.view());
    to_out.forward(saved.o, {}, y);
  }

  /// Cross-attention: adds the parameter gradients, overwrites dx and dcontext.
  template <index_t N>
  void backward(View<const T, input<N>, Space> x, View<const T, context<N>, Space> context_states,
                const Saved<N>& saved, View<const T, output<N>, Space> dy,
                View<T, input<N>, Space> dx, View<T, context<N>, Space> dcontext) const {
    const ProjectionGradients<N> g = projection_gradients(saved, dy);
    Tensor<T, context<N>, Space> partial(uninitialized);
    to_q.backward(x, {}, g.dq, dx);
    to_k.backward(context_states, {}, g.dk, dcontext);
    to_v.backward(context_states, {}, g.dv, partial.view());
    dcontext += partial;
  }

  /// Self-attention (attn1): x is its own context.
  template <index_t N>
  requires self_attention void forward(View<const T, input<N>, Space> x, Saved<N>& saved,
                                       View<T, output<N>, Space> y,
                                       const Mode& mode = inference) const {
    forward(x, View<const T, context<N>, Space>(x.data()), saved, y, mode);
  }

  /// Self-attention: adds the parameter gradients and overwrites dx (through the queries, keys
  /// and values alike).
  template <index_t N>
  requires self_attention void backward(View<const T, input<N>, Space> x, const Saved<N>& saved,
                                        View<const T, output<N>, Space> dy,
                                        View<T, input<N>, Space> dx) const {
    const ProjectionGradients<N> g = projection_gradients(saved, dy);
    Tensor<T, input<N>, Space> partial(uninitialized);
    to_q.backward(x, {}, g.dq, dx);
    to_k.backward(x, {}, g.dk, partial.view());
    dx += partial;
    to_v.backward(x, {}, g.dv, partial.view());
    dx += partial;
  }

  /// to_q: C -> C.
  Query to_q;
  /// to_k and to_v: Cc -> C.
  KeyValue to_k, to_v;
  /// to_out.0: C -> C with bias.
  Out to_out;

 private:
  // Back through to_out.0 and the attention itself.
  template <index_t N>
  ProjectionGradients<N> projection_gradients(const Saved<N>& saved,
                                              View<const T, output<N>, Space> dy) const {
    Tensor<T, Shape<N, L, C>, Space> d_o(uninitialized);
    ProjectionGradients<N> g;
    to_out.backward(saved.o, {}, dy, d_o.view());
    ops::attention_backward<heads>(saved.q, saved.k, saved.v, saved.probs, d_o, g.dq.view(),
                                   g.dk.view(), g.dv.view());
    return g;
  }
};

}  // namespace ldm::nn
