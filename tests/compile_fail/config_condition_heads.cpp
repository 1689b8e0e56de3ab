// expect: must divide the channels of every cross-attention level and of the mid block
// Must not compile: a conditional UNet whose attention_head_dim, read as the number of heads as
// diffusers reads it, does not divide a cross-attention level's channels (320 into 3 heads).
#include <ldm/models/config.hpp>

int main() {
  using Good = ldm::UNetConditionConfig<ldm::channels<320, 640>, 2, ldm::cross_attention_at<0>,
                                        ldm::per_level<8>, 768>;
  (void)Good::time_embed_dim;
#ifndef LDM_COMPILE_FAIL_CONTROL
  using Bad = ldm::UNetConditionConfig<ldm::channels<320, 640>, 2, ldm::cross_attention_at<0>,
                                       ldm::per_level<3>, 768>;
  (void)Bad::time_embed_dim;
#endif
  return 0;
}
