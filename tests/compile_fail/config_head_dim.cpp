// expect: attention_head_dim must divide the channels of every attention level
// Must not compile: a UNet whose attention head dimension does not divide its channels.
#include <ldm/models/unet.hpp>

int main() {
  constexpr ldm::UNetConfig good{.block_out_channels = {32, 64},
                                 .layers_per_block = 2,
                                 .attention = {false, true},
                                 .attention_head_dim = 32};
  (void)ldm::models::UNet<float, ldm::host, 4, 8, good>::parameter_count;
#ifndef LDM_COMPILE_FAIL_CONTROL
  constexpr ldm::UNetConfig bad{.block_out_channels = {32, 64},
                                .layers_per_block = 2,
                                .attention = {false, true},
                                .attention_head_dim = 48};
  (void)ldm::models::UNet<float, ldm::host, 4, 8, bad>::parameter_count;
#endif
  return 0;
}
