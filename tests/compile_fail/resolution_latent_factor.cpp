// expect: the resolution must be divisible by the latent factor
// Must not compile: 30x30 images with an autoencoder of latent factor 4.
#include <ldm/models/autoencoder_kl.hpp>

int main() {
  using AE = ldm::AutoencoderKLConfig<ldm::channels<32, 32, 64>, 1, 4>;
  constexpr auto good = ldm::models::AutoencoderKL<float, ldm::host, 1, 32, AE>::parameter_count;
  (void)good;
#ifndef LDM_COMPILE_FAIL_CONTROL
  constexpr auto bad = ldm::models::AutoencoderKL<float, ldm::host, 1, 30, AE>::parameter_count;
  (void)bad;
#endif
  return 0;
}
