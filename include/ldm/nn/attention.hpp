#pragma once
// Self-attention over the H*W positions as diffusers' Attention builds it for UNet2DModel and
// AutoencoderKL (residual_connection, bias, rescale_output_factor 1):
//   a = group_norm(x);  q, k, v = to_q(a), to_k(a), to_v(a);  o = softmax(q k^T / sqrt(d)) v
//   y = to_out.0(o) + x
// NHWC makes (N, H*W, C) a reshape, so no transposes are needed.

#include "ldm/nn/group_norm.hpp"
#include "ldm/nn/linear.hpp"
#include "ldm/ops/attention.hpp"

namespace ldm::nn {

template <class T, class Space, index_t H, index_t W, index_t C, index_t HeadDim, index_t Groups>
class Attention {
  static_assert(C % HeadDim == 0,
                "ldm::nn::Attention: the channels must divide into heads of HeadDim");
  static constexpr index_t L = H * W;
  using Norm = GroupNorm<T, Space, C, Groups>;
  using Proj = Linear<T, Space, C, C>;

 public:
  using value_type = T;
  static constexpr index_t heads = C / HeadDim;
  static constexpr index_t parameter_count = Norm::parameter_count + 4 * Proj::parameter_count;
  template <index_t N>
  using input = Shape<N, H, W, C>;
  template <index_t N>
  using output = input<N>;
  template <index_t N>
  using tokens = Shape<N, L, C>;

  template <index_t N>
  struct Saved {
    typename Norm::template Saved<N> norm;
    Tensor<T, input<N>, Space> normed;
    Tensor<T, tokens<N>, Space> q, k, v, o;
    Tensor<T, Shape<N, heads, L, L>, Space> probs;
  };

  // backward: d_o, dq, dk, dv, da and partial, around the projections' and the attention's own
  // (the score gradients).
  template <index_t N>
  static constexpr Scratch scratch(const ops::HostScratch& host) {
    return {0, 6 * bytes_of<Tensor<T, tokens<N>, Space>> +
                   peak(scratch_of<Proj, N * L>(host).backward,
                        bytes_of<Tensor<T, Shape<N, heads, L, L>, Space>>)};
  }

  Attention(ParameterBinder<T, Space> b, double eps)
      : group_norm(b.scope("group_norm"), eps),
        to_q(b.scope("to_q")),
        to_k(b.scope("to_k")),
        to_v(b.scope("to_v")),
        to_out(b.scope("to_out").scope("0")) {}

  template <index_t N>
  void forward(View<const T, input<N>, Space> x, Saved<N>& s, View<T, input<N>, Space> y,
               const Mode& = inference) const {
    group_norm.forward(x, s.norm, s.normed.view());
    auto a = View<const T, input<N>, Space>(s.normed).template reshape<tokens<N>>();
    to_q.forward(a, {}, s.q.view());
    to_k.forward(a, {}, s.k.view());
    to_v.forward(a, {}, s.v.view());
    ops::attention_forward<heads>(s.q, s.k, s.v, s.o.view(), s.probs.view());
    auto y_tokens = y.template reshape<tokens<N>>();
    to_out.forward(s.o, {}, y_tokens);
    y += x;
  }

  // Accumulates parameter gradients and overwrites dx.
  template <index_t N>
  void backward(View<const T, input<N>, Space> x, const Saved<N>& s,
                View<const T, input<N>, Space> dy, View<T, input<N>, Space> dx) const {
    auto dy_tokens = dy.template reshape<tokens<N>>();
    Tensor<T, tokens<N>, Space> d_o(uninitialized), dq(uninitialized), dk(uninitialized),
        dv(uninitialized), da(uninitialized), partial(uninitialized);
    to_out.backward(s.o, {}, dy_tokens, d_o.view());
    ops::attention_backward<heads>(s.q, s.k, s.v, s.probs, d_o, dq.view(), dk.view(), dv.view());
    auto a = View<const T, input<N>, Space>(s.normed).template reshape<tokens<N>>();
    to_q.backward(a, {}, dq, da.view());
    to_k.backward(a, {}, dk, partial.view());
    da += partial;
    to_v.backward(a, {}, dv, partial.view());
    da += partial;
    group_norm.backward(x, s.norm, da.template reshape<input<N>>(), dx);
    dx += dy;
  }

  Norm group_norm;
  Proj to_q, to_k, to_v, to_out;
};

}  // namespace ldm::nn
