#pragma once
/// @file
/// diffusers' AutoencoderKL: Encoder -> quant_conv -> (mean, logvar) ; z -> post_quant_conv ->
/// Decoder. Images are Shape<N, Res, Res, ImageC> in [-1, 1]; latents Shape<N, Res/f, Res/f, Z>
/// with f = 2^(levels - 1).

#include <tuple>

#include "ldm/models/autoencoder_blocks.hpp"
#include "ldm/models/config.hpp"
#include "ldm/models/config_traits.hpp"
#include "ldm/models/module_list.hpp"
#include "ldm/ops/loss.hpp"

namespace ldm::models {

template <class T, class Space, index_t ImageC, index_t Res, class Cfg>
class Encoder {
  using Ch = typename Cfg::block_out_channels;
  static constexpr int levels = Cfg::levels;
  static constexpr index_t G = Cfg::norm_num_groups;
  static_assert(Res % Cfg::latent_factor == 0,
                "ldm::Encoder: the resolution must be divisible by the latent factor "
                "2^(levels - 1) of the autoencoder's block_out_channels");

  template <std::size_t L>
  using Level = ResnetStack<T, Space, (Res >> L), (L == 0 ? Ch::first : Ch::at(int(L) - 1)),
                            Ch::at(int(L)), Cfg::layers_per_block,
                            (int(L) + 1 < levels ? Resample::down : Resample::none), G>;
  using Levels = indexed_tuple<Level, levels>;

 public:
  static constexpr index_t latent_res = Res / Cfg::latent_factor;
  static constexpr index_t out_channels = 2 * Cfg::latent_channels;
  using ConvIn = nn::Conv2d<T, Space, Res, Res, ImageC, Ch::first>;
  using Mid = AutoencoderMidBlock<T, Space, latent_res, Ch::last, G>;
  using NormOut = nn::GroupNorm<T, Space, Ch::last, G, nn::Activation::silu>;
  using ConvOut = nn::Conv2d<T, Space, latent_res, latent_res, Ch::last, out_channels>;
  static constexpr index_t parameter_count = parameters_of<ConvIn, Levels, Mid, NormOut, ConvOut>;
  template <index_t N>
  using input = Shape<N, Res, Res, ImageC>;
  template <index_t N>
  using output = Shape<N, latent_res, latent_res, out_channels>;

  template <index_t N>
  struct Saved {
    using Outputs = outputs_of_each<T, Space, Levels, N>;
    Tensor<T, Shape<N, Res, Res, Ch::first>, Space> after_conv_in;
    saved_of_each<Levels, N> level;
    Outputs after_level;
    typename Mid::template Saved<N> mid;
    Tensor<T, Shape<N, latent_res, latent_res, Ch::last>, Space> after_mid, after_norm_out;
    typename NormOut::template Saved<N> norm_out;
  };

  // backward: d_norm_out and d_mid; the levels' gradients (grads) from the mid block on; d_conv_in
  // from the levels on.
  template <index_t N>
  static constexpr nn::Scratch scratch(const ops::HostScratch& host) {
    const nn::Scratch levels_scratch = nn::scratch_of_each<Levels, N>(host);
    const auto conv_in = nn::scratch_of<ConvIn, N>(host), mid = nn::scratch_of<Mid, N>(host),
               conv_out = nn::scratch_of<ConvOut, N>(host);
    using Latent = Tensor<T, Shape<N, latent_res, latent_res, Ch::last>, Space>;
    return {
        nn::peak(conv_in.forward, levels_scratch.forward, mid.forward, conv_out.forward),
        2 * nn::bytes_of<Latent> +
            nn::peak(conv_out.backward,
                     nn::bytes_of<typename Saved<N>::Outputs> +
                         nn::peak(mid.backward,
                                  nn::bytes_of<Tensor<T, Shape<N, Res, Res, Ch::first>, Space>> +
                                      nn::peak(levels_scratch.backward, conv_in.backward)))};
  }

  explicit Encoder(nn::ParameterBinder<T, Space> b)
      : conv_in(b.scope("conv_in")),
        down_blocks(make_tuple<levels>([&](auto l) {
          return Level<l>(b.scope("down_blocks").scope(std::to_string(l)), Cfg::norm_eps);
        })),
        mid_block(b.scope("mid_block"), Cfg::norm_eps),
        conv_norm_out(b.scope("conv_norm_out"), Cfg::norm_eps),
        conv_out(b.scope("conv_out")) {}

