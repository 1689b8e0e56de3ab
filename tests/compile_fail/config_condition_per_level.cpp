// expect: attention_head_dim must give one value, or one per level
// Must not compile: a per-level setting with neither one value nor one per level.
#include <ldm/models/unet.hpp>

int main() {
  constexpr ldm::UNetConditionConfig good{.block_out_channels = {32, 64, 64},
                                          .layers_per_block = 1,
                                          .cross_attention = {true, false, false},
                                          .attention_head_dim = {4, 8, 8},
                                          .cross_attention_dim = 16};
  (void)ldm::models::UNetCondition<float, ldm::host, 4, 8, 3, good>::parameter_count;
#ifndef LDM_COMPILE_FAIL_CONTROL
  constexpr ldm::UNetConditionConfig bad{.block_out_channels = {32, 64, 64},
                                         .layers_per_block = 1,
                                         .cross_attention = {true, false, false},
                                         .attention_head_dim = {4, 8},
                                         .cross_attention_dim = 16};
  (void)ldm::models::UNetCondition<float, ldm::host, 4, 8, 3, bad>::parameter_count;
#endif
  return 0;
}
