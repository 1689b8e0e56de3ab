#pragma once
// Float arithmetic rounded after every operation, on both sides. nvcc contracts a * b + c into
// one fused multiply-add and the host compiler (baseline x86-64 has no FMA) does not, so an update
// written with plain operators would round differently on the device. The optimisers' updates
// use these, which keeps device and host state equal bit for bit.

#include <cmath>

#include "ldm/core/macros.hpp"

namespace ldm::train::rounded {

LDM_HD inline float add(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}
LDM_HD inline float sub(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fsub_rn(a, b);
#else
  return a - b;
#endif
}
LDM_HD inline float mul(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}
LDM_HD inline float div(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fdiv_rn(a, b);
#else
  return a / b;
#endif
}
LDM_HD inline float sqrt(float a) {
#if defined(__CUDA_ARCH__)
  return __fsqrt_rn(a);
#else
  return std::sqrt(a);
#endif
}

}  // namespace ldm::train::rounded
