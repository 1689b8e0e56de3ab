#pragma once
/// @file
/// Compile-time configurations of the models, named as diffusers' configs name them.
///
/// @code{.cpp}
///   using AE   = ldm::AutoencoderKLConfig<ldm::channels<32, 32, 64>, /*layers_per_block*/ 1,
///                                         /*latent_channels*/ 4>;
///   using UNet = ldm::UNetConfig<ldm::channels<32, 64>, /*layers_per_block*/ 2,
///                                ldm::attention_at<1>, /*attention_head_dim*/ 32>;
///   // Stable Diffusion 1.5's UNet2DConditionModel (attention_head_dim 8 means 8 HEADS there)
///   using SD = ldm::UNetConditionConfig<ldm::channels<320, 640, 1280, 1280>, 2,
///                                       ldm::cross_attention_at<0, 1, 2>, ldm::per_level<8>,
///                                       /*cross_attention_dim*/ 768>;
/// @endcode
///
/// Every check that can fail is a static_assert with a message that names the field.

#include <array>
#include <cstddef>

#include "ldm/core/macros.hpp"

namespace ldm {

/// block_out_channels: the channel count of each resolution level, finest first. At least one
/// level, every count positive (compile errors otherwise).
template <index_t... C>
struct channels {
  static_assert(sizeof...(C) > 0, "ldm::channels: give at least one level");
  static_assert(((C > 0) && ...), "ldm::channels: channel counts must be positive");
  static constexpr int levels = int(sizeof...(C));  ///< The number of resolution levels.
  static constexpr std::array<index_t, sizeof...(C)> values{C...};  ///< The counts, finest first.
  /// The channel count of `level` (in [0, levels)).
  static constexpr index_t at(int level) { return values[level]; }
  static constexpr index_t first = values[0];                ///< The finest level's count.
  static constexpr index_t last = values[sizeof...(C) - 1];  ///< The coarsest level's count.
};

/// The levels whose blocks have self-attention (AttnDownBlock2D / AttnUpBlock2D).
template <int... Levels>
struct attention_at {
  /// Whether `level` has attention.
  static constexpr bool contains(int level) { return ((level == Levels) || ...); }
  /// Whether every listed level is in [0, levels).
  static constexpr bool all_below(int levels) { return ((Levels >= 0 && Levels < levels) && ...); }
};

/// The levels whose blocks have cross-attention on the context (CrossAttnDownBlock2D /
/// CrossAttnUpBlock2D in a UNet2DConditionModel); the others are DownBlock2D / UpBlock2D.
template <int... Levels>
using cross_attention_at = attention_at<Levels...>;

/// A setting diffusers takes as an int or as a tuple with one entry per level: one value for every
/// level, or one per level, finest first.
template <index_t... V>
struct per_level {
  static_assert(sizeof...(V) > 0, "ldm::per_level: give at least one value");
  static_assert(((V > 0) && ...), "ldm::per_level: values must be positive");
  /// The values as given.
  static constexpr std::array<index_t, sizeof...(V)> values{V...};
  /// The value at `level`: the only one, or that level's.
  static constexpr index_t at(int level) {
    return values.size() == 1 ? values[0] : values[std::size_t(level)];
  }
  /// Whether the list suits a model of `levels` levels: one value, or exactly one per level.
  static constexpr bool fits(int levels) {
    return values.size() == 1 || values.size() == std::size_t(levels);
  }
};

/// diffusers' AutoencoderKL config: the architecture of models::AutoencoderKL.
/// @tparam BlockChannels block_out_channels, an ldm::channels; its levels fix the latent factor
/// @tparam LayersPerBlock layers_per_block: ResNet blocks per level (positive)
/// @tparam LatentChannels latent_channels (positive)
/// @tparam NormGroups norm_num_groups: must divide every entry of BlockChannels
template <class BlockChannels, index_t LayersPerBlock, index_t LatentChannels,
          index_t NormGroups = 32>
struct AutoencoderKLConfig {
  using block_out_channels = BlockChannels;                    ///< The channel count of each level.
  static constexpr int levels = BlockChannels::levels;         ///< Resolution levels.
  static constexpr index_t layers_per_block = LayersPerBlock;  ///< ResNet blocks per level.
  static constexpr index_t latent_channels = LatentChannels;   ///< Channels of a latent.
  static constexpr index_t norm_num_groups = NormGroups;       ///< GroupNorm groups.
  /// GroupNorm's epsilon: diffusers' Encoder and Decoder use 1e-6 throughout.
  static constexpr double norm_eps = 1e-6;
  /// Image size / latent size: 2^(levels - 1).
  static constexpr index_t latent_factor = index_t(1) << (levels - 1);

