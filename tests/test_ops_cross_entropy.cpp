// Softmax cross-entropy with class-index labels: values against a reference loop, the gradient
// against central differences in double, large logits, and labels out of range.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <ldm/ldm.hpp>
#include <ldm/ops/loss.hpp>
#include <limits>

#include "support/errors.hpp"
#include "support/gradcheck.hpp"

using namespace ldm;

namespace {

constexpr index_t N = 5, K = 7;
using Logits = Shape<N, K>;
using Labels = Shape<N>;
constexpr double kUpstream = 0.7;

Tensor<std::int32_t, Labels> some_labels() {
  Tensor<std::int32_t, Labels> labels;
  const std::int32_t values[N] = {0, 6, 3, 3, 1};
  for (index_t n = 0; n < N; ++n)
    labels[n] = values[n];
  return labels;
}

// The textbook formula without the shift: exact enough for logits of order 1.
template <class T>
double reference(const Tensor<T, Logits>& logits, const Tensor<std::int32_t, Labels>& labels) {
  double total = 0;
  for (index_t n = 0; n < N; ++n) {
    double denominator = 0;
    for (index_t k = 0; k < K; ++k)
      denominator += std::exp(double(logits(n, k)));
    total -= std::log(std::exp(double(logits(n, labels[n]))) / denominator);
  }
  return total / N;
}

}  // namespace

TEST_CASE("cross_entropy forward against a reference loop, float and double") {
  const auto labels = some_labels();
  Tensor<double, Logits> logits_d;
  logits_d = randn<Logits>(3) * 2.0;
  Tensor<float, Logits> logits_f;
  logits_f = logits_d;
  CHECK(ops::cross_entropy_forward(logits_d, labels) ==
        doctest::Approx(reference(logits_d, labels)).epsilon(1e-13));
  CHECK(ops::cross_entropy_forward(logits_f, labels) ==
        doctest::Approx(reference(logits_f, labels)).epsilon(1e-12));
}

TEST_CASE("cross_entropy backward: central differences in double, gradient overwritten") {
  const auto labels = some_labels();
  Tensor<double, Logits> logits, dlogits;
  logits = randn<Logits>(4) * 2.0;
  dlogits = std::numeric_limits<double>::quiet_NaN();
  ops::cross_entropy_backward(logits, labels, kUpstream, dlogits);
  for (index_t i = 0; i < Logits::size; ++i)
    REQUIRE(std::isfinite(dlogits[i]));
  const auto numeric = test::numerical_gradient(
      [&] { return kUpstream * ops::cross_entropy_forward(logits, labels); }, logits.data(),
      Logits::size);
  const double error = test::max_relative_error(dlogits.data(), numeric);
  MESSAGE("largest relative gradient error " << error);
  CHECK(error <= 1e-8);
  // Each row of softmax - onehot sums to zero.
  for (index_t n = 0; n < N; ++n) {
    double row = 0;
    for (index_t k = 0; k < K; ++k)
      row += dlogits(n, k);
    CHECK(std::abs(row) <= 1e-15);
  }
}

TEST_CASE("cross_entropy: logits far beyond exp's range stay finite and exact") {
  // Shifting a row by a constant leaves softmax unchanged, so logits near 1e4 (exp overflows
  // past 709) must give the loss and gradient of the same logits near zero.
  const auto labels = some_labels();
  Tensor<double, Logits> small, large, dsmall, dlarge;
  small = randn<Logits>(5);
  large = small + 1e4;
  const double expected = ops::cross_entropy_forward(small, labels);
  const double actual = ops::cross_entropy_forward(large, labels);
  REQUIRE(std::isfinite(actual));
  CHECK(actual == doctest::Approx(expected).epsilon(1e-9));
  ops::cross_entropy_backward(small, labels, 1.0, dsmall);
  ops::cross_entropy_backward(large, labels, 1.0, dlarge);
  for (index_t i = 0; i < Logits::size; ++i)
    CHECK(dlarge[i] == doctest::Approx(dsmall[i]).epsilon(1e-9));

  // A confident, correct prediction costs almost nothing; a confident, wrong one its margin.
  Tensor<float, Shape<1, 3>> confident;
  Tensor<std::int32_t, Shape<1>> right, wrong;
  confident(0, 0) = 200, confident(0, 1) = -300, confident(0, 2) = 0;
  right[0] = 0, wrong[0] = 1;
  CHECK(ops::cross_entropy_forward(confident, right) == doctest::Approx(0).epsilon(1e-12));
  CHECK(ops::cross_entropy_forward(confident, wrong) == doctest::Approx(500).epsilon(1e-12));
}

TEST_CASE("cross_entropy: a label outside [0, K) is an ldm::Error naming it") {
  auto labels = some_labels();
  Tensor<float, Logits> logits, dlogits;
  labels[2] = K;
  test::check_message(test::error_of([&] { (void)ops::cross_entropy_forward(logits, labels); }),
                      {"label 2", "[0, 7)", "found 7"});
  labels[2] = -1;
  test::check_message(
      test::error_of([&] { ops::cross_entropy_backward(logits, labels, 1.0, dlogits); }),
      {"label 2", "found -1"});
}
