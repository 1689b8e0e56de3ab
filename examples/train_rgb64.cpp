// Trains a latent diffusion model on a folder of colour images at 64x64: a configuration and one
// call of the library's trainer. README.md shows this file as the whole of a user's program.
//   train_rgb64 --data ~/pictures --out runs/rgb64      (train_rgb64 --help lists every flag)
#include <ldm/trainer.hpp>

// 3x64x64 images, an autoencoder of three levels (latent factor 4) into 4x16x16 latents, and a
// UNet of three levels with attention at the two coarser ones.
struct Rgb64 {
  static constexpr ldm::index_t image_channels = 3, resolution = 64;
  static constexpr ldm::AutoencoderKLConfig autoencoder{
      .block_out_channels = {32, 64, 64}, .layers_per_block = 1, .latent_channels = 4};
  static constexpr ldm::UNetConfig unet{.block_out_channels = {32, 64, 64},
                                        .layers_per_block = 2,
                                        .attention = {false, true, true},
                                        .attention_head_dim = 32};
  using schedule = ldm::LinearBetas<1000>;
};

int main(int argc, char** argv) {
  ldm::train::Program<Rgb64> program;
  program.name = "train_rgb64";
  program.defaults.out = "runs/rgb64";
  // The steps are compiled for micro-batches of 8 images; --batch takes any multiple of 8.
  return ldm::train::main<Rgb64, 8>(argc, argv, program);
}
