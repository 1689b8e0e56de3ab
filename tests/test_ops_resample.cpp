#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <ldm/ldm.hpp>
#include <ldm/ops/resample.hpp>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"

using namespace ldm;

namespace {

constexpr index_t N = 3, H = 5, W = 7, C = 12, Ca = 5, Cb = 7;
using S = Shape<N, H, W, C>;
using Up = Shape<N, 2 * H, 2 * W, C>;
using SA = Shape<N, H, W, Ca>;
using SB = Shape<N, H, W, Cb>;
using SCat = Shape<N, H, W, Ca + Cb>;

using test::max_error;

template <class T>
std::string type_name() {
  return std::is_same_v<T, float> ? "float" : "double";
}

template <class T>
void check_upsample_against_reference() {
  Tensor<T, S> x(randn<S>(1, 0)), dx;
  Tensor<T, Up> y, dy(randn<Up>(1, 1));
  ops::upsample_nearest2x_forward(x, y);
  ops::upsample_nearest2x_backward(dy, dx);
  std::vector<double> ry(Up::size), rdx(S::size);
  for (index_t n = 0; n < N; ++n)
    for (index_t oh = 0; oh < 2 * H; ++oh)
      for (index_t ow = 0; ow < 2 * W; ++ow)
        for (index_t c = 0; c < C; ++c) {
          ry[Up::offset(n, oh, ow, c)] = x(n, oh / 2, ow / 2, c);
          rdx[S::offset(n, oh / 2, ow / 2, c)] += dy(n, oh, ow, c);
        }
  const double ey = max_error(y.data(), ry), edx = max_error(dx.data(), rdx);
  MESSAGE("upsample_nearest2x " << type_name<T>() << ": largest error vs reference: y " << ey
                                << ", dx " << edx);
  // A copy, and a sum of four terms rounded once.
  CHECK(ey == 0);
  CHECK(edx <= (std::is_same_v<T, float> ? 2e-7 : 1e-16));
}

template <class T>
void check_concat_against_reference() {
  Tensor<T, SA> a(randn<SA>(2, 0)), da;
  Tensor<T, SB> b(randn<SB>(2, 1)), db;
  Tensor<T, SCat> y, dy(randn<SCat>(2, 2));
  ops::concat_channels(a, b, y);
  ops::split_channels(dy, da, db);
  std::vector<double> ry(SCat::size), rda(SA::size), rdb(SB::size);
  for (index_t n = 0; n < N; ++n)
    for (index_t h = 0; h < H; ++h)
      for (index_t w = 0; w < W; ++w)
        for (index_t c = 0; c < Ca + Cb; ++c) {
          const bool first = c < Ca;
          ry[SCat::offset(n, h, w, c)] = first ? a(n, h, w, c) : b(n, h, w, c - Ca);
          (first ? rda[SA::offset(n, h, w, c)] : rdb[SB::offset(n, h, w, c - Ca)]) = dy(n, h, w, c);
        }
  const double ey = max_error(y.data(), ry), eda = max_error(da.data(), rda),
               edb = max_error(db.data(), rdb);
  MESSAGE("concat_channels " << type_name<T>() << ": largest error vs reference: y " << ey
                             << ", da " << eda << ", db " << edb);
  CHECK(ey == 0);
  CHECK(eda == 0);
  CHECK(edb == 0);
}

}  // namespace

TEST_CASE("upsample_nearest2x: forward and backward against a reference loop, 3x5x7x12") {
  check_upsample_against_reference<float>();
  check_upsample_against_reference<double>();
}

TEST_CASE("upsample_nearest2x: central-difference gradient check in double") {
  Tensor<double, S> x(randn<S>(3, 0)), dx;
  Tensor<double, Up> y, g(randn<Up>(3, 1));
  auto loss = [&] {
    ops::upsample_nearest2x_forward(x, y);
    return test::dot(y.data(), g.data(), Up::size);
  };
  ops::upsample_nearest2x_backward(g, dx);
  const double ex =
      test::max_relative_error(dx.data(), test::numerical_gradient(loss, x.data(), S::size));
  MESSAGE("upsample_nearest2x gradient check, largest relative error: dx " << ex);
  CHECK(ex < 1e-8);
}

