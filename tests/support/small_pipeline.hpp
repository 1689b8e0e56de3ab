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

// Guided sampling written out by hand, what the pipeline's one-batch guidance must equal: from
// `start`, at each of the sampler's timesteps `predict(x, t, conditional, eps)` runs the UNet once
// with the condition (conditional true) and once with the null one, as separate batches, and the
// sampler steps on none + w (cond - none). For samplers without state or noise (DDIM, eta 0).
template <class Sampler, class Latents, class Predict>
Tensor<float, Latents> guided_by_hand(const Sampler& sampler, const Tensor<float, Latents>& start,
                                      double w, Predict&& predict) {
  Tensor<float, Latents> x = start, conditional, unconditional, eps;
  Tensor<float, Shape<Latents::extent(0)>> t;
  for (std::size_t i = 0; i < sampler.timesteps().size(); ++i) {
    t = float(sampler.timesteps()[i]);
    predict(x, t, true, conditional.view());
    predict(x, t, false, unconditional.view());
    eps = unconditional + float(w) * (conditional - unconditional);
    diffusion::NoState state;
    sampler.step(i, state, View<const float, Latents>(eps), View<const float, Latents>(x), 0.0,
                 x.view());
  }
  return x;
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
