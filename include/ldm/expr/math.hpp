#pragma once
// Scalar functions for float and double that compile for host and device alike: the C library
// names (expf, logf, ...) exist on both sides, std:: overloads do not in device code.

#include <math.h>

#include "ldm/core/macros.hpp"

namespace ldm::math {

LDM_HD inline float exp(float x) {
  return ::expf(x);
}
LDM_HD inline double exp(double x) {
  return ::exp(x);
}
LDM_HD inline float log(float x) {
  return ::logf(x);
}
LDM_HD inline double log(double x) {
  return ::log(x);
}
LDM_HD inline float sqrt(float x) {
  return ::sqrtf(x);
}
LDM_HD inline double sqrt(double x) {
  return ::sqrt(x);
}
LDM_HD inline float tanh(float x) {
  return ::tanhf(x);
}
LDM_HD inline double tanh(double x) {
  return ::tanh(x);
}
LDM_HD inline float sin(float x) {
  return ::sinf(x);
}
LDM_HD inline double sin(double x) {
  return ::sin(x);
}
LDM_HD inline float cos(float x) {
  return ::cosf(x);
}
LDM_HD inline double cos(double x) {
  return ::cos(x);
}
LDM_HD inline float abs(float x) {
  return ::fabsf(x);
}
LDM_HD inline double abs(double x) {
  return ::fabs(x);
}

/// The error function, on host and device.
LDM_HD inline float erf(float x) {
  return ::erff(x);
}
/// @copydoc erf(float)
LDM_HD inline double erf(double x) {
  return ::erf(x);
}

LDM_HD inline float rsqrt(float x) {
#if defined(__CUDA_ARCH__)
  return ::rsqrtf(x);
#else
  return 1.0f / ::sqrtf(x);
#endif
}
LDM_HD inline double rsqrt(double x) {
  return 1.0 / ::sqrt(x);
}

template <class T>
LDM_HD T sigmoid(T x) {
  return T(1) / (T(1) + exp(-x));
}
template <class T>
LDM_HD T silu(T x) {
  return x * sigmoid(x);
}
// The derivative of silu: s * (1 + z * (1 - s)) with s = sigmoid(z). s and 1 - s both come from
// t = exp(-|z|), which cannot overflow, so 1 - s is never formed by cancellation: in float,
// 1 - sigmoid(z) loses most of its digits where s is near 1, and z * (1 - s) with them.
template <class T>
LDM_HD T silu_grad(T z) {
  const T t = exp(-abs(z));
  const T r = T(1) / (T(1) + t);
  const bool positive = z >= T(0);
  const T s = positive ? r : t * r;
  const T one_minus_s = positive ? t * r : r;
  return s * (T(1) + z * one_minus_s);
}
/// The exact GELU, x Phi(x) with Phi the normal CDF through erf (torch's F.gelu default, not its
/// tanh approximation).
template <class T>
LDM_HD T gelu(T x) {
  return T(0.5) * x * (T(1) + erf(x * T(0.70710678118654752440)));
}
/// The derivative of gelu: Phi(x) + x phi(x), phi the normal density.
template <class T>
LDM_HD T gelu_grad(T x) {
  const T cdf = T(0.5) * (T(1) + erf(x * T(0.70710678118654752440)));
  const T pdf = T(0.39894228040143267794) * exp(T(-0.5) * x * x);
  return cdf + x * pdf;
}
template <class T>
LDM_HD T max(T a, T b) {
  return a < b ? b : a;
}
template <class T>
LDM_HD T min(T a, T b) {
  return b < a ? b : a;
}

}  // namespace ldm::math
