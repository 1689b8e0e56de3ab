// expect: materialise a reduction
// Must not compile: broadcasting a reduction, which would recompute it per element.
#include <ldm/ldm.hpp>

int main() {
  using Image = ldm::Shape<2, 3, 3, 4>;
  ldm::Tensor<float, Image> x;
  ldm::Tensor<float, ldm::Shape<4>> m;
  m = ldm::mean<0, 1, 2>(x);
  x = x - ldm::broadcast<Image, 0, 1, 2>(m);
#ifndef LDM_COMPILE_FAIL_CONTROL
  x = x - ldm::broadcast<Image, 0, 1, 2>(ldm::mean<0, 1, 2>(x) * 2.0f);
#endif
  return 0;
}
