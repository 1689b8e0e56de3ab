#pragma once
/// @file
/// Transformer2DModel over continuous input, as diffusers' cross-attention UNet blocks build it:
///   t = proj_in(norm(x))                      (GroupNorm eps 1e-6; proj_in a 1x1 convolution,
///                                              or a Linear with use_linear_projection)
///   t = transformer_blocks.i(t, context)      for i in [0, Layers)
///   y = proj_out(t) + x
/// NHWC makes the [N, H W, Inner] token view of an image a reshape, so there are no permutes,
/// and a 1x1 convolution and a Linear compute the same function (their weights differ only in
/// their state-dict shapes).

#include <array>
#include <cstddef>
#include <string>
#include <type_traits>
#include <utility>

#include "ldm/nn/conv2d.hpp"
#include "ldm/nn/group_norm.hpp"
#include "ldm/nn/linear.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"
#include "ldm/nn/transformer_block.hpp"

namespace ldm::nn {

/// How Transformer2DModel projects into and out of the token channels.
enum class TokenProjection {
  conv1x1,  ///< Conv2d with kernel 1 (diffusers' default, use_linear_projection=False)
  linear    ///< Linear (use_linear_projection=True, as Stable Diffusion 2 does)
};

/// Transformer2DModel: GroupNorm, proj_in, Layers BasicTransformerBlocks of Heads heads of
/// HeadDim channels attending to a [N, Lc, Cc] context, proj_out and the residual.
template <class T, class Space, index_t H, index_t W, index_t C, index_t Heads, index_t HeadDim,
          index_t Lc, index_t Cc, index_t Layers, index_t Groups, TokenProjection Projection>
class Transformer2DModel {
  static_assert(Layers >= 1, "ldm::nn::Transformer2DModel: at least one transformer block");
  static constexpr index_t L = H * W;
  static constexpr index_t inner = Heads * HeadDim;
  using Norm = GroupNorm<T, Space, C, Groups>;
  using ProjIn =
      std::conditional_t<Projection == TokenProjection::linear, Linear<T, Space, C, inner>,
                         Conv2d<T, Space, H, W, C, inner, ops::conv_same<1>>>;
  using ProjOut =
      std::conditional_t<Projection == TokenProjection::linear, Linear<T, Space, inner, C>,
                         Conv2d<T, Space, H, W, inner, C, ops::conv_same<1>>>;
  using Block = BasicTransformerBlock<T, Space, L, inner, HeadDim, Lc, Cc>;

 public:
  /// The element type.
  using value_type = T;
  /// norm, proj_in, the blocks and proj_out.
  static constexpr index_t parameter_count = Norm::parameter_count + ProjIn::parameter_count +
                                             Layers * Block::parameter_count +
                                             ProjOut::parameter_count;
  /// The image (hidden_states), NHWC.
  template <index_t N>
  using input = Shape<N, H, W, C>;
  /// The same shape as the input.
  template <index_t N>
  using output = input<N>;
  /// encoder_hidden_states.
  template <index_t N>
  using context = Shape<N, Lc, Cc>;

  /// What backward reads.
  template <index_t N>
  struct Saved {
    /// The GroupNorm's statistics.
    typename Norm::template Saved<N> norm;
    /// norm(x): proj_in's input.
    Tensor<T, input<N>, Space> normed;
    /// The tokens entering each block, then the last block's output (proj_out's input).
    std::array<Tensor<T, Shape<N, L, inner>, Space>, Layers + 1> tokens;
    /// Each block's.
    std::array<typename Block::template Saved<N>, Layers> blocks;
  };

  /// backward: two token gradients and a context gradient beside proj_out's and the blocks' own,
  /// then the normed image's gradient beside proj_in's.
  template <index_t N>
  static constexpr Scratch scratch(const ops::HostScratch& host) {
    using Tokens = Tensor<T, Shape<N, L, inner>, Space>;
    return {peak(scratch_of<ProjIn, proj_rows<N>>(host).forward,
                 scratch_of<ProjOut, proj_rows<N>>(host).forward),
            bytes_of<Tokens, Tokens, Tensor<T, context<N>, Space>> +
                peak(scratch_of<ProjOut, proj_rows<N>>(host).backward,
                     scratch_of<Block, N>(host).backward,
                     bytes_of<Tensor<T, input<N>, Space>> +
                         scratch_of<ProjIn, proj_rows<N>>(host).backward)};
  }

