#pragma once
/// @file
/// A configuration value (config.hpp) resolved into a type of compile-time constants, the form the
/// models' code reads (`Cfg::levels`, `Cfg::block_out_channels::at(l)`): the configuration's
/// checks are this resolution's static_asserts, so they run when a model is built from it.

#include <type_traits>

#include "ldm/models/config.hpp"

namespace ldm::detail {

// The value of a per-level setting at a level: the only one for a list of one value, as diffusers
// reads an int where it takes one value per level.
constexpr index_t value_at(const level_list<index_t>& list, int level) {
  return list.size() == 1 ? list[0] : list[level];
}

// A level_list of counts as a type: its levels, and the value at a level (value_at).
template <level_list<index_t> List>
struct level_values {
  static constexpr level_list<index_t> values = List;
  static constexpr int levels = List.size();
  static constexpr index_t at(int level) { return value_at(List, level); }
  static constexpr index_t first = List[0];
  static constexpr index_t last = List[List.size() > 0 ? List.size() - 1 : 0];
};

// A level_list of flags as a type: whether a level is flagged.
template <level_list<bool> List>
struct level_flags {
  static constexpr bool contains(int level) { return level < List.size() && List[level]; }
};

constexpr bool all_positive(const level_list<index_t>& list) {
  for (index_t v : list)
    if (v <= 0) return false;
  return list.size() > 0;
}

constexpr bool all_divide_into(const level_list<index_t>& channels, index_t groups) {
  if (groups <= 0) return true;  // asserted separately
  for (index_t c : channels)
    if (c % groups != 0) return false;
  return true;
}

// One value for every level, or exactly one per level.
constexpr bool fits_levels(const level_list<index_t>& list, int levels) {
  return list.size() == 1 || list.size() == levels;
}

// Whether the heads (or channels per head) of each flagged level, and of the last level (the mid
// block's), divide its channels; `divisors` gives one value or one per level, each positive.
constexpr bool divides_attention_levels(const level_list<index_t>& channels,
                                        const level_list<bool>& flags,
                                        const level_list<index_t>& divisors) {
  const int levels = channels.size();
  if (levels == 0 || !fits_levels(divisors, levels) || !all_positive(divisors))
    return true;  // asserted separately
  for (int l = 0; l < levels && l < flags.size(); ++l)
    if (flags[l] && channels[l] % value_at(divisors, l) != 0) return false;
  return channels[levels - 1] % value_at(divisors, levels - 1) == 0;
}

// 2^(levels - 1), or 1 for a configuration without levels (asserted separately).
constexpr index_t halvings(int levels) {
  return levels > 0 ? index_t(1) << (levels - 1) : 1;
}

template <AutoencoderKLConfig C>
struct autoencoder_traits {
  static_assert(all_positive(C.block_out_channels),
                "ldm::AutoencoderKLConfig: block_out_channels must give at least one level, every "
                "count positive");
  static_assert(C.layers_per_block > 0,
                "ldm::AutoencoderKLConfig: layers_per_block must be positive");
  static_assert(C.latent_channels > 0,
                "ldm::AutoencoderKLConfig: latent_channels must be positive");
  static_assert(C.norm_num_groups > 0,
                "ldm::AutoencoderKLConfig: norm_num_groups must be positive");
  static_assert(
      all_divide_into(C.block_out_channels, C.norm_num_groups),
      "ldm::AutoencoderKLConfig: every block_out_channels entry must divide into norm_num_groups");

  using block_out_channels = level_values<C.block_out_channels>;
  static constexpr int levels = C.block_out_channels.size();
  static constexpr index_t layers_per_block = C.layers_per_block;
  static constexpr index_t latent_channels = C.latent_channels;
  static constexpr index_t norm_num_groups = C.norm_num_groups;
  // diffusers' Encoder and Decoder use 1e-6 throughout.
  static constexpr double norm_eps = 1e-6;
  // Image size / latent size.
  static constexpr index_t latent_factor = halvings(levels);
};

// What UNet2DModel's and UNet2DConditionModel's configurations say alike; Attention flags the
// levels with attention (self-attention or cross-attention).
template <auto C, level_list<bool> Attention>
struct unet_common_traits {
  using block_out_channels = level_values<C.block_out_channels>;
  using attention_levels = level_flags<Attention>;
  static constexpr int levels = C.block_out_channels.size();
  static constexpr index_t layers_per_block = C.layers_per_block;
  static constexpr index_t norm_num_groups = C.norm_num_groups;
  static constexpr index_t num_class_embeds = C.num_class_embeds;
  static constexpr double norm_eps = 1e-5;  // the ResNets' GroupNorm eps
  // 4 x the first level's channels, as diffusers.
  static constexpr index_t time_embed_dim = 4 * block_out_channels::first;
  static constexpr bool flip_sin_to_cos = true;  // diffusers' default
  static constexpr double freq_shift = 0;
  // Latent size / coarsest size; the latent size must be a multiple of it.
  static constexpr index_t downsample_factor = halvings(levels);
};

template <UNetConfig C>
struct unet_traits : unet_common_traits<C, C.attention> {
  static_assert(all_positive(C.block_out_channels),
                "ldm::UNetConfig: block_out_channels must give at least one level, every count "
                "positive");
  static_assert(C.layers_per_block > 0, "ldm::UNetConfig: layers_per_block must be positive");
  static_assert(C.attention.size() == C.block_out_channels.size(),
                "ldm::UNetConfig: attention must give one flag per level of block_out_channels");
  static_assert(C.attention_head_dim > 0, "ldm::UNetConfig: attention_head_dim must be positive");
  static_assert(C.norm_num_groups > 0, "ldm::UNetConfig: norm_num_groups must be positive");
  static_assert(C.num_class_embeds >= 0,
                "ldm::UNetConfig: num_class_embeds must be 0 (none) or positive");
  static_assert(all_divide_into(C.block_out_channels, C.norm_num_groups),
                "ldm::UNetConfig: every block_out_channels entry must divide into norm_num_groups");
  static_assert(divides_attention_levels(C.block_out_channels, C.attention, {C.attention_head_dim}),
                "ldm::UNetConfig: attention_head_dim must divide the channels of every attention "
                "level and of the mid block");

