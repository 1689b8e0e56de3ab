// expect: operands' shapes differ
// Must not compile: adding tensors of different shapes.
#include <ldm/ldm.hpp>

int main() {
  ldm::Tensor<float, ldm::Shape<2, 3>> a, b;
  ldm::Tensor<float, ldm::Shape<3, 2>> c;
  a = a + b;
#ifndef LDM_COMPILE_FAIL_CONTROL
  a = a + c;
#endif
  return 0;
}
