#pragma once
/// @file
/// diffusers' UNet2DModel and UNet2DConditionModel (positional time embedding, flip_sin_to_cos,
/// freq_shift 0):
/// @verbatim
///   emb = time_embedding(sinusoid(t)) [+ class_embedding(label)]
///   h = conv_in(x); down levels (skips kept); mid (resnet, attention, resnet); up levels (skips
///   concatenated, second); y = conv_out(silu(conv_norm_out(h)))
/// @endverbatim
/// over latents Shape<N, Res, Res, C>, predicting a tensor of the same shape. The two differ only
/// in their attention: UNet2DModel's attends within the image; UNet2DConditionModel's is a
/// Transformer2DModel that also attends to a context of Tokens tokens (encoder_hidden_states).

#include <cstdint>
#include <tuple>

#include "ldm/models/config_traits.hpp"
#include "ldm/models/unet_blocks.hpp"

namespace ldm::models {

/// diffusers' UNet2DModel (Config an ldm::UNetConfig, no Tokens) or UNet2DConditionModel (Config
/// an ldm::UNetConditionConfig, Tokens context tokens; see models::UNetCondition) over latents
/// Shape<N, Res, Res, C>, predicting a tensor of the same shape (the noise, or v).
///
/// Like AutoencoderKL, the model is bound to a flat parameter buffer (nn::Owned<UNet, Space>
/// owns one) under diffusers' names, and activations live in the caller's Saved<N>.
/// @tparam T the element type (float)
/// @tparam Space ldm::host or ldm::cuda
/// @tparam C the latents' channels (in and out)
/// @tparam Res the latents' height and width: a multiple of 2^(levels - 1) of the
///         configuration's block_out_channels (a compile error otherwise)
/// @tparam Config an ldm::UNetConfig or an ldm::UNetConditionConfig (checked here: compile errors
///         name its fields)
/// @tparam Tokens the context's tokens (sequence length): positive with a UNetConditionConfig,
///         0 with a UNetConfig (compile errors otherwise)
template <class T, class Space, index_t C, index_t Res, auto Config, index_t Tokens = 0>
class UNet {
  // The configuration as a type of constants, the form the levels read.
  using Cfg = detail::unet_traits_t<Config>;
  using Ch = typename Cfg::block_out_channels;
  static constexpr int levels = Cfg::levels;
  static constexpr index_t E = Cfg::time_embed_dim, G = Cfg::norm_num_groups;
  static_assert(Res % Cfg::downsample_factor == 0,
                "ldm::UNet: the latent resolution must be divisible by 2^(levels - 1) of the "
                "UNet's block_out_channels");
  static constexpr bool with_context = requires { Cfg::cross_attention_dim; };
  static_assert(!with_context || Tokens > 0,
                "ldm::UNet: a UNetConditionConfig needs the context's token count, positive "
                "(models::UNetCondition<T, Space, C, Res, Tokens, Config>)");
  static_assert(with_context || Tokens == 0,
                "ldm::UNet: a UNetConfig (UNet2DModel) takes no context; give a "
                "UNetConditionConfig for cross-attention on Tokens tokens");
  using Skips = SkipLayout<Cfg, Res>;
  template <std::size_t L>
  using Down = UNetDownLevel<T, Space, Cfg, Res, int(L), Tokens>;
  template <std::size_t I>
  using Up = UNetUpLevel<T, Space, Cfg, Res, int(I), Tokens>;
  using Downs = indexed_tuple<Down, levels>;
  using Ups = indexed_tuple<Up, levels>;
  static constexpr index_t mid_res = Res >> (levels - 1);
  using MidResnet = nn::ResnetBlock2D<T, Space, mid_res, mid_res, Ch::last, Ch::last, E, G>;
  using MidAttention = LevelAttention<T, Space, Cfg, Tokens, mid_res, levels - 1, true>;
  template <index_t N>
  using Context = LevelContext<T, Space, Cfg, Tokens, N>;
  static constexpr bool class_conditional = Cfg::num_class_embeds > 0;
  using ClassEmbedding = std::conditional_t<
      class_conditional,
      nn::Embedding<T, Space, (class_conditional ? Cfg::num_class_embeds : 1), E>, nn::Absent>;

