// Compile-time row (d) of benchmarks/compile_times.sh: a configuration of a user's own, RGB
// 64x64 images with 4x16x16 latents, and its two training steps at batch 16.
#include <ldm/ldm.hpp>

struct Rgb64 {
  static constexpr ldm::index_t image_channels = 3, resolution = 64, latent_channels = 4;
  using autoencoder =
      ldm::AutoencoderKLConfig<ldm::channels<64, 128, 128>, /*layers*/ 1, latent_channels>;
  using unet = ldm::UNetConfig<ldm::channels<64, 128, 256>, /*layers*/ 2, ldm::attention_at<1, 2>,
                               /*head dim*/ 32>;
  using schedule = ldm::LinearBetas<1000>;
};

using Model = ldm::LatentDiffusion<Rgb64>;
static_assert(Model::latent_res == 16);

void train_rgb64(Model& model, ldm::View<const float, Model::images<16>> batch) {
  model.autoencoder_step<16>(batch);
  model.diffusion_step<16>(batch);
}
