// expect: attention_head_dim must divide the channels of every attention level
// Must not compile: a UNet whose attention head dimension does not divide its channels.
#include <ldm/models/config.hpp>

int main() {
  using Good = ldm::UNetConfig<ldm::channels<32, 64>, 2, ldm::attention_at<1>, 32>;
  (void)Good::time_embed_dim;
#ifndef LDM_COMPILE_FAIL_CONTROL
  using Bad = ldm::UNetConfig<ldm::channels<32, 64>, 2, ldm::attention_at<1>, 48>;
  (void)Bad::time_embed_dim;
#endif
  return 0;
}
