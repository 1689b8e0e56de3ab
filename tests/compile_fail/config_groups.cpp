// expect: every block_out_channels entry must divide into norm_num_groups
// Must not compile: an autoencoder whose channels do not divide into the GroupNorm groups.
#include <ldm/models/config.hpp>

int main() {
  using Good = ldm::AutoencoderKLConfig<ldm::channels<32, 64>, 1, 4>;
  (void)Good::latent_factor;
#ifndef LDM_COMPILE_FAIL_CONTROL
  using Bad = ldm::AutoencoderKLConfig<ldm::channels<32, 48>, 1, 4>;
  (void)Bad::latent_factor;
#endif
  return 0;
}