 public:
  static constexpr auto config = Config;  ///< The configuration.
  using value_type = T;                   ///< The element type.
  using space = Space;                    ///< Where parameters and activations live.
  /// @{
  /// The latents' channels, height and width.
  static constexpr index_t channels = C, resolution = Res;
  /// @}
  /// Whether the attention reads a context (UNet2DConditionModel).
  static constexpr bool conditional = with_context;
  /// The context's tokens (0 without one).
  static constexpr index_t context_tokens = Tokens;
  /// The context's channels, cross_attention_dim (0 without one).
  static constexpr index_t context_channels = [] {
    if constexpr (with_context)
      return Cfg::cross_attention_dim;
    else
      return index_t(0);
  }();
  using TimeEmbedding = nn::TimestepEmbedding<T, Space, Ch::first, E>;  ///< sinusoid -> MLP.
  using ConvIn = nn::Conv2d<T, Space, Res, Res, C, Ch::first>;          ///< The first convolution.
  /// The last normalisation (GroupNorm, then SiLU).
  using NormOut = nn::GroupNorm<T, Space, Ch::first, G, nn::Activation::silu>;
  using ConvOut = nn::Conv2d<T, Space, Res, Res, Ch::first, C>;  ///< The last convolution.
  /// The number of parameters (the size of the flat buffer the model is bound to).
  static constexpr index_t parameter_count =
      parameters_of<ConvIn, TimeEmbedding, ClassEmbedding, Downs, MidResnet, MidAttention,
                    MidResnet, Ups, NormOut, ConvOut>;
  /// A batch of N latents: Shape<N, Res, Res, C>.
  template <index_t N>
  using sample = Shape<N, Res, Res, C>;
  /// A batch of N contexts (encoder_hidden_states): Shape<N, Tokens, cross_attention_dim> (for a
  /// model without one, a placeholder shape).
  template <index_t N>
  using context = Shape<N, (with_context ? Tokens : 1), (with_context ? context_channels : 1)>;

  /// What forward() keeps for backward() (the layers' activations).
  template <index_t N>
  struct Saved {
    /// @cond
    using SkipTuple = typename SkipTensors<T, Space, Cfg, Res, N>::type;
    using UpOutputs = outputs_of_each<T, Space, Ups, N>;

    typename TimeEmbedding::template Saved<N> time;
    Tensor<T, Shape<N, E>, Space> emb;
    SkipTuple skips;
    saved_of_each<Downs, N> down;
    typename MidResnet::template Saved<N> mid_res0, mid_res1;
    typename MidAttention::template Saved<N> mid_attn;
    Tensor<T, Shape<N, mid_res, mid_res, Ch::last>, Space> after_mid_res0, after_mid_attn,
        after_mid;
    saved_of_each<Ups, N> up;
    UpOutputs after_up;
    typename NormOut::template Saved<N> norm_out;
    Tensor<T, Shape<N, Res, Res, Ch::first>, Space> after_norm_out;
    /// @endcond
  };

  /// The temporaries forward() and backward() declare, in bytes.
  /// @param host what the host ops choose at run time (ops/host_scratch.hpp)
  // forward: a class embedding's; backward: demb, the skip gradients (grads), the up levels'
  // gradients (up_grads) and d_norm_out throughout; d_mid, d_attn and d_res0 from the up levels
  // on; demb_part from the mid block on (and the mid attention's context gradient beside its
  // backward); d_mid_in from its first resnet on.
  template <index_t N>
  static constexpr nn::Scratch scratch(const ops::HostScratch& host) {
    using Emb = Tensor<T, Shape<N, E>, Space>;
    using Mid = Tensor<T, Shape<N, mid_res, mid_res, Ch::last>, Space>;
    const nn::Scratch downs = nn::scratch_of_each<Downs, N>(host),
                      ups = nn::scratch_of_each<Ups, N>(host);
    const auto conv_in = nn::scratch_of<ConvIn, N>(host),
               conv_out = nn::scratch_of<ConvOut, N>(host),
               resnet = nn::scratch_of<MidResnet, N>(host),
               attention = nn::scratch_of<MidAttention, N>(host),
               time = nn::scratch_of<TimeEmbedding, N>(host);
    const std::size_t forward =
        nn::peak(class_conditional ? nn::bytes_of<Emb> : 0, conv_in.forward, downs.forward,
                 resnet.forward, attention.forward, ups.forward, conv_out.forward);
    const std::size_t mid_backward =
        nn::bytes_of<Emb> + nn::peak(resnet.backward, Context<N>::bytes + attention.backward,
                                     nn::bytes_of<Mid> + nn::peak(resnet.backward, downs.backward,
                                                                  conv_in.backward, time.backward));
    const std::size_t backward =
        nn::bytes_of<Emb, typename Saved<N>::SkipTuple, typename Saved<N>::UpOutputs,
                     Tensor<T, Shape<N, Res, Res, Ch::first>, Space>> +
        nn::peak(conv_out.backward, 3 * nn::bytes_of<Mid> + nn::peak(ups.backward, mid_backward));
    return {forward, backward};
  }

