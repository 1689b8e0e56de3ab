// expect: must divide the channels of every cross-attention level and of the mid block
// Must not compile: a conditional UNet whose attention_head_dim, read as the number of heads as
// diffusers reads it, does not divide a cross-attention level's channels (320 into 3 heads).
#include <ldm/models/unet.hpp>

int main() {
  constexpr ldm::UNetConditionConfig good{.block_out_channels = {320, 640},
                                          .layers_per_block = 2,
                                          .cross_attention = {true, false},
                                          .attention_head_dim = {8},
                                          .cross_attention_dim = 768};
  (void)ldm::models::UNetCondition<float, ldm::host, 4, 8, 77, good>::parameter_count;
#ifndef LDM_COMPILE_FAIL_CONTROL
  constexpr ldm::UNetConditionConfig bad{.block_out_channels = {320, 640},
                                         .layers_per_block = 2,
                                         .cross_attention = {true, false},
                                         .attention_head_dim = {3},
                                         .cross_attention_dim = 768};
  (void)ldm::models::UNetCondition<float, ldm::host, 4, 8, 77, bad>::parameter_count;
#endif
  return 0;
}
