#pragma once
/// @file
/// Compile-time configurations of the models, named as diffusers' configs name them.
///
///   using AE   = ldm::AutoencoderKLConfig<ldm::channels<32, 32, 64>, /*layers_per_block*/ 1,
///                                         /*latent_channels*/ 4>;
///   using UNet = ldm::UNetConfig<ldm::channels<32, 64>, /*layers_per_block*/ 2,
///                                ldm::attention_at<1>, /*attention_head_dim*/ 32>;
///
/// Every check that can fail is a static_assert with a message that names the field.

#include <array>

#include "ldm/core/macros.hpp"

namespace ldm {

// block_out_channels: the channel count of each resolution level, finest first.
template <index_t... C>
struct channels {
  static_assert(sizeof...(C) > 0, "ldm::channels: give at least one level");
  static_assert(((C > 0) && ...), "ldm::channels: channel counts must be positive");
  static constexpr int levels = int(sizeof...(C));
  static constexpr std::array<index_t, sizeof...(C)> values{C...};
  static constexpr index_t at(int level) { return values[level]; }
  static constexpr index_t first = values[0];
  static constexpr index_t last = values[sizeof...(C) - 1];
};

// The levels whose blocks have self-attention (AttnDownBlock2D / AttnUpBlock2D).
template <int... Levels>
struct attention_at {
  static constexpr bool contains(int level) { return ((level == Levels) || ...); }
  static constexpr bool all_below(int levels) { return ((Levels >= 0 && Levels < levels) && ...); }
};

template <class BlockChannels, index_t LayersPerBlock, index_t LatentChannels,
          index_t NormGroups = 32>
struct AutoencoderKLConfig {
  using block_out_channels = BlockChannels;
  static constexpr int levels = BlockChannels::levels;
  static constexpr index_t layers_per_block = LayersPerBlock;
  static constexpr index_t latent_channels = LatentChannels;
  static constexpr index_t norm_num_groups = NormGroups;
  static constexpr double norm_eps = 1e-6;  // diffusers' Encoder and Decoder use 1e-6 throughout
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

// dropout is a run-time argument of the UNet's constructor (it changes nothing structural).
template <class BlockChannels, index_t LayersPerBlock, class AttentionLevels, index_t HeadDim,
          index_t NormGroups = 32, index_t NumClassEmbeds = 0>
struct UNetConfig {
  using block_out_channels = BlockChannels;
  using attention_levels = AttentionLevels;
  static constexpr int levels = BlockChannels::levels;
  static constexpr index_t layers_per_block = LayersPerBlock;
  static constexpr index_t attention_head_dim = HeadDim;
  static constexpr index_t norm_num_groups = NormGroups;
  static constexpr index_t num_class_embeds = NumClassEmbeds;
  static constexpr double norm_eps = 1e-5;
  static constexpr index_t time_embed_dim = 4 * BlockChannels::first;
  static constexpr bool flip_sin_to_cos = true;
  static constexpr double freq_shift = 0;
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
