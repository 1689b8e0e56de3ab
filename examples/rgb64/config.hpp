#pragma once
// The configuration of the RGB example: colour images of 64x64 (any image folder, centre-cropped
// and resized by ldm::data::load_image_folder<64, 3>), through an autoencoder of latent factor 4
// into 4x16x16 latents, and a small UNet over those.
//
// Sized for a CPU: CI trains it for a handful of steps on 2 cores, and a user should see it learn
// in minutes there. At batch 8 on the 2-core development machine (OMP_NUM_THREADS=2, the default
// TrainingOptions, so the autoencoder's SSIM term on; 2026-12-02, load average 1-1.5) an
// autoencoder step took 0.25 s and a diffusion step 0.09 s; docs/performance.md ("Batch size")
// has batches 4, 8 and 16 from benchmarks/bench_batch_sizes.cpp. Why these sizes:
// - Latent factor 4, not 8: 16x16x4 latents keep 1/12 as many values as the 64x64x3 image, where
//   factor 8 (8x8x4) would keep 1/48, so that an autoencoder trained briefly on a CPU need not
//   compress as hard.
// - Autoencoder channels 32, 64, 64, one ResNet block per level (0.95 million parameters): the
//   tiny configuration's 32, 32, 64 with the middle level widened for colour. Timed beside it,
//   that costs about 25% more per step (0.25 against 0.19-0.20 s).
// - UNet channels 32, 64, 64 over 16x16, 8x8 and 4x4, two ResNet blocks per level, attention at
//   8x8 (64 tokens) and 4x4 (1.7 million parameters). A coarsest level of 128 channels (4.0
//   million) took 0.16 s per diffusion step in one run: more than CI's handful of steps needs.

#include <ldm/diffusion/schedule.hpp>
#include <ldm/models/config.hpp>

struct Rgb64Config {
  static constexpr ldm::index_t image_channels = 3, resolution = 64, latent_channels = 4;
  using autoencoder =
      ldm::AutoencoderKLConfig<ldm::channels<32, 64, 64>, /*layers*/ 1, latent_channels>;
  using unet = ldm::UNetConfig<ldm::channels<32, 64, 64>, /*layers*/ 2, ldm::attention_at<1, 2>,
                               /*head dim*/ 32>;
  using schedule = ldm::diffusion::LinearBetas<1000>;
};
