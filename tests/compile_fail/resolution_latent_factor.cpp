// expect: the resolution must be divisible by the latent factor
// Must not compile: 30x30 images with an autoencoder of latent factor 4.
#include <ldm/models/autoencoder_kl.hpp>

int main() {
  constexpr ldm::AutoencoderKLConfig ae{
      .block_out_channels = {32, 32, 64}, .layers_per_block = 1, .latent_channels = 4};
  constexpr auto good = ldm::models::AutoencoderKL<float, ldm::host, 1, 32, ae>::parameter_count;
  (void)good;
#ifndef LDM_COMPILE_FAIL_CONTROL
  constexpr auto bad = ldm::models::AutoencoderKL<float, ldm::host, 1, 30, ae>::parameter_count;
  (void)bad;
#endif
  return 0;
}
