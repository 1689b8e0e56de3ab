#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ldm/ldm.hpp>
#include <ldm/ops/activation.hpp>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"

using namespace ldm;

namespace {

using S = Shape<3, 5, 7, 12>;

using test::max_error;

template <class T>
void check_silu_against_reference() {
  Tensor<T, S> x(randn<S>(1, 0) * 4.0f), dy(randn<S>(1, 1)), y, dx;
  // Far into both tails, where exp overflows in float: no NaN, and the limits 0 and x.
  x[0] = T(-200);
  x[1] = T(200);
  x[2] = T(-30);
  // Where sigmoid(x) is near 1, so 1 - sigmoid(x) must not be formed by cancellation.
  for (index_t k = 0; k < 48; ++k)
    x[3 + k] = T(4 + 0.25 * double(k));
  ops::silu_forward(x, y);
  ops::silu_backward(x, dy, dx);
  std::vector<double> ry(S::size), rdx(S::size);
  for (index_t i = 0; i < S::size; ++i) {
    const double v = x[i], s = 1 / (1 + std::exp(-v));
    ry[i] = v * s;
    rdx[i] = double(dy[i]) * (s + v * s * (1 - s));
  }
  const double ey = max_error(y.data(), ry), edx = max_error(dx.data(), rdx);
  const std::string type = std::is_same_v<T, float> ? "float" : "double";
  MESSAGE("silu " << type << ": largest error vs reference: y " << ey << ", dx " << edx);
  // A few roundings in exp, the division and the products.
  const double tolerance = std::is_same_v<T, float> ? 4e-7 : 1e-14;
  CHECK(ey <= tolerance);
  CHECK(edx <= tolerance);
}

// 945 elements: the last Philox block of four draws is only partly used.
using Odd = Shape<3, 5, 7, 9>;

template <class T>
void check_dropout_against_reference(float p) {
  Tensor<T, Odd> x(randn<Odd>(2, 0)), dy(randn<Odd>(2, 1)), y, dx;
  constexpr std::uint64_t seed = 42, offset = 7;
  ops::dropout_forward(x, p, seed, offset, y);
  ops::dropout_backward(dy, p, seed, offset, dx);
  std::vector<double> ry(Odd::size), rdx(Odd::size);
  for (index_t i = 0; i < Odd::size; ++i) {
    const bool dropped = uniform(seed, offset, std::uint64_t(i)) < p;
    ry[i] = dropped ? 0 : double(x[i]) / (1 - double(T(p)));
    rdx[i] = dropped ? 0 : double(dy[i]) / (1 - double(T(p)));
  }
  const double ey = max_error(y.data(), ry), edx = max_error(dx.data(), rdx);
  const std::string type = std::is_same_v<T, float> ? "float" : "double";
  MESSAGE("dropout p=" << p << " " << type << ": largest error vs reference: y " << ey << ", dx "
                       << edx);
  // One rounding of the scale and one of the product.
  const double tolerance = std::is_same_v<T, float> ? 3e-7 : 1e-15;
  CHECK(ey <= tolerance);
  CHECK(edx <= tolerance);
}

// Whether two tensors hold the same bits.
template <class T, class Sh>
bool identical(const Tensor<T, Sh>& a, const Tensor<T, Sh>& b) {
  return std::memcmp(a.data(), b.data(), sizeof(T) * Sh::size) == 0;
}

}  // namespace

TEST_CASE("silu: forward and backward against a double reference loop, with saturated tails") {
  check_silu_against_reference<float>();
  check_silu_against_reference<double>();
}

TEST_CASE("silu: central-difference gradient check in double") {
  Tensor<double, S> x(randn<S>(3, 0) * 3.0f), g(randn<S>(3, 1)), y, dx;
  auto loss = [&] {
    ops::silu_forward(x, y);
    return test::dot(y.data(), g.data(), S::size);
  };
  ops::silu_backward(x, g, dx);
  const double ex =
      test::max_relative_error(dx.data(), test::numerical_gradient(loss, x.data(), S::size));
  MESSAGE("silu gradient check, largest relative error: dx " << ex);
  CHECK(ex < 1e-8);
}

TEST_CASE("silu: forward and backward overwrite their outputs") {
  Tensor<float, S> x(randn<S>(4, 0)), dy(randn<S>(4, 1)), y, dx;
  y = std::numeric_limits<float>::quiet_NaN();
  dx = std::numeric_limits<float>::quiet_NaN();
  ops::silu_forward(x, y);
  ops::silu_backward(x, dy, dx);
  for (index_t i = 0; i < S::size; ++i) {
    REQUIRE(std::isfinite(y[i]));
    REQUIRE(std::isfinite(dx[i]));
  }
}