  /// Binds the layers to their parameters.
  /// @param b the flat parameter buffer and the scope of diffusers' names to bind under (see
  ///        nn::Owned, which makes one)
  /// @param dropout the dropout probability of the ResNet blocks when training
  UNet(nn::ParameterBinder<T, Space> b, float dropout = 0)
      : conv_in(b.scope("conv_in")),
        time_embedding(b.scope("time_embedding"), Cfg::flip_sin_to_cos, Cfg::freq_shift),
        class_embedding(bind_if<ClassEmbedding, class_conditional>(b.scope("class_embedding"))),
        down_blocks(make_tuple<levels>([&](auto l) {
          return Down<l>(b.scope("down_blocks").scope(std::to_string(l)), dropout);
        })),
        mid_res0(b.scope("mid_block").scope("resnets").scope("0"), Cfg::norm_eps, dropout),
        mid_attention(make_level_attention<MidAttention, Cfg, Tokens>(
            b.scope("mid_block").scope("attentions").scope("0"))),
        mid_res1(b.scope("mid_block").scope("resnets").scope("1"), Cfg::norm_eps, dropout),
        up_blocks(make_tuple<levels>(
            [&](auto i) { return Up<i>(b.scope("up_blocks").scope(std::to_string(i)), dropout); })),
        conv_norm_out(b.scope("conv_norm_out"), Cfg::norm_eps),
        conv_out(b.scope("conv_out")) {}

  /// eps (or v) prediction for noisy latents x at timesteps t (UNet2DModel); labels only when
  /// class-conditional.
  /// @param x noisy latents
  /// @param timesteps each sample's timestep (as a float, as diffusers passes it)
  /// @param s receives the activations backward() needs
  /// @param y receives the prediction
  /// @param mode training (dropout on, with its seed) or inference
  /// @param labels each sample's class, in [0, num_class_embeds); only for a class-conditional
  ///        UNet
  /// @throws ldm::Error when the UNet is class-conditional and no labels are given
  template <index_t N>
  requires(!with_context) void forward(
      View<const T, sample<N>, Space> x, View<const float, Shape<N>, Space> timesteps, Saved<N>& s,
      View<T, sample<N>, Space> y, const nn::Mode& mode = nn::inference,
      View<const std::int32_t, Shape<N>, Space> labels =
          View<const std::int32_t, Shape<N>, Space>(nullptr)) const {
    run_forward(x, timesteps, NoContext{}, s, y, mode, labels);
  }

  /// eps (or v) prediction for noisy latents x at timesteps t given a context
  /// (UNet2DConditionModel's encoder_hidden_states); labels only when class-conditional.
  /// @param x noisy latents
  /// @param timesteps each sample's timestep (as a float, as diffusers passes it)
  /// @param context_states each sample's Tokens tokens of cross_attention_dim channels
  /// @param s receives the activations backward() needs
  /// @param y receives the prediction
  /// @param mode training (dropout on, with its seed) or inference
  /// @param labels each sample's class, in [0, num_class_embeds); only for a class-conditional
  ///        UNet
  /// @throws ldm::Error when the UNet is class-conditional and no labels are given
  template <index_t N>
  requires with_context void forward(View<const T, sample<N>, Space> x,
                                     View<const float, Shape<N>, Space> timesteps,
                                     View<const T, context<N>, Space> context_states, Saved<N>& s,
                                     View<T, sample<N>, Space> y,
                                     const nn::Mode& mode = nn::inference,
                                     View<const std::int32_t, Shape<N>, Space> labels =
                                         View<const std::int32_t, Shape<N>, Space>(nullptr)) const {
    run_forward(x, timesteps, context_states, s, y, mode, labels);
  }

