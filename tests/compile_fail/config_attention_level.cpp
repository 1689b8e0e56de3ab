// expect: attention_at names a level the UNet does not have
// Must not compile: attention at a level beyond the UNet's depth.
#include <ldm/models/config.hpp>

int main() {
  using Good = ldm::UNetConfig<ldm::channels<32, 64>, 2, ldm::attention_at<1>, 32>;
  (void)Good::levels;
#ifndef LDM_COMPILE_FAIL_CONTROL
  using Bad = ldm::UNetConfig<ldm::channels<32, 64>, 2, ldm::attention_at<2>, 32>;
  (void)Bad::levels;
#endif
  return 0;
}
