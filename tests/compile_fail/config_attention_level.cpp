// expect: attention must give one flag per level of block_out_channels
// Must not compile: attention flags for more levels than the UNet has.
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
                                .attention = {false, true, true},
                                .attention_head_dim = 32};
  (void)ldm::models::UNet<float, ldm::host, 4, 8, bad>::parameter_count;
#endif
  return 0;
}