  static constexpr index_t attention_head_dim = C.attention_head_dim;  // channels per head
};

template <UNetConditionConfig C>
struct unet_condition_traits : unet_common_traits<C, C.cross_attention> {
  static_assert(all_positive(C.block_out_channels),
                "ldm::UNetConditionConfig: block_out_channels must give at least one level, every "
                "count positive");
  static_assert(C.layers_per_block > 0,
                "ldm::UNetConditionConfig: layers_per_block must be positive");
  static_assert(C.cross_attention.size() == C.block_out_channels.size(),
                "ldm::UNetConditionConfig: cross_attention must give one flag per level of "
                "block_out_channels");
  static_assert(C.cross_attention_dim > 0,
                "ldm::UNetConditionConfig: cross_attention_dim must be positive");
  static_assert(C.norm_num_groups > 0,
                "ldm::UNetConditionConfig: norm_num_groups must be positive");
  static_assert(C.num_class_embeds >= 0,
                "ldm::UNetConditionConfig: num_class_embeds must be 0 (none) or positive");
  static_assert(fits_levels(C.attention_head_dim, C.block_out_channels.size()),
                "ldm::UNetConditionConfig: attention_head_dim must give one value, or one per "
                "level of block_out_channels");
  static_assert(all_positive(C.attention_head_dim),
                "ldm::UNetConditionConfig: attention_head_dim (heads) must be positive");
  static_assert(fits_levels(C.transformer_layers_per_block, C.block_out_channels.size()),
                "ldm::UNetConditionConfig: transformer_layers_per_block must give one value, or "
                "one per level of block_out_channels");
  static_assert(all_positive(C.transformer_layers_per_block),
                "ldm::UNetConditionConfig: transformer_layers_per_block must be positive");
  static_assert(all_divide_into(C.block_out_channels, C.norm_num_groups),
                "ldm::UNetConditionConfig: every block_out_channels entry must divide into "
                "norm_num_groups");
  static_assert(divides_attention_levels(C.block_out_channels, C.cross_attention,
                                         C.attention_head_dim),
                "ldm::UNetConditionConfig: attention_head_dim (the number of heads, as diffusers "
                "reads it) must divide the channels of every cross-attention level and of the mid "
                "block");

  using typename unet_common_traits<C, C.cross_attention>::block_out_channels;
  // attention_head_dim as diffusers reads it: the number of heads of each level.
  using attention_head_dim = level_values<C.attention_head_dim>;
  using transformer_layers_per_block = level_values<C.transformer_layers_per_block>;
  static constexpr index_t cross_attention_dim = C.cross_attention_dim;
  static constexpr bool use_linear_projection = C.use_linear_projection;
  // The transformers' LayerNorm eps: Transformer2DModel's default, which UNet2DConditionModel
  // does not override (the transformers' GroupNorm eps is a fixed 1e-6).
  static constexpr double transformer_norm_eps = 1e-5;

  // The attention heads of `level`'s transformers (the mid block's: the last level's).
  static constexpr index_t heads(int level) { return attention_head_dim::at(level); }
  // The channels per head at `level`: block_out_channels[level] / heads(level).
  static constexpr index_t head_dim(int level) {
    return heads(level) > 0 ? block_out_channels::at(level) / heads(level) : 0;  // 0: asserted
  }
  // The transformer blocks of each Transformer2DModel at `level`.
  static constexpr index_t transformer_layers(int level) {
    return transformer_layers_per_block::at(level);
  }
};

// The traits of a UNet's configuration: a UNetConfig's or a UNetConditionConfig's.
template <auto C>
constexpr auto unet_traits_of() {
  // remove_cvref: nvcc's host pass hands g++ this parameter as a reference to the value.
  using Config = std::remove_cvref_t<decltype(C)>;
  static_assert(std::is_same_v<Config, UNetConfig> || std::is_same_v<Config, UNetConditionConfig>,
                "ldm::UNet: the configuration must be an ldm::UNetConfig or an "
                "ldm::UNetConditionConfig");
  if constexpr (std::is_same_v<Config, UNetConditionConfig>)
    return std::type_identity<unet_condition_traits<C>>{};
  else if constexpr (std::is_same_v<Config, UNetConfig>)
    return std::type_identity<unet_traits<C>>{};
  else
    return std::type_identity<void>{};
}
template <auto C>
using unet_traits_t = typename decltype(unet_traits_of<C>())::type;

}  // namespace ldm::detail