  /// Accumulates every parameter gradient; overwrites dx when given (the diffusion step does not
  /// need it). `x`, `s` and `labels` must be what forward() was given and filled.
  template <index_t N>
  requires(!with_context) void backward(
      View<const T, sample<N>, Space> x, const Saved<N>& s, View<const T, sample<N>, Space> dy,
      View<T, sample<N>, Space> dx = View<T, sample<N>, Space>(nullptr),
      View<const std::int32_t, Shape<N>, Space> labels =
          View<const std::int32_t, Shape<N>, Space>(nullptr)) const {
    run_backward(x, NoContext{}, s, dy, dx, NoContext{}, labels);
  }

  /// Accumulates every parameter gradient; overwrites dx and dcontext, each when given (training
  /// the UNet on a frozen text encoder's output needs neither). `x`, `context_states`, `s` and
  /// `labels`
  /// must be what forward() was given and filled.
  /// @param dcontext receives the gradient of the context (encoder_hidden_states)
  template <index_t N>
  requires with_context void backward(
      View<const T, sample<N>, Space> x, View<const T, context<N>, Space> context_states,
      const Saved<N>& s, View<const T, sample<N>, Space> dy,
      View<T, sample<N>, Space> dx = View<T, sample<N>, Space>(nullptr),
      View<T, context<N>, Space> dcontext = View<T, context<N>, Space>(nullptr),
      View<const std::int32_t, Shape<N>, Space> labels =
          View<const std::int32_t, Shape<N>, Space>(nullptr)) const {
    if (dcontext.data()) dcontext = T(0);
    run_backward(x, context_states, s, dy, dx, dcontext, labels);
  }

  /// @{
  /// The layers. Their parameters carry diffusers' names: `conv_in.*`, `time_embedding.*`,
  /// `class_embedding.*` (class-conditional only), `down_blocks.<level>.*`,
  /// `mid_block.resnets.0.*`, `mid_block.attentions.0.*`, `mid_block.resnets.1.*`,
  /// `up_blocks.<level>.*`, `conv_norm_out.*` and `conv_out.*`.
  ConvIn conv_in;
  TimeEmbedding time_embedding;
  [[no_unique_address]] ClassEmbedding class_embedding;
  Downs down_blocks;
  MidResnet mid_res0;
  MidAttention mid_attention;
  MidResnet mid_res1;
  Ups up_blocks;
  NormOut conv_norm_out;
  ConvOut conv_out;
  /// @}

 private:
  template <index_t N, class ContextView>
  void run_forward(View<const T, sample<N>, Space> x, View<const float, Shape<N>, Space> timesteps,
                   ContextView context, Saved<N>& s, View<T, sample<N>, Space> y,
                   const nn::Mode& mode, View<const std::int32_t, Shape<N>, Space> labels) const {
    time_embedding.forward(timesteps, s.time, s.emb.view());
    if constexpr (class_conditional) {
      if (!labels.data()) fail("ldm::UNet: this UNet is class-conditional; pass class labels");
      Tensor<T, Shape<N, E>, Space> class_emb;
      class_embedding.forward(labels, {}, class_emb.view());
      s.emb += class_emb;
    }
    auto emb = View<const T, Shape<N, E>, Space>(s.emb);
    conv_in.forward(x, {}, std::get<0>(s.skips).view());
    static_for<levels>([&](auto l) {
      std::get<l>(down_blocks).forward(emb, context, s.skips, std::get<l>(s.down), mode);
    });
    mid_res0.forward(std::get<Skips::count - 1>(s.skips), emb, s.mid_res0, s.after_mid_res0.view(),
                     mode);
    attention_forward(mid_attention, s.after_mid_res0, context, s.mid_attn, s.after_mid_attn.view(),
                      mode);
    mid_res1.forward(s.after_mid_attn, emb, s.mid_res1, s.after_mid.view(), mode);
    // The up levels chain as the autoencoder's do (chain_forward), with the skips beside.
    static_for<levels>([&](auto i) {
      std::get<i>(up_blocks).forward(chain_input<i>(s.after_mid, s.after_up), emb, context, s.skips,
                                     std::get<i>(s.up), std::get<i>(s.after_up).view(), mode);
    });
    conv_norm_out.forward(std::get<levels - 1>(s.after_up), s.norm_out, s.after_norm_out.view(),
                          mode);
    conv_out.forward(s.after_norm_out, {}, y);
  }

