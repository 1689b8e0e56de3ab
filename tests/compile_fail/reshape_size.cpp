// expect: new shape must have the same size
// Must not compile: reshaping to a shape of another size.
#include <ldm/ldm.hpp>

int main() {
  ldm::Tensor<float, ldm::Shape<2, 6>> a;
  auto ok = a.reshape<ldm::Shape<3, 4>>();
  (void)ok;
#ifndef LDM_COMPILE_FAIL_CONTROL
  auto bad = a.reshape<ldm::Shape<3, 5>>();
  (void)bad;
#endif
  return 0;
}
