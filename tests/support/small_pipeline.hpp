#pragma once
// A LatentDiffusion configuration small enough that a few hundred steps take seconds on the host,
// and the batches the pipeline tests train it on.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include <ldm/ldm.hpp>

namespace ldm::test {

struct Small {
  static constexpr index_t image_channels = 1, resolution = 16;
  static constexpr AutoencoderKLConfig autoencoder{.block_out_channels = {4, 8},
                                                   .layers_per_block = 1,
                                                   .latent_channels = 2,
                                                   .norm_num_groups = 2};
  static constexpr UNetConfig unet{.block_out_channels = {8, 16},
                                   .layers_per_block = 1,
                                   .attention = {false, true},
                                   .attention_head_dim = 8,
                                   .norm_num_groups = 4};
  using schedule = LinearBetas<1000>;
};

// Small's UNet as a UNet2DConditionModel: cross-attention at the coarser level and in the mid
// block, 2 heads, on contexts of 6 channels (the tests choose the tokens).
inline constexpr UNetConditionConfig small_cross_attention_unet{.block_out_channels = {8, 16},
                                                                .layers_per_block = 1,
                                                                .cross_attention = {false, true},
                                                                .attention_head_dim = {2},
                                                                .cross_attention_dim = 6,
                                                                .norm_num_groups = 4};

// The default TrainingOptions with this label dropout.
inline TrainingOptions with_label_dropout(double p) {
  TrainingOptions options;
  options.label_dropout = p;
  return options;
}

// The largest |a[i] - b[i]| over count values.
inline double largest_difference(const float* a, const float* b, std::size_t count) {
  double d = 0;
  for (std::size_t i = 0; i < count; ++i)
    d = std::max(d, std::abs(double(a[i]) - double(b[i])));
  return d;
}

// Batch k of N images in [-1, 1].
template <index_t N>
Tensor<float, LatentDiffusion<Small>::images<N>> small_batch(std::uint64_t k) {
  using Images = LatentDiffusion<Small>::images<N>;
  Tensor<float, Images> x;
  x = clamp(randn<Images>(100, k) * 0.5f, -1.0, 1.0);
  return x;
}

}  // namespace ldm::test
