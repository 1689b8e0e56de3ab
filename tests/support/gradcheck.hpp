#pragma once
// Central finite differences for gradient checks.
//
// For a scalar function L of a buffer x, d L / d x_i ~ (L(x + h e_i) - L(x - h e_i)) / (2h).
// Tests run the op in double with h ~ 1e-6 so truncation (O(h^2)) and rounding (O(eps / h))
// errors stay near 1e-10, and compare with the analytic gradient element by element.
// The usual loss is <y, g> for a fixed random upstream gradient g, whose gradient with respect to
// the op's output is exactly g.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <vector>

namespace ldm::test {

// Numerical gradient of loss() with respect to x[0 .. n), perturbing x in place and restoring it.
inline std::vector<double> numerical_gradient(const std::function<double()>& loss, double* x,
                                              std::size_t n, double h = 1e-6) {
  std::vector<double> grad(n);
  for (std::size_t i = 0; i < n; ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss();
    x[i] = saved - h;
    const double down = loss();
    x[i] = saved;
    grad[i] = (up - down) / (2 * h);
  }
  return grad;
}

// The largest elementwise error relative to the gradient's largest magnitude (the scale at which
// an error matters), or the absolute error when both are zero. A NaN anywhere (an unwritten
// gradient still holding its poison) makes the result NaN, which fails every comparison.
inline double max_relative_error(const double* analytic, const std::vector<double>& numeric) {
  double scale = 0, worst = 0;
  for (std::size_t i = 0; i < numeric.size(); ++i)
    scale = std::max(scale, std::abs(numeric[i]));
  for (std::size_t i = 0; i < numeric.size(); ++i) {
    const double error = std::abs(analytic[i] - numeric[i]);
    if (!(error <= worst)) worst = error;  // written so that NaN wins
  }
  return scale == 0 ? worst : worst / scale;
}

// The largest |actual - expected| / max(1, |expected|), for comparisons with a reference loop.
// NaN in actual (an unwritten output) makes the result NaN.
template <class T>
double max_error(const T* actual, const std::vector<double>& expected) {
  double worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double error =
        std::abs(double(actual[i]) - expected[i]) / std::max(1.0, std::abs(expected[i]));
    if (!(error <= worst)) worst = error;  // written so that NaN wins
  }
  return worst;
}

// <a, b> over n elements, in double.
template <class A, class B>
double dot(const A* a, const B* b, std::size_t n) {
  double s = 0;
  for (std::size_t i = 0; i < n; ++i)
    s += double(a[i]) * double(b[i]);
  return s;
}

}  // namespace ldm::test
