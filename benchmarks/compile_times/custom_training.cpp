// Compile-time row (d) of benchmarks/compile_times.sh: a configuration of a user's own, RGB
// 64x64 images with 4x16x16 latents, and its two training steps at batch 16.
#include <ldm/ldm.hpp>

struct Rgb64 {
  static constexpr ldm::index_t image_channels = 3, resolution = 64;
  static constexpr ldm::AutoencoderKLConfig autoencoder{
      .block_out_channels = {64, 128, 128}, .layers_per_block = 1, .latent_channels = 4};
  static constexpr ldm::UNetConfig unet{.block_out_channels = {64, 128, 256},
                                        .layers_per_block = 2,
                                        .attention = {false, true, true},
                                        .attention_head_dim = 32};
  using schedule = ldm::LinearBetas<1000>;
};

using Model = ldm::LatentDiffusion<Rgb64>;
static_assert(Model::latent_res == 16);

void train_rgb64(Model& model, ldm::View<const float, Model::images<16>> batch) {
  model.autoencoder_step<16>(batch);
  model.diffusion_step<16>(batch);
}
