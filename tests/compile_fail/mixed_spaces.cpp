// expect: different memory spaces
// Must not compile: combining host and device tensors in one expression.
#include <ldm/ldm.hpp>

int main() {
  using S = ldm::Shape<8>;
  ldm::Tensor<float, S> a;
  ldm::View<float, S, ldm::cuda> device_view(nullptr);
  a = a + a;
#ifndef LDM_COMPILE_FAIL_CONTROL
  a = a + device_view;
#endif
  return 0;
}