  static_assert(LayersPerBlock > 0, "ldm::AutoencoderKLConfig: layers_per_block must be positive");
  static_assert(LatentChannels > 0, "ldm::AutoencoderKLConfig: latent_channels must be positive");
  static_assert(
      [] {
        for (auto c : BlockChannels::values)
          if (c % NormGroups != 0) return false;
        return true;
      }(),
      "ldm::AutoencoderKLConfig: every block_out_channels entry must divide into norm_num_groups");
};

/// diffusers' UNet2DModel config: the architecture of models::UNet.
///
/// dropout is a run-time argument of the UNet's constructor (it changes nothing structural).
/// @tparam BlockChannels block_out_channels, an ldm::channels
/// @tparam LayersPerBlock layers_per_block (positive)
/// @tparam AttentionLevels an ldm::attention_at naming levels the UNet has
/// @tparam HeadDim attention_head_dim: must divide the channels of every attention level and of
///         the mid block (the last level)
/// @tparam NormGroups norm_num_groups: must divide every entry of BlockChannels
/// @tparam NumClassEmbeds num_class_embeds: 0 for an unconditional UNet, else the number of
///         class labels it is conditioned on
template <class BlockChannels, index_t LayersPerBlock, class AttentionLevels, index_t HeadDim,
          index_t NormGroups = 32, index_t NumClassEmbeds = 0>
struct UNetConfig {
  using block_out_channels = BlockChannels;                    ///< The channel count of each level.
  using attention_levels = AttentionLevels;                    ///< The levels with self-attention.
  static constexpr int levels = BlockChannels::levels;         ///< Resolution levels.
  static constexpr index_t layers_per_block = LayersPerBlock;  ///< ResNet blocks per level.
  static constexpr index_t attention_head_dim = HeadDim;       ///< Channels per head.
  static constexpr index_t norm_num_groups = NormGroups;       ///< GroupNorm groups.
  static constexpr index_t num_class_embeds = NumClassEmbeds;  ///< Class labels (0: none).
  static constexpr double norm_eps = 1e-5;                     ///< GroupNorm's epsilon.
  /// The width of the time embedding: 4 x the first level's channels, as diffusers.
  static constexpr index_t time_embed_dim = 4 * BlockChannels::first;
  static constexpr bool flip_sin_to_cos = true;  ///< The sinusoid's order, as diffusers' default.
  static constexpr double freq_shift = 0;        ///< The sinusoid's frequency shift.
  /// Latent size / coarsest size: 2^(levels - 1); the latent size must be a multiple of it.
  static constexpr index_t downsample_factor = index_t(1) << (levels - 1);

  static_assert(LayersPerBlock > 0, "ldm::UNetConfig: layers_per_block must be positive");
  static_assert(AttentionLevels::all_below(BlockChannels::levels),
                "ldm::UNetConfig: attention_at names a level the UNet does not have");
  static_assert(
      [] {
        for (auto c : BlockChannels::values)
          if (c % NormGroups != 0) return false;
        return true;
      }(),
      "ldm::UNetConfig: every block_out_channels entry must divide into norm_num_groups");
  static_assert(
      [] {
        for (int l = 0; l < BlockChannels::levels; ++l)
          if (AttentionLevels::contains(l) && BlockChannels::at(l) % HeadDim != 0) return false;
        return BlockChannels::last % HeadDim == 0;
      }(),
      "ldm::UNetConfig: attention_head_dim must divide the channels of every attention level "
      "and of the mid block");
};

/// diffusers' UNet2DConditionModel config: the architecture of models::UNetCondition, a UNet whose
/// attention is a Transformer2DModel attending to a context (encoder_hidden_states of
/// cross_attention_dim channels).
///
/// **attention_head_dim is a number of heads.** UNet2DConditionModel reads its
/// `attention_head_dim` as the number of attention heads of each level when `num_attention_heads`
/// is None (which diffusers requires), for compatibility with the configs written before the field
/// was renamed: Stable Diffusion 1.5's `attention_head_dim: 8` makes 8 heads of 40, 80 and 160
/// channels, 2.x's `[5, 10, 20, 20]` heads of 64 channels. This configuration keeps the field's
/// name and diffusers' reading: heads(level) is the value, head_dim(level) the channels / heads.
/// The mid block takes the last level's heads and transformer layers.
///
/// The blocks are those of UNet2DConditionModel's defaults: CrossAttnDownBlock2D /
/// CrossAttnUpBlock2D at the levels of CrossAttentionLevels, DownBlock2D / UpBlock2D elsewhere,
/// UNetMidBlock2DCrossAttn, a positional time embedding (flip_sin_to_cos, freq_shift 0), the
/// transformers' defaults (nn::Transformer2DModel). upcast_attention changes only the precision of
/// a float16 model (ldm computes the attention in T), so it is not a field.
/// @tparam BlockChannels block_out_channels, an ldm::channels
/// @tparam LayersPerBlock layers_per_block (positive)
/// @tparam CrossAttentionLevels an ldm::cross_attention_at naming levels the UNet has
/// @tparam AttentionHeadDim attention_head_dim, an ldm::per_level: the number of HEADS per level
///         (see above); must divide the channels of every cross-attention level and of the mid
///         block (the last level)
/// @tparam CrossAttentionDim cross_attention_dim: the context's channels (positive)
/// @tparam UseLinearProjection use_linear_projection: the transformers' proj_in / proj_out are
///         Linear layers (true, as Stable Diffusion 2) or 1x1 convolutions
/// @tparam TransformerLayers transformer_layers_per_block, an ldm::per_level
/// @tparam NormGroups norm_num_groups: must divide every entry of BlockChannels
/// @tparam NumClassEmbeds num_class_embeds: 0, or the number of class labels whose embedding is
///         added to the time embedding
template <class BlockChannels, index_t LayersPerBlock, class CrossAttentionLevels,
          class AttentionHeadDim, index_t CrossAttentionDim, bool UseLinearProjection = false,
          class TransformerLayers = per_level<1>, index_t NormGroups = 32,
          index_t NumClassEmbeds = 0>
struct UNetConditionConfig {
  using block_out_channels = BlockChannels;  ///< The channel count of each level.
  /// The levels with cross-attention (CrossAttnDownBlock2D / CrossAttnUpBlock2D).
  using attention_levels = CrossAttentionLevels;
  /// attention_head_dim as diffusers reads it: the number of heads of each level.
  using attention_head_dim = AttentionHeadDim;
  /// The BasicTransformerBlocks of each level's Transformer2DModels.
  using transformer_layers_per_block = TransformerLayers;
  static constexpr int levels = BlockChannels::levels;                ///< Resolution levels.
  static constexpr index_t layers_per_block = LayersPerBlock;         ///< ResNet blocks per level.
  static constexpr index_t cross_attention_dim = CrossAttentionDim;   ///< The context's channels.
  static constexpr bool use_linear_projection = UseLinearProjection;  ///< proj_in / proj_out kind.
  static constexpr index_t norm_num_groups = NormGroups;              ///< GroupNorm groups.
  static constexpr index_t num_class_embeds = NumClassEmbeds;         ///< Class labels (0: none).
  static constexpr double norm_eps = 1e-5;  ///< The ResNets' GroupNorm eps.
  /// The transformers' LayerNorm eps: Transformer2DModel's default, which UNet2DConditionModel
  /// does not override (the transformers' GroupNorm eps is a fixed 1e-6).
  static constexpr double transformer_norm_eps = 1e-5;
  /// The width of the time embedding: 4 x the first level's channels, as diffusers.
  static constexpr index_t time_embed_dim = 4 * BlockChannels::first;
  static constexpr bool flip_sin_to_cos = true;  ///< The sinusoid's order, as diffusers' default.
  static constexpr double freq_shift = 0;        ///< The sinusoid's frequency shift.
  /// Latent size / coarsest size: 2^(levels - 1); the latent size must be a multiple of it.
  static constexpr index_t downsample_factor = index_t(1) << (levels - 1);

