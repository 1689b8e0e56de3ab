// expect: broadcast axes removed
// Must not compile: broadcasting a per-channel vector along the wrong axes.
#include <ldm/ldm.hpp>

int main() {
  using Image = ldm::Shape<2, 3, 3, 4>;
  ldm::Tensor<float, Image> x;
  ldm::Tensor<float, ldm::Shape<4>> bias;
  x = x + ldm::broadcast<Image, 0, 1, 2>(bias);
#ifndef LDM_COMPILE_FAIL_CONTROL
  x = x + ldm::broadcast<Image, 1, 2, 3>(bias);
#endif
  return 0;
}
