#pragma once
/// @file
/// Compile-time configurations of the models, named as diffusers' configs name them.
///
/// @code{.cpp}
///   using AE   = ldm::AutoencoderKLConfig<ldm::channels<32, 32, 64>, /*layers_per_block*/ 1,
///                                         /*latent_channels*/ 4>;
///   using UNet = ldm::UNetConfig<ldm::channels<32, 64>, /*layers_per_block*/ 2,
///                                ldm::attention_at<1>, /*attention_head_dim*/ 32>;
/// @endcode
///
/// Every check that can fail is a static_assert with a message that names the field.

#include <array>

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

}  // namespace ldm
