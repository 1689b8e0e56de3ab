#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <ldm/ldm.hpp>
#include <ldm/ops/loss.hpp>
#include <limits>
#include <string>

#include "support/gradcheck.hpp"

using namespace ldm;

namespace {

using S = Shape<3, 5, 7, 2>;  // odd extents; N = 3 samples
constexpr double kUpstream = 0.7;

template <class T>
std::string type_name() {
  return std::is_same_v<T, float> ? "float" : "double";
}

template <class T>
void check_value(const char* what, double actual, double expected, double tolerance) {
  const double error = std::abs(actual - expected) / std::abs(expected);
  MESSAGE(std::string(what) << " " << type_name<T>() << ": " << actual << " vs reference "
                            << expected << ", relative error " << error << " (tolerance "
                            << tolerance << ")");
  CHECK(error <= tolerance);
}

// Float: the op sums in double, like the reference, so only its float inputs and float
// elementwise arithmetic round: about 1e-7 relative.
template <class T>
double value_tolerance() {
  return std::is_same_v<T, float> ? 1e-6 : 1e-13;
}

template <class T>
void check_forward_values() {
  Tensor<T, S> pred, target, logvar;
  pred = randn<S>(5, 0);
  target = randn<S>(5, 1);
  logvar = randn<S>(5, 2) * 2.0f;

  double squared = 0, absolute = 0, kl = 0;
  for (index_t i = 0; i < S::size; ++i) {
    const double d = double(pred[i]) - double(target[i]);
    squared += d * d;
    absolute += std::abs(d);
  }
  for (index_t n = 0; n < batch_of<S>; ++n) {
    double per_sample = 0;
    for (index_t i = 0; i < S::size / batch_of<S>; ++i) {
      const double m = pred.sample(n)[i], lv = logvar.sample(n)[i];
      per_sample += m * m + std::exp(lv) - 1 - lv;
    }
    kl += 0.5 * per_sample;
  }

  check_value<T>("mse", ops::mse_forward(pred, target), squared / S::size, value_tolerance<T>());
  check_value<T>("l1", ops::l1_forward(pred, target), absolute / S::size, value_tolerance<T>());
  check_value<T>("kl", ops::kl_forward(pred, logvar), kl / batch_of<S>, value_tolerance<T>());
}

// The analytic gradient (scaled by kUpstream) against central differences of upstream * loss.
double gradient_error(const char* what, const std::function<double()>& loss, double* input,
                      const double* analytic) {
  // max_relative_error would pass over a NaN left from the poison, so check that none is left.
  for (index_t i = 0; i < S::size; ++i)
    REQUIRE_MESSAGE(std::isfinite(analytic[i]), std::string(what)
                                                    << "[" << i << "] was not overwritten");
  const auto numeric = test::numerical_gradient([&] { return kUpstream * loss(); }, input, S::size);
  const double error = test::max_relative_error(analytic, numeric);
  MESSAGE(std::string(what) << ": largest relative gradient error " << error);
  return error;
}

void poison(Tensor<double, S>& gradient) {
  gradient = randn<S>(9) * std::numeric_limits<double>::quiet_NaN();
}

// Central differences lose about epsilon * |loss| / h to rounding: 3e-8 of the KL gradient here.
constexpr double kGradientTolerance = 1e-6;

}  // namespace

TEST_CASE("losses forward: mse, l1 and kl against reference loops at 3x5x7x2") {
  check_forward_values<float>();
  check_forward_values<double>();
}

TEST_CASE("losses backward: central differences in double, gradients overwritten") {
  Tensor<double, S> pred, target, logvar, dpred, dlogvar;
  pred = randn<S>(6, 0);
  target = randn<S>(6, 1);
  logvar = randn<S>(6, 2);

  poison(dpred);
  ops::mse_backward(pred, target, kUpstream, dpred);
  CHECK(gradient_error(
            "mse dpred", [&] { return ops::mse_forward(pred, target); }, pred.data(),
            dpred.data()) <= kGradientTolerance);

  // Central differences of |x| are exact where |pred - target| > h, which holds for these draws.
  poison(dpred);
  ops::l1_backward(pred, target, kUpstream, dpred);
  CHECK(gradient_error(
            "l1 dpred", [&] { return ops::l1_forward(pred, target); }, pred.data(), dpred.data()) <=
        kGradientTolerance);

  poison(dpred);
  poison(dlogvar);
  ops::kl_backward(pred, logvar, kUpstream, dpred, dlogvar);
  auto kl = [&] { return ops::kl_forward(pred, logvar); };
  CHECK(gradient_error("kl dmean", kl, pred.data(), dpred.data()) <= kGradientTolerance);
  CHECK(gradient_error("kl dlogvar", kl, logvar.data(), dlogvar.data()) <= kGradientTolerance);
}

TEST_CASE("l1 backward: the sign is 0 where pred equals target, as torch.sign") {
  Tensor<float, S> pred, target, dpred;
  pred = randn<S>(8, 0);
  target = randn<S>(8, 1);
  for (index_t i = 0; i < S::size; i += 3)
    target[i] = pred[i];
  dpred = randn<S>(8, 2) * std::numeric_limits<float>::quiet_NaN();

  ops::l1_backward(pred, target, kUpstream, dpred);

  const float step = float(kUpstream / S::size);
  for (index_t i = 0; i < S::size; ++i) {
    const float expected = i % 3 == 0 ? 0.0f : pred[i] > target[i] ? step : -step;
    REQUIRE_MESSAGE(dpred[i] == expected, "element " << i << ": " << dpred[i]);
  }
  // And the forward counts those elements as zero.
  double absolute = 0;
  for (index_t i = 0; i < S::size; ++i)
    absolute += std::abs(double(pred[i]) - double(target[i]));
  CHECK(ops::l1_forward(pred, target) == doctest::Approx(absolute / S::size).epsilon(1e-6));
}
