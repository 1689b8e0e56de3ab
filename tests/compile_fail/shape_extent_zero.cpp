// expect: every extent must be positive
// Must not compile: a shape with a zero extent.
#include <ldm/ldm.hpp>

int main() {
  ldm::Tensor<float, ldm::Shape<2, 1>> a;
  (void)a;
#ifndef LDM_COMPILE_FAIL_CONTROL
  ldm::Tensor<float, ldm::Shape<2, 0>> b;
  (void)b;
#endif
  return 0;
}