  template <index_t N>
  void forward(View<const T, input<N>, Space> x, Saved<N>& s, View<T, output<N>, Space> y,
               const nn::Mode& mode = nn::inference) const {
    conv_in.forward(x, {}, s.after_conv_in.view());
    chain_forward(down_blocks, s.after_conv_in, s.level, s.after_level, mode);
    mid_block.forward(std::get<levels - 1>(s.after_level), s.mid, s.after_mid.view(), mode);
    conv_norm_out.forward(s.after_mid, s.norm_out, s.after_norm_out.view(), mode);
    conv_out.forward(s.after_norm_out, {}, y);
  }

  // Accumulates parameter gradients and overwrites dx, unless dx is a null view (training never
  // needs the gradient with respect to the images).
  template <index_t N>
  void backward(View<const T, input<N>, Space> x, const Saved<N>& s,
                View<const T, output<N>, Space> dy, View<T, input<N>, Space> dx) const {
    Tensor<T, Shape<N, latent_res, latent_res, Ch::last>, Space> d_norm_out(uninitialized),
        d_mid(uninitialized);
    conv_out.backward(s.after_norm_out, {}, dy, d_norm_out.view());
    conv_norm_out.backward(s.after_mid, s.norm_out, d_norm_out, d_mid.view());
    typename Saved<N>::Outputs grads;
    auto& d_last = std::get<levels - 1>(grads);
    mid_block.backward(std::get<levels - 1>(s.after_level), s.mid, d_mid, d_last.view());
    Tensor<T, Shape<N, Res, Res, Ch::first>, Space> d_conv_in(uninitialized);
    chain_backward(down_blocks, s.after_conv_in, s.level, s.after_level, grads, d_conv_in);
    if (dx.data())
      conv_in.backward(x, {}, d_conv_in, dx);
    else
      conv_in.backward_params(x, d_conv_in);
  }

  ConvIn conv_in;
  Levels down_blocks;
  Mid mid_block;
  NormOut conv_norm_out;
  ConvOut conv_out;
};

template <class T, class Space, index_t ImageC, index_t Res, class Cfg>
class Decoder {
  using Ch = typename Cfg::block_out_channels;
  static constexpr int levels = Cfg::levels;
  static constexpr index_t G = Cfg::norm_num_groups;
  static constexpr index_t latent_res = Res / Cfg::latent_factor;

  // Up level i runs at latent_res * 2^i on the channels of level (levels - 1 - i).
  template <std::size_t I>
  using Level =
      ResnetStack<T, Space, (latent_res << I), (I == 0 ? Ch::last : Ch::at(levels - int(I))),
                  Ch::at(levels - 1 - int(I)), Cfg::layers_per_block + 1,
                  (int(I) + 1 < levels ? Resample::up : Resample::none), G>;
  using Levels = indexed_tuple<Level, levels>;

 public:
  using ConvIn = nn::Conv2d<T, Space, latent_res, latent_res, Cfg::latent_channels, Ch::last>;
  using Mid = AutoencoderMidBlock<T, Space, latent_res, Ch::last, G>;
  using NormOut = nn::GroupNorm<T, Space, Ch::first, G, nn::Activation::silu>;
  using ConvOut = nn::Conv2d<T, Space, Res, Res, Ch::first, ImageC>;
  static constexpr index_t parameter_count = parameters_of<ConvIn, Mid, Levels, NormOut, ConvOut>;
  template <index_t N>
  using input = Shape<N, latent_res, latent_res, Cfg::latent_channels>;
  template <index_t N>
  using output = Shape<N, Res, Res, ImageC>;

  template <index_t N>
  struct Saved {
    using Outputs = outputs_of_each<T, Space, Levels, N>;
    Tensor<T, Shape<N, latent_res, latent_res, Ch::last>, Space> after_conv_in, after_mid;
    typename Mid::template Saved<N> mid;
    saved_of_each<Levels, N> level;
    Outputs after_level;
    typename NormOut::template Saved<N> norm_out;
    Tensor<T, Shape<N, Res, Res, Ch::first>, Space> after_norm_out;
  };

