#pragma once
// What GPU tests share: moving operands between the spaces, poisoned outputs, and the element by
// element comparison of a device result with the host backend's.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include <ldm/cuda.cuh>

namespace ldm::test {

// Deterministic operands: a normal Philox stream per (seed) on the host, in any element type.
template <class T, ShapeType S>
Tensor<T, S> host_random(std::uint64_t seed, double scale = 1.0) {
  Tensor<T, S> t;
  t = randn<S>(seed, 0) * scale;
  return t;
}

template <class T, ShapeType S>
Tensor<T, S, cuda> device_copy(View<const T, S> src) {
  return to_device(src);
}

// Operands in [0.5, 1.5): a sum of positive terms has no cancellation, so float's error stays
// below (terms + 2) * 2^-24 of the result in any summation order, and a relative bound holds.
template <ShapeType S>
Tensor<float, S> positive(std::uint64_t seed) {
  Tensor<float, S> t;
  t = rand<S>(seed, 0) + 0.5f;
  return t;
}

// The same values in element type T, e.g. double for the host reference.
template <class T, ShapeType S, class From>
Tensor<T, S> converted(View<const From, S> src) {
  Tensor<T, S> t;
  t = src;
  return t;
}

// A tensor as the read-only view ops take (a Tensor argument does not deduce View<const T>'s T
// when the other operands are views of const already).
template <class T, ShapeType S, class Space>
View<const T, S, Space> read_only(const Tensor<T, S, Space>& t) {
  return t.view();
}

// A device tensor filled with NaN, so that any element an op fails to write fails the comparison.
template <class T, ShapeType S>
Tensor<T, S, cuda> poisoned() {
  Tensor<T, S, cuda> t;
  t = std::numeric_limits<float>::quiet_NaN();
  return t;
}

// A device tensor of the host tensor's values converted to float (the device backend's type).
template <ShapeType S, class T>
Tensor<float, S, cuda> device_float(View<const T, S> src) {
  Tensor<float, S> f;
  f = src;
  return to_device(View<const float, S>(f));
}

// Each element of `actual` (on the device) must be within `tolerance` of `expected` relative to
// its own magnitude, with near-zero elements (after cancellation) judged against 1% of the largest
// expected magnitude. NaN or infinity anywhere fails. Reports the worst element.
template <class TA, class TE, ShapeType S>
void check_close(View<const TA, S, cuda> actual, View<const TE, S> expected, double tolerance,
                 const char* what) {
  const Tensor<TA, S> got = to_host(actual);
  double scale = 0;
  for (index_t i = 0; i < S::size; ++i)
    scale = std::max(scale, std::abs(double(expected[i])));
  const double floor = std::max(scale * 1e-2, std::numeric_limits<double>::min());
  double worst = 0;
  index_t worst_at = 0;
  index_t bad = 0;
  for (index_t i = 0; i < S::size; ++i) {
    const double a = double(got[i]), e = double(expected[i]);
    const double error = std::isfinite(a) ? std::abs(a - e) / std::max(std::abs(e), floor)
                                          : std::numeric_limits<double>::infinity();
    if (!(error <= tolerance)) ++bad;
    if (!(error <= worst)) {
      worst = error;
      worst_at = i;
    }
  }
  INFO(what << ": " << bad << " of " << S::size << " elements off; worst relative error " << worst
            << " at " << worst_at << " (got " << double(got[worst_at]) << ", expected "
            << double(expected[worst_at]) << "), tolerance " << tolerance);
  CHECK(bad == 0);
}

// A layer with a weight and a bias (Linear, Conv2d): positive operands in float, the same in double
// for the host reference, and on the device; the reference and device outputs, the device ones
// poisoned, and parameter gradients starting from the same non-zero values on both sides, so that
// accumulation is checked. Run the host op on the `*_ref` and the device op on the `*_dev` side,
// then check().
template <ShapeType XS, ShapeType WS, ShapeType BS, ShapeType YS>
struct LayerCase {
  Tensor<float, XS> x = positive<XS>(1);
  Tensor<float, YS> dy = positive<YS>(2);
  Tensor<float, WS> w = positive<WS>(3);
  Tensor<float, BS> b = positive<BS>(4);
  Tensor<float, WS> dw_start = positive<WS>(5);
  Tensor<float, BS> db_start = positive<BS>(6);

  Tensor<double, XS> x_ref = converted<double>(x.view());
  Tensor<double, YS> dy_ref = converted<double>(dy.view());
  Tensor<double, WS> w_ref = converted<double>(w.view());
  Tensor<double, BS> b_ref = converted<double>(b.view());
  Tensor<double, YS> y_ref;
  Tensor<double, XS> dx_ref;
  Tensor<double, WS> dw_ref = converted<double>(dw_start.view());
  Tensor<double, BS> db_ref = converted<double>(db_start.view());

  Tensor<float, XS, ldm::cuda> x_dev = to_device(x.view());
  Tensor<float, YS, ldm::cuda> dy_dev = to_device(dy.view());
  Tensor<float, WS, ldm::cuda> w_dev = to_device(w.view());
  Tensor<float, BS, ldm::cuda> b_dev = to_device(b.view());
  Tensor<float, YS, ldm::cuda> y_dev = poisoned<float, YS>();
  Tensor<float, XS, ldm::cuda> dx_dev = poisoned<float, XS>();
  Tensor<float, WS, ldm::cuda> dw_dev = to_device(dw_start.view());
  Tensor<float, BS, ldm::cuda> db_dev = to_device(db_start.view());

  void check(double tolerance) const {
    check_close(read_only(y_dev), y_ref.view(), tolerance, "forward");
    check_close(read_only(dx_dev), dx_ref.view(), tolerance, "input gradient");
    check_close(read_only(dw_dev), dw_ref.view(), tolerance, "weight gradient (accumulated)");
    check_close(read_only(db_dev), db_ref.view(), tolerance, "bias gradient (accumulated)");
  }
};

// float32 mode against a host result: the issue's bound. bf16 mode: about 2^-6.
inline constexpr double kFloatTolerance = 1e-5;
inline constexpr double kBf16Tolerance = 2e-2;

}  // namespace ldm::test
