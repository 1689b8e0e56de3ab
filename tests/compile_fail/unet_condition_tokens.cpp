// expect: a UNetConditionConfig needs the context's token count
// Must not compile: a UNet2DConditionModel configuration without a context length.
#include <ldm/models/unet.hpp>

int main() {
  constexpr ldm::UNetConditionConfig config{.block_out_channels = {8, 16},
                                            .layers_per_block = 1,
                                            .cross_attention = {true, false},
                                            .attention_head_dim = {2},
                                            .cross_attention_dim = 12,
                                            .norm_num_groups = 4};
  (void)ldm::models::UNetCondition<float, ldm::host, 4, 8, 3, config>::parameter_count;
#ifndef LDM_COMPILE_FAIL_CONTROL
  (void)ldm::models::UNet<float, ldm::host, 4, 8, config>::parameter_count;
#endif
  return 0;
}
