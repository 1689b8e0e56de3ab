// expect: latent_channels differs between the configuration and its autoencoder
// Must not compile: a pipeline configuration whose latent channels disagree with its autoencoder.
#include <ldm/ldm.hpp>

struct Good {
  static constexpr ldm::index_t image_channels = 1, resolution = 16, latent_channels = 4;
  using autoencoder = ldm::AutoencoderKLConfig<ldm::channels<32, 32>, 1, 4>;
  using unet = ldm::UNetConfig<ldm::channels<32, 64>, 1, ldm::attention_at<1>, 32>;
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