  // backward: d_norm_out; the levels' gradients (grads) from the norm on; d_mid and d_conv_in
  // from the levels on.
  template <index_t N>
  static constexpr nn::Scratch scratch(const ops::HostScratch& host) {
    const nn::Scratch levels_scratch = nn::scratch_of_each<Levels, N>(host);
    const auto conv_in = nn::scratch_of<ConvIn, N>(host), mid = nn::scratch_of<Mid, N>(host),
               conv_out = nn::scratch_of<ConvOut, N>(host);
    using Latent = Tensor<T, Shape<N, latent_res, latent_res, Ch::last>, Space>;
    return {nn::peak(conv_in.forward, mid.forward, levels_scratch.forward, conv_out.forward),
            nn::bytes_of<Tensor<T, Shape<N, Res, Res, Ch::first>, Space>> +
                nn::peak(conv_out.backward,
                         nn::bytes_of<typename Saved<N>::Outputs> + 2 * nn::bytes_of<Latent> +
                             nn::peak(levels_scratch.backward, mid.backward, conv_in.backward))};
  }

  explicit Decoder(nn::ParameterBinder<T, Space> b)
      : conv_in(b.scope("conv_in")),
        mid_block(b.scope("mid_block"), Cfg::norm_eps),
        up_blocks(make_tuple<levels>([&](auto i) {
          return Level<i>(b.scope("up_blocks").scope(std::to_string(i)), Cfg::norm_eps);
        })),
        conv_norm_out(b.scope("conv_norm_out"), Cfg::norm_eps),
        conv_out(b.scope("conv_out")) {}

  template <index_t N>
  void forward(View<const T, input<N>, Space> z, Saved<N>& s, View<T, output<N>, Space> y,
               const nn::Mode& mode = nn::inference) const {
    conv_in.forward(z, {}, s.after_conv_in.view());
    mid_block.forward(s.after_conv_in, s.mid, s.after_mid.view(), mode);
    chain_forward(up_blocks, s.after_mid, s.level, s.after_level, mode);
    conv_norm_out.forward(std::get<levels - 1>(s.after_level), s.norm_out, s.after_norm_out.view(),
                          mode);
    conv_out.forward(s.after_norm_out, {}, y);
  }

  // Accumulates parameter gradients and overwrites dz.
  template <index_t N>
  void backward(View<const T, input<N>, Space> z, const Saved<N>& s,
                View<const T, output<N>, Space> dy, View<T, input<N>, Space> dz) const {
    Tensor<T, Shape<N, Res, Res, Ch::first>, Space> d_norm_out(uninitialized);
    conv_out.backward(s.after_norm_out, {}, dy, d_norm_out.view());
    typename Saved<N>::Outputs grads;
    conv_norm_out.backward(std::get<levels - 1>(s.after_level), s.norm_out, d_norm_out,
                           std::get<levels - 1>(grads).view());
    Tensor<T, Shape<N, latent_res, latent_res, Ch::last>, Space> d_mid(uninitialized),
        d_conv_in(uninitialized);
    chain_backward(up_blocks, s.after_mid, s.level, s.after_level, grads, d_mid);
    mid_block.backward(s.after_conv_in, s.mid, d_mid, d_conv_in.view());
    conv_in.backward(z, {}, d_conv_in, dz);
  }

  ConvIn conv_in;
  Mid mid_block;
  Levels up_blocks;
  NormOut conv_norm_out;
  ConvOut conv_out;
};

/// The whole autoencoder. encode() gives the posterior's mean and (clamped) log-variance;
/// decode() maps latents to images. Training composes them with the reparameterisation
/// (ldm/train/autoencoder_loss.hpp), so each half keeps its own saved activations.
///
/// The model holds no memory of its own: its parameters live in a flat buffer it is bound to
/// (nn::Owned<AutoencoderKL, Space> owns one), under diffusers' names. Activations live in the
/// caller's Saved structures, so one model serves any batch size N.
/// @tparam T the element type of parameters and activations (float)
/// @tparam Space ldm::host or ldm::cuda
/// @tparam ImageC the images' channels
/// @tparam Res the images' height and width: a multiple of the latent factor, 2^(levels - 1) of
///         the configuration's block_out_channels (a compile error otherwise)
/// @tparam Config an ldm::AutoencoderKLConfig (checked here: compile errors name its fields)
template <class T, class Space, index_t ImageC, index_t Res, AutoencoderKLConfig Config>
class AutoencoderKL {
  // The configuration as a type of constants, the form Encoder and Decoder read.
  using Cfg = detail::autoencoder_traits<Config>;