  template <index_t N, class ContextView, class ContextGrad>
  void run_backward(View<const T, sample<N>, Space> x, ContextView context, const Saved<N>& s,
                    View<const T, sample<N>, Space> dy, View<T, sample<N>, Space> dx,
                    ContextGrad dcontext, View<const std::int32_t, Shape<N>, Space> labels) const {
    auto emb = View<const T, Shape<N, E>, Space>(s.emb);
    Tensor<T, Shape<N, E>, Space> demb;
    typename Saved<N>::SkipTuple grads;
    typename Saved<N>::UpOutputs up_grads;

    Tensor<T, Shape<N, Res, Res, Ch::first>, Space> d_norm_out;
    conv_out.backward(s.after_norm_out, {}, dy, d_norm_out.view());
    conv_norm_out.backward(std::get<levels - 1>(s.after_up), s.norm_out, d_norm_out,
                           std::get<levels - 1>(up_grads).view());
    Tensor<T, Shape<N, mid_res, mid_res, Ch::last>, Space> d_mid, d_attn, d_res0;
    static_for_reverse<levels>([&](auto i) {
      std::get<i>(up_blocks).backward(
          chain_input<i>(s.after_mid, s.after_up), emb, context, grads, std::get<i>(s.up),
          std::get<i>(up_grads), chain_input<i>(d_mid, up_grads).view(), demb.view(), dcontext);
    });
    Tensor<T, Shape<N, E>, Space> demb_part;
    mid_res1.backward(s.after_mid_attn, emb, s.mid_res1, d_mid, d_attn.view(), demb_part.view());
    demb += demb_part;
    attention_backward(mid_attention, s.after_mid_res0, context, s.mid_attn, d_attn, d_res0.view(),
                       dcontext);
    Tensor<T, Shape<N, mid_res, mid_res, Ch::last>, Space> d_mid_in;
    mid_res0.backward(std::get<Skips::count - 1>(s.skips), emb, s.mid_res0, d_res0, d_mid_in.view(),
                      demb_part.view());
    demb += demb_part;
    std::get<Skips::count - 1>(grads) += d_mid_in;
    static_for_reverse<levels>([&](auto l) {
      std::get<l>(down_blocks)
          .backward(emb, context, s.skips, grads, std::get<l>(s.down), demb.view(), dcontext);
    });
    if (dx.data())
      conv_in.backward(x, {}, std::get<0>(grads), dx);
    else
      conv_in.backward_params(x, std::get<0>(grads));
    time_embedding.backward(s.time, demb);
    if constexpr (class_conditional) class_embedding.backward(labels, {}, demb);
  }
};

/// diffusers' UNet2DConditionModel: a models::UNet whose attention is a Transformer2DModel that
/// reads a context of Tokens tokens of Config.cross_attention_dim channels (encoder_hidden_states,
/// e.g. a text encoder's hidden states):
/// @code{.cpp}
///   using U = models::UNetCondition<float, host, 4, 64, /*Tokens*/ 77,
///                                   configs::StableDiffusion15UNet>;
///   nn::Owned<U> unet(seed);
///   unet->forward(x, timesteps, context, saved, y);       // context: U::context<N>
///   unet->backward(x, context, saved, dy, dx, dcontext);  // dx, dcontext optional
/// @endcode
/// @tparam Tokens the context's length (positive)
/// @tparam Config an ldm::UNetConditionConfig
template <class T, class Space, index_t C, index_t Res, index_t Tokens, UNetConditionConfig Config>
using UNetCondition = UNet<T, Space, C, Res, Config, Tokens>;

}  // namespace ldm::models