  /// The attention heads of `level`'s transformers (the mid block's: the last level's).
  static constexpr index_t heads(int level) { return AttentionHeadDim::at(level); }
  /// The channels per head at `level`: block_out_channels[level] / heads(level).
  static constexpr index_t head_dim(int level) { return BlockChannels::at(level) / heads(level); }
  /// The transformer blocks of each Transformer2DModel at `level`.
  static constexpr index_t transformer_layers(int level) { return TransformerLayers::at(level); }

  static_assert(LayersPerBlock > 0, "ldm::UNetConditionConfig: layers_per_block must be positive");
  static_assert(CrossAttentionLevels::all_below(BlockChannels::levels),
                "ldm::UNetConditionConfig: cross_attention_at names a level the UNet does not "
                "have");
  static_assert(CrossAttentionDim > 0,
                "ldm::UNetConditionConfig: cross_attention_dim must be positive");
  static_assert(NumClassEmbeds >= 0,
                "ldm::UNetConditionConfig: num_class_embeds must be 0 (none) or positive");
  static_assert(AttentionHeadDim::fits(BlockChannels::levels),
                "ldm::UNetConditionConfig: attention_head_dim must give one value, or one per "
                "level of block_out_channels");
  static_assert(TransformerLayers::fits(BlockChannels::levels),
                "ldm::UNetConditionConfig: transformer_layers_per_block must give one value, or "
                "one per level of block_out_channels");
  static_assert(
      [] {
        for (auto c : BlockChannels::values)
          if (c % NormGroups != 0) return false;
        return true;
      }(),
      "ldm::UNetConditionConfig: every block_out_channels entry must divide into "
      "norm_num_groups");
  static_assert(
      [] {
        if (!AttentionHeadDim::fits(BlockChannels::levels)) return true;  // asserted above
        for (int l = 0; l < BlockChannels::levels; ++l)
          if (CrossAttentionLevels::contains(l) && BlockChannels::at(l) % AttentionHeadDim::at(l))
            return false;
        return BlockChannels::last % AttentionHeadDim::at(BlockChannels::levels - 1) == 0;
      }(),
      "ldm::UNetConditionConfig: attention_head_dim (the number of heads, as diffusers reads it) "
      "must divide the channels of every cross-attention level and of the mid block");
};

}  // namespace ldm