 public:
  static constexpr AutoencoderKLConfig config = Config;  ///< The configuration.
  using value_type = T;                                  ///< The element type.
  using space = Space;                                   ///< Where parameters and activations live.
  /// @{
  /// The images' channels, height and width.
  static constexpr index_t image_channels = ImageC, resolution = Res;
  /// @}
  static constexpr index_t latent_channels = Cfg::latent_channels;  ///< The latents' channels.
  static constexpr index_t latent_res = Res / Cfg::latent_factor;   ///< The latents' height, width.
  using EncoderT = Encoder<T, Space, ImageC, Res, Cfg>;             ///< diffusers' Encoder.
  using DecoderT = Decoder<T, Space, ImageC, Res, Cfg>;             ///< diffusers' Decoder.
  /// The 1x1 convolution from the encoder's output to the moments.
  using QuantConv = nn::Conv2d<T, Space, latent_res, latent_res, 2 * latent_channels,
                               2 * latent_channels, ops::conv_same<1>>;
  /// The 1x1 convolution from a latent to the decoder's input.
  using PostQuantConv = nn::Conv2d<T, Space, latent_res, latent_res, latent_channels,
                                   latent_channels, ops::conv_same<1>>;
  /// The number of parameters (the size of the flat buffer the model is bound to).
  static constexpr index_t parameter_count =
      parameters_of<EncoderT, DecoderT, QuantConv, PostQuantConv>;
  /// A batch of N images: Shape<N, Res, Res, ImageC>.
  template <index_t N>
  using images = Shape<N, Res, Res, ImageC>;
  /// A batch of N latents: Shape<N, latent_res, latent_res, latent_channels>.
  template <index_t N>
  using latents = Shape<N, latent_res, latent_res, latent_channels>;
  /// A batch of N posteriors' (mean, logvar), concatenated along channels.
  template <index_t N>
  using moments = Shape<N, latent_res, latent_res, 2 * latent_channels>;

  /// @{
  /// diffusers' DiagonalGaussianDistribution clamps the log-variance to this range.
  static constexpr double logvar_min = -30, logvar_max = 20;
  /// @}

  /// What encode() keeps for encode_backward() (the layers' activations).
  template <index_t N>
  struct EncodeSaved {
    /// @cond
    typename EncoderT::template Saved<N> encoder;
    Tensor<T, moments<N>, Space> encoder_out, moments_raw;
    /// @endcond
  };
  /// What decode() keeps for decode_backward() (the layers' activations).
  template <index_t N>
  struct DecodeSaved {
    /// @cond
    typename DecoderT::template Saved<N> decoder;
    Tensor<T, latents<N>, Space> post_quant;
    /// @endcond
  };
  /// What a training step keeps between forward and backward.
  template <index_t N>
  struct Saved {
    EncodeSaved<N> encode;  ///< The encoder's half.
    DecodeSaved<N> decode;  ///< The decoder's half.
  };

  /// encode, decode and their backward passes, each with the temporaries it declares.
  /// @param host what the host ops choose at run time (ops/host_scratch.hpp)
  template <index_t N>
  static constexpr nn::Scratch encode_scratch(const ops::HostScratch& host) {
    const auto encoder_scratch = nn::scratch_of<EncoderT, N>(host),
               quant = nn::scratch_of<QuantConv, N>(host);
    return {nn::peak(encoder_scratch.forward, quant.forward),
            3 * nn::bytes_of<Tensor<T, latents<N>, Space>> +
                2 * nn::bytes_of<Tensor<T, moments<N>, Space>> +
                nn::peak(quant.backward, encoder_scratch.backward)};
  }
  /// The same for decode() and decode_backward().
  template <index_t N>
  static constexpr nn::Scratch decode_scratch(const ops::HostScratch& host) {
    const auto decoder_scratch = nn::scratch_of<DecoderT, N>(host),
               post_quant = nn::scratch_of<PostQuantConv, N>(host);
    return {nn::peak(post_quant.forward, decoder_scratch.forward),
            nn::bytes_of<Tensor<T, latents<N>, Space>> +
                nn::peak(decoder_scratch.backward, post_quant.backward)};
  }