TEST_CASE("upsample_nearest2x: forward and backward overwrite their outputs") {
  Tensor<float, S> x(randn<S>(4, 0)), dx;
  Tensor<float, Up> y, dy(randn<Up>(4, 1));
  y = std::numeric_limits<float>::quiet_NaN();
  dx = std::numeric_limits<float>::quiet_NaN();
  ops::upsample_nearest2x_forward(x, y);
  ops::upsample_nearest2x_backward(dy, dx);
  for (index_t i = 0; i < Up::size; ++i)
    REQUIRE(std::isfinite(y[i]));
  for (index_t i = 0; i < S::size; ++i)
    REQUIRE(std::isfinite(dx[i]));
}

TEST_CASE("concat_channels: [a, b] and the split back against a reference loop, 5 + 7 channels") {
  check_concat_against_reference<float>();
  check_concat_against_reference<double>();
}

TEST_CASE("concat_channels: central-difference gradient check in double for a and b") {
  Tensor<double, SA> a(randn<SA>(5, 0)), da;
  Tensor<double, SB> b(randn<SB>(5, 1)), db;
  Tensor<double, SCat> y, g(randn<SCat>(5, 2));
  auto loss = [&] {
    ops::concat_channels(a, b, y);
    return test::dot(y.data(), g.data(), SCat::size);
  };
  ops::split_channels(g, da, db);
  const double ea =
      test::max_relative_error(da.data(), test::numerical_gradient(loss, a.data(), SA::size));
  const double eb =
      test::max_relative_error(db.data(), test::numerical_gradient(loss, b.data(), SB::size));
  MESSAGE("concat_channels gradient check, largest relative error: da " << ea << ", db " << eb);
  CHECK(ea < 1e-8);
  CHECK(eb < 1e-8);
}

TEST_CASE("concat_channels and split_channels overwrite their outputs") {
  Tensor<float, SA> a(randn<SA>(6, 0)), da;
  Tensor<float, SB> b(randn<SB>(6, 1)), db;
  Tensor<float, SCat> y, dy(randn<SCat>(6, 2));
  y = std::numeric_limits<float>::quiet_NaN();
  da = std::numeric_limits<float>::quiet_NaN();
  db = std::numeric_limits<float>::quiet_NaN();
  ops::concat_channels(a, b, y);
  ops::split_channels(dy, da, db);
  for (index_t i = 0; i < SCat::size; ++i)
    REQUIRE(std::isfinite(y[i]));
  for (index_t i = 0; i < SA::size; ++i)
    REQUIRE(std::isfinite(da[i]));
  for (index_t i = 0; i < SB::size; ++i)
    REQUIRE(std::isfinite(db[i]));
}

TEST_CASE("upsample and concat at sizes where the host loops run in parallel") {
  // 2 x 16 x 16 x 96 elements and more: above the host executor's parallel threshold.
  constexpr index_t n = 2, h = 16, w = 16, ca = 32, cb = 64;
  Tensor<float, Shape<n, h, w, ca>> a(randn<Shape<n, h, w, ca>>(7, 0)), da;
  Tensor<float, Shape<n, h, w, cb>> b(randn<Shape<n, h, w, cb>>(7, 1)), db;
  Tensor<float, Shape<n, h, w, ca + cb>> y;
  ops::concat_channels(a, b, y);
  ops::split_channels(y, da, db);
  for (index_t i = 0; i < a.size; ++i)
    REQUIRE(da[i] == a[i]);
  for (index_t i = 0; i < b.size; ++i)
    REQUIRE(db[i] == b[i]);

  Tensor<float, Shape<n, 2 * h, 2 * w, cb>> up;
  Tensor<float, Shape<n, h, w, cb>> back;
  ops::upsample_nearest2x_forward(b, up);
  ops::upsample_nearest2x_backward(up, back);
  for (index_t i = 0; i < b.size; ++i)
    REQUIRE(back[i] == 4 * b[i]);
}