  /// Takes norm, proj_in, transformer_blocks.<i> and proj_out from the binder.
  /// @param norm_eps the blocks' LayerNorm eps (diffusers' norm_eps, 1e-5 by default); the
  /// GroupNorm's is diffusers' fixed 1e-6.
  explicit Transformer2DModel(ParameterBinder<T, Space> b, double norm_eps = 1e-5)
      : norm(b.scope("norm"), 1e-6),
        proj_in(b.scope("proj_in")),
        transformer_blocks(make_blocks(b.scope("transformer_blocks"), norm_eps,
                                       std::make_index_sequence<std::size_t(Layers)>{})),
        proj_out(b.scope("proj_out")) {}

  /// Overwrites y and `saved`.
  template <index_t N>
  void forward(View<const T, input<N>, Space> x, View<const T, context<N>, Space> context_states,
               Saved<N>& saved, View<T, output<N>, Space> y, const Mode& mode = inference) const {
    norm.forward(x, saved.norm, saved.normed.view());
    proj_in.forward(saved.normed, {}, image_view(saved.tokens[0].view()));
    for (index_t i = 0; i < Layers; ++i)
      transformer_blocks[std::size_t(i)].forward(saved.tokens[std::size_t(i)], context_states,
                                                 saved.blocks[std::size_t(i)],
                                                 saved.tokens[std::size_t(i) + 1].view(), mode);
    proj_out.forward(image_view(View<const T, Shape<N, L, inner>, Space>(saved.tokens[Layers])), {},
                     y);
    y += x;
  }

  /// Adds the parameter gradients; overwrites dx and dcontext (the sum of every block's).
  template <index_t N>
  void backward(View<const T, input<N>, Space> x, View<const T, context<N>, Space> context_states,
                const Saved<N>& saved, View<const T, output<N>, Space> dy,
                View<T, input<N>, Space> dx, View<T, context<N>, Space> dcontext) const {
    // Block i reads the gradient of its output from one buffer and writes its input's into the
    // other, so the two alternate.
    std::array<Tensor<T, Shape<N, L, inner>, Space>, 2> dtokens;
    Tensor<T, context<N>, Space> dcontext_block;
    proj_out.backward(image_view(View<const T, Shape<N, L, inner>, Space>(saved.tokens[Layers])),
                      {}, dy, image_view(dtokens[Layers % 2].view()));
    for (index_t i = Layers - 1; i >= 0; --i) {
      const auto& dout = dtokens[std::size_t((i + 1) % 2)];
      auto din = dtokens[std::size_t(i % 2)].view();
      const auto k = std::size_t(i);
      if (i == Layers - 1) {
        transformer_blocks[k].backward(saved.tokens[k], context_states, saved.blocks[k], dout, din,
                                       dcontext);
      } else {
        transformer_blocks[k].backward(saved.tokens[k], context_states, saved.blocks[k], dout, din,
                                       dcontext_block.view());
        dcontext += dcontext_block;
      }
    }
    Tensor<T, input<N>, Space> dnormed;
    proj_in.backward(saved.normed, {},
                     image_view(View<const T, Shape<N, L, inner>, Space>(dtokens[0])),
                     dnormed.view());
    norm.backward(x, saved.norm, dnormed, dx);
    dx += dy;
  }

  /// GroupNorm(Groups, C, eps 1e-6).
  Norm norm;
  /// C -> Heads HeadDim channels.
  ProjIn proj_in;
  /// The transformer layers.
  std::array<Block, std::size_t(Layers)> transformer_blocks;
  /// Heads HeadDim -> C channels.
  ProjOut proj_out;

 private:
  // A Linear counts rows, a convolution samples.
  template <index_t N>
  static constexpr index_t proj_rows = Projection == TokenProjection::linear ? N* L : N;

  template <class U, index_t N>
  static View<U, Shape<N, H, W, inner>, Space> image_view(View<U, Shape<N, L, inner>, Space> t) {
    return t.template reshape<Shape<N, H, W, inner>>();
  }

  template <std::size_t... I>
  static std::array<Block, std::size_t(Layers)> make_blocks(ParameterBinder<T, Space> b,
                                                            double norm_eps,
                                                            std::index_sequence<I...>) {
    return {Block(b.scope(std::to_string(I)), norm_eps)...};
  }
};

}  // namespace ldm::nn