  /// Binds the layers to their parameters.
  /// @param b the flat parameter buffer and the scope of diffusers' names to bind under (see
  ///        nn::Owned, which makes one)
  explicit AutoencoderKL(nn::ParameterBinder<T, Space> b)
      : encoder(b.scope("encoder")),
        decoder(b.scope("decoder")),
        quant_conv(b.scope("quant_conv")),
        post_quant_conv(b.scope("post_quant_conv")) {}

  /// The posterior N(mean, exp(logvar)); logvar is clamped to [-30, 20].
  /// @param x images in [-1, 1]
  /// @param s receives the activations encode_backward() needs
  /// @param mean receives the posterior's mean
  /// @param logvar receives its clamped log-variance
  /// @param mode training (dropout on, with its seed) or inference
  template <index_t N>
  void encode(View<const T, images<N>, Space> x, EncodeSaved<N>& s, View<T, latents<N>, Space> mean,
              View<T, latents<N>, Space> logvar, const nn::Mode& mode = nn::inference) const {
    encoder.forward(x, s.encoder, s.encoder_out.view(), mode);
    quant_conv.forward(s.encoder_out, {}, s.moments_raw.view());
    ops::split_channels(View<const T, moments<N>, Space>(s.moments_raw), mean, logvar);
    logvar = clamp(logvar, logvar_min, logvar_max);
  }

  /// Accumulates parameter gradients and overwrites dx (unless it is a null view) from the
  /// gradients with respect to mean and the clamped logvar; the clamp passes no gradient where it
  /// was active. `x` and `s` must be what encode() was given and filled.
  template <index_t N>
  void encode_backward(View<const T, images<N>, Space> x, const EncodeSaved<N>& s,
                       View<const T, latents<N>, Space> dmean,
                       View<const T, latents<N>, Space> dlogvar,
                       View<T, images<N>, Space> dx = View<T, images<N>, Space>(nullptr)) const {
    Tensor<T, latents<N>, Space> raw_logvar(uninitialized), raw_mean(uninitialized),
        dlogvar_raw(uninitialized);
    ops::split_channels(View<const T, moments<N>, Space>(s.moments_raw), raw_mean.view(),
                        raw_logvar.view());
    dlogvar_raw = dlogvar * ((raw_logvar >= logvar_min) * (raw_logvar <= logvar_max));
    Tensor<T, moments<N>, Space> dmoments(uninitialized), dencoder_out(uninitialized);
    ops::concat_channels(dmean, View<const T, latents<N>, Space>(dlogvar_raw), dmoments.view());
    quant_conv.backward(s.encoder_out, {}, dmoments, dencoder_out.view());
    encoder.backward(x, s.encoder, dencoder_out, dx);
  }

  /// Images from latents (unscaled: LatentDiffusion divides by its scaling factor first).
  /// @param z latents
  /// @param s receives the activations decode_backward() needs
  /// @param y receives the images
  /// @param mode training or inference
  template <index_t N>
  void decode(View<const T, latents<N>, Space> z, DecodeSaved<N>& s, View<T, images<N>, Space> y,
              const nn::Mode& mode = nn::inference) const {
    post_quant_conv.forward(z, {}, s.post_quant.view());
    decoder.forward(s.post_quant, s.decoder, y, mode);
  }

  /// Accumulates parameter gradients and overwrites dz. `z` and `s` must be what decode() was
  /// given and filled.
  template <index_t N>
  void decode_backward(View<const T, latents<N>, Space> z, const DecodeSaved<N>& s,
                       View<const T, images<N>, Space> dy, View<T, latents<N>, Space> dz) const {
    Tensor<T, latents<N>, Space> dpost(uninitialized);
    decoder.backward(s.post_quant, s.decoder, dy, dpost.view());
    post_quant_conv.backward(z, {}, dpost, dz);
  }

  /// @{
  /// The layers, named as diffusers names them: their parameters are `encoder.*`, `decoder.*`,
  /// `quant_conv.*` and `post_quant_conv.*`.
  EncoderT encoder;
  DecoderT decoder;
  QuantConv quant_conv;
  PostQuantConv post_quant_conv;
  /// @}
};

}  // namespace ldm::models
