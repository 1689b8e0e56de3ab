#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <ldm/ldm.hpp>
#include <ldm/ops/linear.hpp>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"

using namespace ldm;

namespace {

constexpr index_t In = 7, Out = 5;
using SX = Shape<3, 5, In>;
using SY = Shape<3, 5, Out>;
constexpr index_t Rows = SX::size / In;

using test::max_error;

template <class T>
void check_against_reference() {
  Tensor<T, SX> x(randn<SX>(1, 0)), dx;
  Tensor<T, Shape<Out, In>> w(randn<Shape<Out, In>>(1, 1) * 0.5f), dw;
  Tensor<T, Shape<Out>> bias(randn<Shape<Out>>(1, 2)), db;
  Tensor<T, SY> y, dy(randn<SY>(1, 3));
  ops::linear_forward(x, w, bias, y);
  ops::linear_backward_input(w, dy, dx);
  ops::linear_backward_params(x, dy, dw, db);

  std::vector<double> ry(SY::size), rdx(SX::size), rdw(Out * In), rdb(Out);
  for (index_t r = 0; r < Rows; ++r)
    for (index_t o = 0; o < Out; ++o) {
      double acc = bias[o];
      for (index_t i = 0; i < In; ++i)
        acc += double(x[r * In + i]) * double(w(o, i));
      ry[r * Out + o] = acc;
    }
  for (index_t r = 0; r < Rows; ++r)
    for (index_t i = 0; i < In; ++i)
      for (index_t o = 0; o < Out; ++o)
        rdx[r * In + i] += double(dy[r * Out + o]) * double(w(o, i));
  for (index_t o = 0; o < Out; ++o)
    for (index_t r = 0; r < Rows; ++r) {
      rdb[o] += double(dy[r * Out + o]);
      for (index_t i = 0; i < In; ++i)
        rdw[o * In + i] += double(dy[r * Out + o]) * double(x[r * In + i]);
    }

  // Sums of at most 15 products: a few float roundings of the largest term.
  const double tolerance = std::is_same_v<T, float> ? 1e-5 : 1e-13;
  const double errors[] = {max_error(y.data(), ry), max_error(dx.data(), rdx),
                           max_error(dw.data(), rdw), max_error(db.data(), rdb)};
  const std::string names[] = {"y", "dx", "dw", "db"};
  const std::string type = std::is_same_v<T, float> ? "float " : "double ";
  for (int k = 0; k < 4; ++k) {
    MESSAGE("linear " << type << names[k] << ": largest error vs reference " << errors[k]);
    CHECK(errors[k] <= tolerance);
  }
}

}  // namespace

TEST_CASE("linear: forward and backward against a double reference loop, Shape<3,5,7> -> 5") {
  check_against_reference<float>();
  check_against_reference<double>();
}

TEST_CASE("linear: a single vector (rank 1) is one row") {
  Tensor<double, Shape<In>> x(randn<Shape<In>>(5, 0));
  Tensor<double, Shape<Out, In>> w(randn<Shape<Out, In>>(5, 1));
  Tensor<double, Shape<Out>> bias(randn<Shape<Out>>(5, 2)), y;
  ops::linear_forward(x, w, bias, y);
  for (index_t o = 0; o < Out; ++o) {
    double acc = bias[o];
    for (index_t i = 0; i < In; ++i)
      acc += x[i] * w(o, i);
    CHECK(y[o] == doctest::Approx(acc).epsilon(1e-14));
  }
}

TEST_CASE("linear: central-difference gradient check in double for x, w and bias") {
  Tensor<double, SX> x(randn<SX>(2, 0)), dx;
  Tensor<double, Shape<Out, In>> w(randn<Shape<Out, In>>(2, 1)), dw;
  Tensor<double, Shape<Out>> bias(randn<Shape<Out>>(2, 2)), db;
  Tensor<double, SY> y, g(randn<SY>(2, 3));
  auto loss = [&] {
    ops::linear_forward(x, w, bias, y);
    return test::dot(y.data(), g.data(), SY::size);
  };
  ops::linear_backward_input(w, g, dx);
  ops::linear_backward_params(x, g, dw, db);
  const double ex =
      test::max_relative_error(dx.data(), test::numerical_gradient(loss, x.data(), SX::size));
  const double ew =
      test::max_relative_error(dw.data(), test::numerical_gradient(loss, w.data(), Out * In));
  const double eb =
      test::max_relative_error(db.data(), test::numerical_gradient(loss, bias.data(), Out));
  MESSAGE("linear gradient check, largest relative error: dx " << ex << ", dw " << ew << ", db "
                                                               << eb);
  CHECK(ex < 1e-8);
  CHECK(ew < 1e-8);
  CHECK(eb < 1e-8);
}

TEST_CASE("linear: forward overwrites y, backward overwrites dx and accumulates into dw and db") {
  Tensor<double, SX> x(randn<SX>(3, 0)), dx;
  Tensor<double, Shape<Out, In>> w(randn<Shape<Out, In>>(3, 1)), dw;
  Tensor<double, Shape<Out>> bias(randn<Shape<Out>>(3, 3)), db;
  Tensor<double, SY> y, dy(randn<SY>(3, 2));

  y = std::numeric_limits<double>::quiet_NaN();
  ops::linear_forward(x, w, bias, y);
  for (index_t i = 0; i < SY::size; ++i)
    REQUIRE(std::isfinite(y[i]));

  dx = std::numeric_limits<double>::quiet_NaN();
  ops::linear_backward_input(w, dy, dx);
  for (index_t i = 0; i < SX::size; ++i)
    REQUIRE(std::isfinite(dx[i]));

  dw = 0.25;
  db = -0.5;
  ops::linear_backward_params(x, dy, dw, db);
  const Tensor<double, Shape<Out, In>> once_w = dw;
  const Tensor<double, Shape<Out>> once_b = db;
  ops::linear_backward_params(x, dy, dw, db);
  for (index_t i = 0; i < Out * In; ++i)
    CHECK(dw[i] == doctest::Approx(0.25 + 2 * (once_w[i] - 0.25)).epsilon(1e-12));
  for (index_t o = 0; o < Out; ++o)
    CHECK(db[o] == doctest::Approx(-0.5 + 2 * (once_b[o] + 0.5)).epsilon(1e-12));
}
