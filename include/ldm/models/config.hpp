#pragma once
/// @file
/// The models' configurations, written as diffusers' config.json files name their fields, with
/// designated initialisers, and passed to the models as template arguments:
///
/// @code{.cpp}
///   constexpr ldm::AutoencoderKLConfig ae{
///       .block_out_channels = {32, 32, 64}, .layers_per_block = 1, .latent_channels = 4};
///   constexpr ldm::UNetConfig unet{.block_out_channels = {32, 64}, .layers_per_block = 2,
///                                  .attention = {false, true}, .attention_head_dim = 32};
///   // Stable Diffusion 1.5's UNet2DConditionModel (attention_head_dim 8 means 8 HEADS there)
///   constexpr ldm::UNetConditionConfig sd{.block_out_channels = {320, 640, 1280, 1280},
///                                         .layers_per_block = 2,
///                                         .cross_attention = {true, true, true, false},
///                                         .attention_head_dim = {8},
///                                         .cross_attention_dim = 768};
///   using AE = ldm::models::AutoencoderKL<float, ldm::host, 1, 32, ae>;
/// @endcode
///
/// A field left out is zero (or empty) unless it has a default below. The checks are
/// static_asserts that run when a model (or a LatentDiffusion) is built from the configuration;
/// each message names the configuration and the field.

#include "ldm/core/macros.hpp"
#include "ldm/models/level_list.hpp"

namespace ldm {

/// diffusers' AutoencoderKL config: the architecture of models::AutoencoderKL.
struct AutoencoderKLConfig {
  /// The channel count of each resolution level, finest first: at least one level, every count
  /// positive. The levels fix the latent factor, 2^(levels - 1).
  level_list<index_t> block_out_channels;
  index_t layers_per_block = 0;  ///< ResNet blocks per level (positive).
  /// The latents' channels (positive): the UNet's in_channels and out_channels in a pipeline.
  index_t latent_channels = 0;
  /// GroupNorm groups: must divide every entry of block_out_channels.
  index_t norm_num_groups = 32;
};

/// diffusers' UNet2DModel config: the architecture of models::UNet. dropout is a run-time argument
/// of the UNet's constructor (it changes nothing structural).
struct UNetConfig {
  /// The channel count of each resolution level, finest first: at least one level, every count
  /// positive.
  level_list<index_t> block_out_channels;
  index_t layers_per_block = 0;  ///< ResNet blocks per level (positive).
  /// One flag per level: whether its blocks have self-attention (AttnDownBlock2D / AttnUpBlock2D
  /// in down_block_types / up_block_types) or not (DownBlock2D / UpBlock2D).
  level_list<bool> attention;
  /// Channels per attention head: must divide the channels of every attention level and of the
  /// mid block (the last level).
  index_t attention_head_dim = 0;
  /// GroupNorm groups: must divide every entry of block_out_channels.
  index_t norm_num_groups = 32;
  /// 0 for an unconditional UNet, else the number of class labels it is conditioned on.
  index_t num_class_embeds = 0;
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
/// name and diffusers' reading. The mid block takes the last level's heads and transformer layers.
///
/// The blocks are those of UNet2DConditionModel's defaults: CrossAttnDownBlock2D /
/// CrossAttnUpBlock2D at the levels flagged in cross_attention, DownBlock2D / UpBlock2D elsewhere,
/// UNetMidBlock2DCrossAttn, a positional time embedding (flip_sin_to_cos, freq_shift 0), the
/// transformers' defaults (nn::Transformer2DModel). upcast_attention changes only the precision of
/// a float16 model (ldm computes the attention in T), so it is not a field.
///
/// attention_head_dim and transformer_layers_per_block are, as in diffusers, one value for every
/// level (`{8}`, written to config.json as an int) or one per level (`{5, 10, 20, 20}`, a list).
struct UNetConditionConfig {
  /// The channel count of each resolution level, finest first: at least one level, every count
  /// positive.
  level_list<index_t> block_out_channels;
  index_t layers_per_block = 0;  ///< ResNet blocks per level (positive).
  /// One flag per level: whether its blocks have cross-attention on the context
  /// (CrossAttnDownBlock2D / CrossAttnUpBlock2D) or not (DownBlock2D / UpBlock2D).
  level_list<bool> cross_attention;
  /// The number of HEADS of each level (see above): one value, or one per level; each must divide
  /// the channels of every cross-attention level and of the mid block (the last level).
  level_list<index_t> attention_head_dim;
  index_t cross_attention_dim = 0;     ///< The context's channels (positive).
  bool use_linear_projection = false;  ///< proj_in / proj_out: Linear (true) or 1x1 convolutions.
  /// The BasicTransformerBlocks of each level's Transformer2DModels: one value, or one per level.
  level_list<index_t> transformer_layers_per_block = {1};
  /// GroupNorm groups: must divide every entry of block_out_channels.
  index_t norm_num_groups = 32;
  /// 0, or the number of class labels whose embedding is added to the time embedding.
  index_t num_class_embeds = 0;
};

}  // namespace ldm
