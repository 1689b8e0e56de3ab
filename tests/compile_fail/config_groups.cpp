// expect: every block_out_channels entry must divide into norm_num_groups
// Must not compile: an autoencoder whose channels do not divide into the GroupNorm groups.
#include <ldm/models/autoencoder_kl.hpp>

int main() {
  constexpr ldm::AutoencoderKLConfig good{
      .block_out_channels = {32, 64}, .layers_per_block = 1, .latent_channels = 4};
  (void)ldm::models::AutoencoderKL<float, ldm::host, 1, 16, good>::parameter_count;
#ifndef LDM_COMPILE_FAIL_CONTROL
  constexpr ldm::AutoencoderKLConfig bad{
      .block_out_channels = {32, 48}, .layers_per_block = 1, .latent_channels = 4};
  (void)ldm::models::AutoencoderKL<float, ldm::host, 1, 16, bad>::parameter_count;
#endif
  return 0;
}
