#pragma once
// A LatentDiffusion configuration small enough that a few hundred steps take seconds on the host,
// and the batches the pipeline tests train it on.

#include <cstdint>

#include <ldm/ldm.hpp>

namespace ldm::test {

struct Small {
  static constexpr index_t image_channels = 1, resolution = 16, latent_channels = 2;
  using autoencoder = AutoencoderKLConfig<ldm::channels<4, 8>, 1, latent_channels, 2>;
  using unet = UNetConfig<ldm::channels<8, 16>, 1, attention_at<1>, 8, 4>;
  using schedule = LinearBetas<1000>;
};

// Batch k of N images in [-1, 1].
template <index_t N>
Tensor<float, LatentDiffusion<Small>::images<N>> small_batch(std::uint64_t k) {
  using Images = LatentDiffusion<Small>::images<N>;
  Tensor<float, Images> x;
  x = clamp(randn<Images>(100, k) * 0.5f, -1.0, 1.0);
  return x;
}

}  // namespace ldm::test
