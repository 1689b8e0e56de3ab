#pragma once
/// @file
/// Spherical linear interpolation between two tensors, the usual way to walk between two
/// Gaussian noises (or two noised latents) without the dip in norm that a straight line through
/// the ball takes:
/// @verbatim
///   slerp(a, b, t) = sin((1 - t) theta) / sin(theta) a + sin(t theta) / sin(theta) b,
///   cos(theta) = <a, b> / (|a| |b|).
/// @endverbatim
/// When a and b are nearly parallel or antiparallel (|cos theta| > slerp_parallel_threshold),
/// sin(theta) is too small to divide by and the interpolation falls back to the linear one,
/// (1 - t) a + t b, as the implementations shared around Stable Diffusion do (an antiparallel
/// pair then passes close to zero). A zero tensor has no direction: the cosine is taken as 1, so
/// the interpolation is linear too. The endpoints come back exactly (t = 0 gives a, t = 1 gives b),
/// and for a and b of equal norm every point keeps that norm (up to rounding).

#include <algorithm>
#include <cmath>

#include "ldm/core/error.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/diffusion/forward_process.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"

namespace ldm::diffusion {

/// Above this |cos theta| slerp() interpolates linearly (the customary 0.9995).
inline constexpr double slerp_parallel_threshold = 0.9995;

/// The coefficients of the two endpoints: the point is `a * a + b * b`.
struct SlerpWeights {
  double a = 1;  ///< The first endpoint's coefficient.
  double b = 0;  ///< The second endpoint's coefficient.
};

/// The cosine of the angle between a and b, in double; 1 when either is zero (no direction).
/// @throws ldm::Error when a or b holds a NaN or an infinity
template <ShapeType S, class Space>
double angle_cosine(View<const float, S, Space> a, View<const float, S, Space> b) {
  const double dot = sum(in_double(a) * in_double(b));
  const double norm_a = std::sqrt(sum(square(in_double(a))));
  const double norm_b = std::sqrt(sum(square(in_double(b))));
  if (!std::isfinite(norm_a)) fail("slerp: the first endpoint holds a NaN or an infinity");
  if (!std::isfinite(norm_b)) fail("slerp: the second endpoint holds a NaN or an infinity");
  if (norm_a == 0 || norm_b == 0) return 1;
  return std::clamp(dot / (norm_a * norm_b), -1.0, 1.0);
}

/// The endpoints' weights at t for endpoints at an angle of cosine `cosine` (see the file's
/// description for the linear fallback).
/// @throws ldm::Error when t is not in [0, 1] or cosine not in [-1, 1]
inline SlerpWeights slerp_weights(double cosine, double t) {
  if (!(t >= 0 && t <= 1)) fail_expected("slerp: t", "a value in [0, 1]", t);
  if (!(cosine >= -1 && cosine <= 1)) fail_expected("slerp: cosine", "a value in [-1, 1]", cosine);
  if (std::abs(cosine) > slerp_parallel_threshold) return {1 - t, t};
  const double theta = std::acos(cosine), sin_theta = std::sin(theta);
  return {std::sin((1 - t) * theta) / sin_theta, std::sin(t * theta) / sin_theta};
}

/// out = slerp(a, b, t), one fused expression evaluated in double. out may alias a or b.
/// @throws ldm::Error when t is not in [0, 1], or a or b holds a NaN or an infinity
template <ShapeType S, class Space>
void slerp(View<const float, S, Space> a, View<const float, S, Space> b, double t,
           View<float, S, Space> out) {
  const SlerpWeights w = slerp_weights(angle_cosine(a, b), t);
  out = w.a * in_double(a) + w.b * in_double(b);
}

}  // namespace ldm::diffusion
