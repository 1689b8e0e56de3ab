#pragma once
/// @file
/// Ready-made configurations. A configuration is a struct of compile-time constants:
/// - image_channels, resolution: the images (diffusers' AutoencoderKL in_channels/out_channels,
///   sample_size);
/// - autoencoder: an AutoencoderKLConfig (its levels fix the latent factor; its latent_channels
///   are the latents', the UNet's in_channels/out_channels);
/// - unet: a UNetConfig (or a UNetConditionConfig, with context_tokens);
/// - schedule: a beta schedule such as diffusion::LinearBetas<1000>.

#include "ldm/diffusion/schedule.hpp"
#include "ldm/models/config.hpp"

namespace ldm::configs {

/// docs/models.md's `tiny`: Fashion-MNIST padded to 1x32x32, latents 4x8x8, sized for 2 CPU cores.
/// The configuration of the shipped model (models/fashion-tiny) and of the `fashion` program.
struct Tiny {
  /// @{
  /// The images: 1x32x32.
  static constexpr index_t image_channels = 1, resolution = 32;
  /// @}
  /// Three levels (latent factor 4), one ResNet block each: latents 4x8x8.
  static constexpr AutoencoderKLConfig autoencoder{
      .block_out_channels = {32, 32, 64}, .layers_per_block = 1, .latent_channels = 4};
  /// Two levels, two ResNet blocks each, attention at the coarser one.
  static constexpr UNetConfig unet{.block_out_channels = {32, 64},
                                   .layers_per_block = 2,
                                   .attention = {false, true},
                                   .attention_head_dim = 32};
  using schedule = diffusion::LinearBetas<1000>;  ///< 1000 linear betas, diffusers' default.
};

/// docs/models.md's `unet-bench`: 3x256x256 images through the Stable Diffusion VAE's architecture
/// (latents 4x32x32, factor 8) and a UNet with attention at its two coarser levels. The
/// configuration the GPU benchmark times the UNet training step and DDIM sampling on.
struct UNetBench {
  /// @{
  /// The images: 3x256x256.
  static constexpr index_t image_channels = 3, resolution = 256;
  /// @}
  /// The Stable Diffusion VAE's architecture: latents 4x32x32 (factor 8).
  static constexpr AutoencoderKLConfig autoencoder{
      .block_out_channels = {128, 256, 512, 512}, .layers_per_block = 2, .latent_channels = 4};
  /// Three levels, attention at the two coarser ones.
  static constexpr UNetConfig unet{.block_out_channels = {128, 256, 512},
                                   .layers_per_block = 2,
                                   .attention = {false, true, true},
                                   .attention_head_dim = 32};
  using schedule = diffusion::LinearBetas<1000>;  ///< 1000 linear betas, diffusers' default.
};

/// Stable Diffusion 1.5's UNet2DConditionModel (runwayml/stable-diffusion-v1-5's unet/config.json):
/// 8 heads at every level (its attention_head_dim 8, read as heads: 40, 80 and 160 channels per
/// head), CLIP ViT-L/14's 768-channel context, 1x1 projections; 859,520,964 parameters. Use it as
/// models::UNetCondition<float, Space, 4, 64, 77, StableDiffusion15UNet> for 512x512 images.
inline constexpr UNetConditionConfig StableDiffusion15UNet{
    .block_out_channels = {320, 640, 1280, 1280},
    .layers_per_block = 2,
    .cross_attention = {true, true, true, false},
    .attention_head_dim = {8},
    .cross_attention_dim = 768};

/// Stable Diffusion 2.1's UNet2DConditionModel (stabilityai/stable-diffusion-2-1's
/// unet/config.json): attention_head_dim [5, 10, 20, 20] read as heads, all of 64 channels,
/// OpenCLIP ViT-H/14's 1024-channel context, Linear projections (use_linear_projection);
/// 865,910,724 parameters. Its upcast_attention only changes float16 inference.
inline constexpr UNetConditionConfig StableDiffusion21UNet{
    .block_out_channels = {320, 640, 1280, 1280},
    .layers_per_block = 2,
    .cross_attention = {true, true, true, false},
    .attention_head_dim = {5, 10, 20, 20},
    .cross_attention_dim = 1024,
    .use_linear_projection = true};

/// docs/models.md's `vae-bench`: the same autoencoder, timed alone (the UNet is unet-bench's, so a
/// LatentDiffusion over either configuration has the same types).
struct VaeBench : UNetBench {};

}  // namespace ldm::configs
