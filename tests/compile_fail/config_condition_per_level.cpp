// expect: attention_head_dim must give one value, or one per level
// Must not compile: a per-level setting with neither one value nor one per level.
#include <ldm/models/config.hpp>

int main() {
  using Good = ldm::UNetConditionConfig<ldm::channels<32, 64, 64>, 1, ldm::cross_attention_at<0>,
                                        ldm::per_level<4, 8, 8>, 16>;
  (void)Good::time_embed_dim;
#ifndef LDM_COMPILE_FAIL_CONTROL
  using Bad = ldm::UNetConditionConfig<ldm::channels<32, 64, 64>, 1, ldm::cross_attention_at<0>,
                                       ldm::per_level<4, 8>, 16>;
  (void)Bad::time_embed_dim;
#endif
  return 0;
}
