// expect: expression's shape differs from the destination
// Must not compile: assigning an expression of another shape.
#include <ldm/ldm.hpp>

int main() {
  ldm::Tensor<float, ldm::Shape<4, 5>> a;
  ldm::Tensor<float, ldm::Shape<5, 4>> b;
  a = a * 2.0f;
#ifndef LDM_COMPILE_FAIL_CONTROL
  a = b * 2.0f;
#endif
  return 0;
}
