// expect: destination is a view of const data
// Must not compile: writing through a view of const data.
#include <ldm/ldm.hpp>

int main() {
  const ldm::Tensor<float, ldm::Shape<8>> a;
  ldm::Tensor<float, ldm::Shape<8>> b;
  b = a * 2.0f;
#ifndef LDM_COMPILE_FAIL_CONTROL
  a.view() = b;
#endif
  return 0;
}