TEST_CASE("dropout: forward and backward against the mask drawn from ldm::uniform") {
  for (float p : {0.1f, 0.5f, 0.9f}) {
    check_dropout_against_reference<float>(p);
    check_dropout_against_reference<double>(p);
  }
}

TEST_CASE("dropout: the same (seed, offset) gives the same mask, another seed or offset another") {
  Tensor<float, S> x(randn<S>(5, 0) + 10.0f), a, b, other_offset, other_seed;
  ops::dropout_forward(x, 0.5f, 3, 1, a);
  ops::dropout_forward(x, 0.5f, 3, 1, b);
  ops::dropout_forward(x, 0.5f, 3, 2, other_offset);
  ops::dropout_forward(x, 0.5f, 4, 1, other_seed);
  CHECK(identical(a, b));
  index_t differ_offset = 0, differ_seed = 0;
  for (index_t i = 0; i < S::size; ++i) {
    differ_offset += (a[i] == 0) != (other_offset[i] == 0);
    differ_seed += (a[i] == 0) != (other_seed[i] == 0);
  }
  // Independent masks at p = 1/2 disagree on about half the elements.
  CHECK(differ_offset > S::size / 3);
  CHECK(differ_seed > S::size / 3);
}

TEST_CASE("dropout: the kept fraction is 1 - p within 5 standard deviations on 2^20 elements") {
  using Big = Shape<1 << 20>;
  Tensor<float, Big> x, y;
  x = 1.0f;
  for (float p : {0.1f, 0.3f, 0.75f}) {
    ops::dropout_forward(x, p, 11, 0, y);
    index_t kept = 0;
    for (index_t i = 0; i < Big::size; ++i)
      kept += y[i] != 0;
    const double n = double(Big::size), expected = n * (1 - p);
    const double sigma = std::sqrt(n * p * (1 - p));
    MESSAGE("dropout p=" << p << ": kept " << kept << " of " << Big::size << ", expected "
                         << expected << " +- " << sigma);
    CHECK(std::abs(double(kept) - expected) < 5 * sigma);
    CHECK(sum(y) == doctest::Approx(double(kept) / (1 - p)).epsilon(1e-6));
  }
}

TEST_CASE("dropout: backward applies forward's mask and scale, and overwrites dx") {
  Tensor<float, S> x, y, dy(randn<S>(6, 0)), dx;
  x = 1.0f;
  const float p = 0.4f;
  ops::dropout_forward(x, p, 21, 5, y);
  dx = std::numeric_limits<float>::quiet_NaN();
  ops::dropout_backward(dy, p, 21, 5, dx);
  const float scale = 1.0f / (1.0f - p);
  for (index_t i = 0; i < S::size; ++i) {
    REQUIRE((y[i] == 0 || y[i] == scale));
    REQUIRE(dx[i] == (y[i] == 0 ? 0.0f : dy[i] * scale));
  }
}

TEST_CASE("dropout: p = 0 copies, p = 1 drops everything") {
  Tensor<float, S> x(randn<S>(7, 0)), y, dx;
  y = std::numeric_limits<float>::quiet_NaN();
  ops::dropout_forward(x, 0.0f, 1, 0, y);
  CHECK(identical(x, y));
  ops::dropout_backward(x, 0.0f, 1, 0, dx);
  CHECK(identical(x, dx));
  ops::dropout_forward(x, 1.0f, 1, 0, y);
  for (index_t i = 0; i < S::size; ++i)
    REQUIRE(y[i] == 0.0f);
}

TEST_CASE("dropout: central-difference gradient check in double") {
  Tensor<double, S> x(randn<S>(8, 0)), g(randn<S>(8, 1)), y, dx;
  auto loss = [&] {
    ops::dropout_forward(x, 0.3f, 9, 2, y);
    return test::dot(y.data(), g.data(), S::size);
  };
  ops::dropout_backward(g, 0.3f, 9, 2, dx);
  const double ex =
      test::max_relative_error(dx.data(), test::numerical_gradient(loss, x.data(), S::size));
  MESSAGE("dropout gradient check, largest relative error: dx " << ex);
  CHECK(ex < 1e-8);
}
