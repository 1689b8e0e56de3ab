#pragma once
// Ready-made configurations. A configuration is a struct of compile-time constants:
//   channels, resolution, latent_channels: the images and the latents;
//   autoencoder: an AutoencoderKLConfig (its levels fix the latent factor);
//   unet: a UNetConfig;  schedule: a beta schedule such as diffusion::LinearBetas<1000>.

#include "ldm/diffusion/schedule.hpp"
#include "ldm/models/config.hpp"

namespace ldm::configs {

// models.md's `tiny`: Fashion-MNIST padded to 1x32x32, latents 4x8x8, sized for 2 CPU cores.
struct Tiny {
  static constexpr index_t channels = 1, resolution = 32, latent_channels = 4;
  using autoencoder = AutoencoderKLConfig<ldm::channels<32, 32, 64>, 1, latent_channels>;
  using unet = UNetConfig<ldm::channels<32, 64>, 2, attention_at<1>, 32>;
  using schedule = diffusion::LinearBetas<1000>;
};

}  // namespace ldm::configs
