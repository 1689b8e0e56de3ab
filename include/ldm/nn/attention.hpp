#pragma once
// Self-attention over the H*W positions as diffusers' Attention builds it for UNet2DModel and
// AutoencoderKL (residual_connection, bias, rescale_output_factor 1):
//   a = group_norm(x);  q, k, v = to_q(a), to_k(a), to_v(a);  o = softmax(q k^T / sqrt(d)) v
//   y = to_out.0(o) + x
// NHWC makes (N, H*W, C) a reshape, so no transposes are needed; the attention between the norm
// and the residual is CrossAttention's self-attention, with biases on every projection.

#include "ldm/nn/cross_attention.hpp"
#include "ldm/nn/group_norm.hpp"
#include "ldm/nn/linear.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"

namespace ldm::nn {

template <class T, class Space, index_t H, index_t W, index_t C, index_t HeadDim, index_t Groups>
class Attention {
  static constexpr index_t L = H * W;
  using Norm = GroupNorm<T, Space, C, Groups>;
  using SelfAttention = CrossAttention<T, Space, L, C, HeadDim, L, C, Bias::with>;
  template <index_t N>
  using tokens = Shape<N, L, C>;

 public:
  using value_type = T;
  static constexpr index_t heads = SelfAttention::heads;
  static constexpr index_t parameter_count = Norm::parameter_count + SelfAttention::parameter_count;
  template <index_t N>
  using input = Shape<N, H, W, C>;
  template <index_t N>
  using output = input<N>;

  template <index_t N>
  struct Saved {
    typename Norm::template Saved<N> norm;
    Tensor<T, input<N>, Space> normed;
    typename SelfAttention::template Saved<N> attention;
  };

  // backward: da beside the attention's.
  template <index_t N>
  static constexpr Scratch scratch(const ops::HostScratch& host) {
    return {0, bytes_of<Tensor<T, tokens<N>, Space>> + scratch_of<SelfAttention, N>(host).backward};
  }

  // The projections keep diffusers' names at this module's scope: to_q, to_k, to_v, to_out.0.
  Attention(ParameterBinder<T, Space> b, double eps)
      : group_norm(b.scope("group_norm"), eps), attention(b) {}

  template <index_t N>
  void forward(View<const T, input<N>, Space> x, Saved<N>& s, View<T, input<N>, Space> y,
               const Mode& mode = inference) const {
    group_norm.forward(x, s.norm, s.normed.view());
    attention.forward(normed_tokens(s), s.attention, y.template reshape<tokens<N>>(), mode);
    y += x;
  }

  // Accumulates parameter gradients and overwrites dx.
  template <index_t N>
  void backward(View<const T, input<N>, Space> x, const Saved<N>& s,
                View<const T, input<N>, Space> dy, View<T, input<N>, Space> dx) const {
    Tensor<T, tokens<N>, Space> da(uninitialized);
    attention.backward(normed_tokens(s), s.attention, dy.template reshape<tokens<N>>(), da.view());
    group_norm.backward(x, s.norm, da.template reshape<input<N>>(), dx);
    dx += dy;
  }

  Norm group_norm;
  SelfAttention attention;

 private:
  template <index_t N>
  static View<const T, tokens<N>, Space> normed_tokens(const Saved<N>& s) {
    return View<const T, input<N>, Space>(s.normed).template reshape<tokens<N>>();
  }
};

}  // namespace ldm::nn
