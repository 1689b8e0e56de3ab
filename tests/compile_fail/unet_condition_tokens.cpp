// expect: a UNetConditionConfig needs the context's token count
// Must not compile: a UNet2DConditionModel configuration without a context length.
#include <ldm/models/unet.hpp>

int main() {
  using Config = ldm::UNetConditionConfig<ldm::channels<8, 16>, 1, ldm::cross_attention_at<0>,
                                          ldm::per_level<2>, 12, false, ldm::per_level<1>, 4>;
  (void)ldm::models::UNetCondition<float, ldm::host, 4, 8, 3, Config>::parameter_count;
#ifndef LDM_COMPILE_FAIL_CONTROL
  (void)ldm::models::UNet<float, ldm::host, 4, 8, Config>::parameter_count;
#endif
  return 0;
}
