// expect: latent_channels is stated once, in the configuration's autoencoder
// Must not compile: a pipeline configuration that states latent_channels beside its autoencoder's
// (the old form, where the two could disagree).
#include <ldm/ldm.hpp>

struct Good {
  static constexpr ldm::index_t image_channels = 1, resolution = 16;
  static constexpr ldm::AutoencoderKLConfig autoencoder{
      .block_out_channels = {32, 32}, .layers_per_block = 1, .latent_channels = 4};
  static constexpr ldm::UNetConfig unet{.block_out_channels = {32, 64},
                                        .layers_per_block = 1,
                                        .attention = {false, true},
                                        .attention_head_dim = 32};
  using schedule = ldm::LinearBetas<1000>;
};
struct Bad : Good {
  static constexpr ldm::index_t latent_channels = 3;
};

int main() {
  constexpr auto good = ldm::LatentDiffusion<Good>::latent_res;
  (void)good;
#ifndef LDM_COMPILE_FAIL_CONTROL
  constexpr auto bad = ldm::LatentDiffusion<Bad>::latent_res;
  (void)bad;
#endif
  return 0;
}
