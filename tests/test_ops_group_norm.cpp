#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ldm/ldm.hpp>
#include <ldm/ops/group_norm.hpp>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "support/gradcheck.hpp"

using namespace ldm;

namespace {

// Odd extents everywhere, and groups of three channels.
constexpr index_t N = 3, H = 5, W = 7, C = 12, G = 4;
using S = Shape<N, H, W, C>;

// The entry points under test, by activation, behind one interface.
template <index_t Groups, ops::NormActivation Act>
struct EntryPoint {
  static constexpr bool silu = Act == ops::NormActivation::silu;
  template <class X, class P, class E, class Y, class M>
  static void forward(const X& x, const P& gamma, const P& beta, E eps, Y& y, M& mean, M& rstd) {
    ops::group_norm_forward<Groups, Act>(x, gamma, beta, eps, y, mean, rstd);
  }
  template <class X, class P, class M, class DP>
  static void backward(const X& x, const P& gamma, const P& beta, const M& mean, const M& rstd,
                       const X& dy, X& dx, DP& dgamma, DP& dbeta) {
    ops::group_norm_backward<Groups, Act>(x, gamma, beta, mean, rstd, dy, dx, dgamma, dbeta);
  }
};
template <index_t Groups>
using Plain = EntryPoint<Groups, ops::NormActivation::none>;
template <index_t Groups>
using Fused = EntryPoint<Groups, ops::NormActivation::silu>;

struct Reference {
  std::vector<double> y, mean, rstd, dx, dgamma, dbeta;
};

// GroupNorm (optionally followed by SiLU) and its gradient as plain loops in double, straight
// from the definitions: two-pass statistics, then the textbook backward
// dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) per (sample, group).
template <class T>
Reference reference(const T* x, const T* gamma, const T* beta, double eps, const T* dy, bool silu,
                    index_t n_, index_t hw, index_t c_, index_t groups) {
  const index_t cg = c_ / groups;
  const double count = double(hw * cg);
  Reference r{std::vector<double>(n_ * hw * c_), std::vector<double>(n_ * groups),
              std::vector<double>(n_ * groups),  std::vector<double>(n_ * hw * c_),
              std::vector<double>(c_),           std::vector<double>(c_)};
  auto at = [&](index_t n, index_t p, index_t c) { return (n * hw + p) * c_ + c; };
  for (index_t n = 0; n < n_; ++n)
    for (index_t g = 0; g < groups; ++g) {
      double sum = 0, squares = 0;
      for (index_t p = 0; p < hw; ++p)
        for (index_t c = g * cg; c < (g + 1) * cg; ++c)
          sum += double(x[at(n, p, c)]);
      const double mu = sum / count;
      for (index_t p = 0; p < hw; ++p)
        for (index_t c = g * cg; c < (g + 1) * cg; ++c) {
          const double d = double(x[at(n, p, c)]) - mu;
          squares += d * d;
        }
      const double rs = 1 / std::sqrt(squares / count + eps);
      r.mean[n * groups + g] = mu;
      r.rstd[n * groups + g] = rs;

      double mean_dxhat = 0, mean_dxhat_xhat = 0;
      for (index_t p = 0; p < hw; ++p)
        for (index_t c = g * cg; c < (g + 1) * cg; ++c) {
          const index_t i = at(n, p, c);
          const double xhat = (double(x[i]) - mu) * rs;
          const double z = xhat * double(gamma[c]) + double(beta[c]);
          const double sig = 1 / (1 + std::exp(-z));
          r.y[i] = silu ? z * sig : z;
          const double dz = double(dy[i]) * (silu ? sig + z * sig * (1 - sig) : 1.0);
          r.dgamma[c] += dz * xhat;
          r.dbeta[c] += dz;
          mean_dxhat += dz * double(gamma[c]) / count;
          mean_dxhat_xhat += dz * double(gamma[c]) * xhat / count;
        }
      for (index_t p = 0; p < hw; ++p)
        for (index_t c = g * cg; c < (g + 1) * cg; ++c) {
          const index_t i = at(n, p, c);
          const double xhat = (double(x[i]) - mu) * rs;
          const double z = xhat * double(gamma[c]) + double(beta[c]);
          const double sig = 1 / (1 + std::exp(-z));
          const double dxhat =
              double(dy[i]) * (silu ? sig + z * sig * (1 - sig) : 1.0) * double(gamma[c]);
          r.dx[i] = rs * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat);
        }
    }
  return r;
}

using test::max_error;

template <class T, template <index_t> class Op, index_t n = N, index_t h = H, index_t w = W,
          index_t c = C, index_t groups = G>
void check_against_reference() {
  using Sh = Shape<n, h, w, c>;
  Tensor<T, Sh> x(randn<Sh>(1, 0) * 2.0f + 0.5f), dy(randn<Sh>(1, 3)), y, dx;
  Tensor<T, Shape<c>> gamma(randn<Shape<c>>(1, 1) * 0.5f + 1.0f), beta(randn<Shape<c>>(1, 2));
  Tensor<T, Shape<c>> dgamma, dbeta;
  Tensor<T, Shape<n, groups>> mean, rstd;
  const T eps = T(1e-5);
  Op<groups>::forward(x, gamma, beta, eps, y, mean, rstd);
  Op<groups>::backward(x, gamma, beta, mean, rstd, dy, dx, dgamma, dbeta);
  const Reference r = reference(x.data(), gamma.data(), beta.data(), eps, dy.data(),
                                Op<groups>::silu, n, h * w, c, groups);

  // The host computes in double and rounds once, so float is off by about one rounding of the
  // result (and of the saved statistics it reads back in backward).
  const double tolerance = std::is_same_v<T, float> ? 2e-6 : 1e-12;
  const double errors[] = {max_error(y.data(), r.y),           max_error(mean.data(), r.mean),
                           max_error(rstd.data(), r.rstd),     max_error(dx.data(), r.dx),
                           max_error(dgamma.data(), r.dgamma), max_error(dbeta.data(), r.dbeta)};
  const std::string names[] = {"y", "mean", "rstd", "dx", "dgamma", "dbeta"};
  const std::string op = Op<groups>::silu ? "group_norm_silu " : "group_norm ";
  const std::string type = std::is_same_v<T, float> ? "float " : "double ";
  for (int k = 0; k < 6; ++k) {
    MESSAGE(op << type << n << "x" << h << "x" << w << "x" << c << " " << names[k]
               << ": largest error vs reference " << errors[k]);
    CHECK(errors[k] <= tolerance);
  }
}

template <template <index_t> class Op>
void check_gradients() {
  Tensor<double, S> x(randn<S>(2, 0) * 2.0f + 0.5f), g(randn<S>(2, 3)), y, dx;
  Tensor<double, Shape<C>> gamma(randn<Shape<C>>(2, 1) * 0.5f + 1.0f), beta(randn<Shape<C>>(2, 2));
  Tensor<double, Shape<C>> dgamma, dbeta;
  Tensor<double, Shape<N, G>> mean, rstd;
  auto loss = [&] {
    Op<G>::forward(x, gamma, beta, 1e-5, y, mean, rstd);
    return test::dot(y.data(), g.data(), S::size);
  };
  loss();
  Op<G>::backward(x, gamma, beta, mean, rstd, g, dx, dgamma, dbeta);

  const double ex =
      test::max_relative_error(dx.data(), test::numerical_gradient(loss, x.data(), S::size));
  const double eg =
      test::max_relative_error(dgamma.data(), test::numerical_gradient(loss, gamma.data(), C));
  const double eb =
      test::max_relative_error(dbeta.data(), test::numerical_gradient(loss, beta.data(), C));
  const std::string name = Op<G>::silu ? "group_norm_silu" : "group_norm";
  MESSAGE(name << " gradient check, largest relative error: dx " << ex << ", dgamma " << eg
               << ", dbeta " << eb);
  CHECK(ex < 1e-6);
  CHECK(eg < 1e-6);
  CHECK(eb < 1e-6);
}

template <template <index_t> class Op>
void check_overwrite_and_accumulate() {
  Tensor<double, S> x(randn<S>(3, 0)), dy(randn<S>(3, 1)), y, dx, dx_again;
  Tensor<double, Shape<C>> gamma(randn<Shape<C>>(3, 2) + 1.0f), beta(randn<Shape<C>>(3, 3));
  Tensor<double, Shape<N, G>> mean, rstd;
  Op<G>::forward(x, gamma, beta, 1e-5, y, mean, rstd);

  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor<double, Shape<C>> dgamma, dbeta;
  dgamma = 0.25;
  dbeta = -0.5;
  dx = nan;
  Op<G>::backward(x, gamma, beta, mean, rstd, dy, dx, dgamma, dbeta);
  const Tensor<double, Shape<C>> once_gamma = dgamma, once_beta = dbeta;
  dx_again = nan;
  Op<G>::backward(x, gamma, beta, mean, rstd, dy, dx_again, dgamma, dbeta);

  for (index_t i = 0; i < S::size; ++i) {
    REQUIRE(std::isfinite(dx[i]));
    REQUIRE(dx_again[i] == dx[i]);
  }
  for (index_t c = 0; c < C; ++c) {
    CHECK(dgamma[c] == doctest::Approx(0.25 + 2 * (once_gamma[c] - 0.25)).epsilon(1e-12));
    CHECK(dbeta[c] == doctest::Approx(-0.5 + 2 * (once_beta[c] + 0.5)).epsilon(1e-12));
  }
}

}  // namespace

TEST_CASE("group_norm: forward and backward against a double reference loop, 3x5x7x12, 4 groups") {
  check_against_reference<float, Plain>();
  check_against_reference<double, Plain>();
}

TEST_CASE("group_norm_silu: forward and backward against a double reference loop") {
  check_against_reference<float, Fused>();
  check_against_reference<double, Fused>();
}

TEST_CASE("group_norm and group_norm_silu at 4x16x16x32, where the host loops run in parallel") {
  check_against_reference<float, Plain, 4, 16, 16, 32, 8>();
  check_against_reference<double, Fused, 4, 16, 16, 32, 8>();
}

TEST_CASE("group_norm_silu with one channel per group, as the tiny models have") {
  check_against_reference<float, Fused, 4, 8, 8, 32, 32>();
}

TEST_CASE("group_norm_silu backward gives the same bits on one thread as on all") {
  // dgamma and dbeta sum over the samples, which the threads share.
  using S4 = Shape<4, 16, 16, 32>;
  const Tensor<float, S4> x(randn<S4>(5, 0)), dy(randn<S4>(5, 1));
  const Tensor<float, Shape<32>> gamma(randn<Shape<32>>(5, 2) + 1.0f), beta(randn<Shape<32>>(5, 3));
  Tensor<float, S4> y, dx_all, dx_one;
  Tensor<float, Shape<4, 8>> mean, rstd;
  Tensor<float, Shape<32>> dgamma_all, dbeta_all, dgamma_one, dbeta_one;
  ops::group_norm_forward<8, ops::NormActivation::silu>(x, gamma, beta, 1e-5f, y, mean, rstd);
  ops::group_norm_backward<8, ops::NormActivation::silu>(x, gamma, beta, mean, rstd, dy, dx_all,
                                                         dgamma_all, dbeta_all);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  ops::group_norm_backward<8, ops::NormActivation::silu>(x, gamma, beta, mean, rstd, dy, dx_one,
                                                         dgamma_one, dbeta_one);
  omp_set_num_threads(threads);
  for (index_t i = 0; i < S4::size; ++i)
    REQUIRE(dx_one[i] == dx_all[i]);
  for (index_t c = 0; c < 32; ++c) {
    REQUIRE(dgamma_one[c] == dgamma_all[c]);
    REQUIRE(dbeta_one[c] == dbeta_all[c]);
  }
}

TEST_CASE("group_norm: central-difference gradient check in double for x, gamma and beta") {
  check_gradients<Plain>();
}

TEST_CASE("group_norm_silu: central-difference gradient check in double for x, gamma and beta") {
  check_gradients<Fused>();
}

TEST_CASE("group_norm: backward overwrites dx and accumulates into dgamma and dbeta") {
  check_overwrite_and_accumulate<Plain>();
}

TEST_CASE("group_norm_silu: backward overwrites dx and accumulates into dgamma and dbeta") {
  check_overwrite_and_accumulate<Fused>();
}

TEST_CASE("group_norm: statistics stay exact in float when the mean dwarfs the spread") {
  // 1e4 + N(0, 1): a float sum of squares, or a float running sum, loses the unit variance.
  constexpr index_t n = 2, h = 16, w = 16, c = 32, groups = 8;
  using Big = Shape<n, h, w, c>;
  Tensor<float, Big> x(randn<Big>(4, 0) + 1e4f), y;
  Tensor<float, Shape<c>> gamma(randn<Shape<c>>(4, 1) * 0.5f + 1.0f), beta(randn<Shape<c>>(4, 2));
  Tensor<float, Shape<n, groups>> mean, rstd;
  ops::group_norm_forward<groups>(x, gamma, beta, 1e-6f, y, mean, rstd);
  const std::vector<float> unused(Big::size);
  const Reference r = reference(x.data(), gamma.data(), beta.data(), 1e-6, unused.data(), false, n,
                                h * w, c, groups);
  double mean_error = 0, rstd_error = 0;
  for (index_t i = 0; i < n * groups; ++i) {
    mean_error = std::max(mean_error, std::abs(mean[i] - r.mean[i]) / r.mean[i]);
    rstd_error = std::max(rstd_error, std::abs(rstd[i] - r.rstd[i]) / r.rstd[i]);
  }
  const double y_error = max_error(y.data(), r.y);
  MESSAGE("group_norm float at mean 1e4: relative error of mean "
          << mean_error << ", of rstd " << rstd_error << "; y error " << y_error);
  CHECK(mean_error <= 1e-7);
  CHECK(rstd_error <= 1e-7);
  CHECK(y_error <= 2e-6);
}

#if LDM_GROUP_NORM_AVX2
TEST_CASE("group_norm_silu: the AVX-512 SiLU passes give the AVX2 passes' bits") {
  namespace narrow = ops::detail::group_norm_avx2;
  namespace wide = ops::detail::group_norm_avx512;
  if (!narrow::available() || !__builtin_cpu_supports("avx512f")) {
    MESSAGE("skipped: this CPU lacks AVX2, FMA or AVX-512F");
    return;
  }
  constexpr index_t C = 32, pixels = 37;
  std::vector<float> x(std::size_t(pixels * C)), dy(x.size()), gamma(C), beta(C);
  std::vector<double> mu(C), inv_std(C);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = float(normal(5, 0, i) * 3 + 0.5);
    dy[i] = float(normal(5, 1, i));
  }
  for (index_t c = 0; c < C; ++c) {
    // Scales up to 40 reach the exponential's clamps at +-87 and +88 in some channels.
    gamma[std::size_t(c)] = float(normal(5, 2, std::size_t(c)) * (c % 4 == 0 ? 40 : 1));
    beta[std::size_t(c)] = float(normal(5, 3, std::size_t(c)));
    mu[std::size_t(c)] = normal(5, 4, std::size_t(c)) * 0.1;
    inv_std[std::size_t(c)] = 0.5 + 0.01 * double(c);
  }
  std::vector<float> y_narrow(x.size()), y_wide(x.size());
  narrow::silu_forward<C>(x.data(), y_narrow.data(), pixels, mu.data(), inv_std.data(),
                          gamma.data(), beta.data());
  wide::silu_forward<C>(x.data(), y_wide.data(), pixels, mu.data(), inv_std.data(), gamma.data(),
                        beta.data());
  for (std::size_t i = 0; i < x.size(); ++i)
    REQUIRE(std::memcmp(&y_narrow[i], &y_wide[i], sizeof(float)) == 0);

  std::vector<float> dz_narrow(x.size()), dz_wide(x.size());
  std::vector<double> a_narrow(C, 0.25), b_narrow(C, -0.5), a_wide = a_narrow, b_wide = b_narrow;
  narrow::silu_backward_sums<C>(x.data(), dy.data(), dz_narrow.data(), pixels, mu.data(),
                                inv_std.data(), gamma.data(), beta.data(), a_narrow.data(),
                                b_narrow.data());
  wide::silu_backward_sums<C>(x.data(), dy.data(), dz_wide.data(), pixels, mu.data(),
                              inv_std.data(), gamma.data(), beta.data(), a_wide.data(),
                              b_wide.data());
  for (std::size_t i = 0; i < x.size(); ++i)
    REQUIRE(std::memcmp(&dz_narrow[i], &dz_wide[i], sizeof(float)) == 0);
  for (index_t c = 0; c < C; ++c) {
    REQUIRE(a_narrow[std::size_t(c)] == a_wide[std::size_t(c)]);
    REQUIRE(b_narrow[std::size_t(c)] == b_wide[std::size_t(c)]);
  }
}

TEST_CASE("group_norm: the AVX-512 statistics and dx passes give the portable loops' bits") {
  namespace wide = ops::detail::group_norm_avx512;
  if (!wide::available()) {
    MESSAGE("skipped: this CPU lacks AVX-512F (or LDM_CPU_ISA asks for less)");
    return;
  }
  constexpr index_t C = 64, pixels = 29;
  std::vector<float> x(std::size_t(pixels * C)), dz(x.size()), gamma(C);
  std::vector<double> mu(C), inv_std(C), mean_dxhat(C), mean_dxhat_xhat(C);
  for (std::size_t i = 0; i < x.size(); ++i) {
    x[i] = float(normal(6, 0, i) * 0.3 + 100);  // a mean far above the spread
    dz[i] = float(normal(6, 1, i));
  }
  for (std::size_t c = 0; c < std::size_t(C); ++c) {
    gamma[c] = float(normal(6, 2, c));
    mu[c] = 100 + normal(6, 3, c) * 0.01;
    inv_std[c] = 3 + normal(6, 4, c) * 0.1;
    mean_dxhat[c] = normal(6, 5, c) * 0.1;
    mean_dxhat_xhat[c] = normal(6, 6, c) * 0.1;
  }
  // The loops of ops/group_norm/host.hpp, compiled here for the baseline x86-64.
  std::vector<double> sums(C, 0.5), squares(C, 0.25);
  std::vector<float> dx(x.size());
  for (index_t p = 0; p < pixels; ++p)
    for (index_t c = 0; c < C; ++c) {
      const std::size_t i = std::size_t(p * C + c), k = std::size_t(c);
      sums[k] += double(x[i]);
      const double d = double(x[i]) - mu[k];
      squares[k] += d * d;
      const double xhat = (double(x[i]) - mu[k]) * inv_std[k];
      const double dxhat = double(dz[i]) * double(gamma[k]);
      dx[i] = float(inv_std[k] * (dxhat - mean_dxhat[k] - xhat * mean_dxhat_xhat[k]));
    }
  std::vector<double> wide_sums(C, 0.5), wide_squares(C, 0.25);
  wide::channel_sums<C>(x.data(), pixels, wide_sums.data());
  wide::squared_deviations<C>(x.data(), pixels, mu.data(), wide_squares.data());
  for (std::size_t c = 0; c < std::size_t(C); ++c) {
    REQUIRE(wide_sums[c] == sums[c]);
    REQUIRE(wide_squares[c] == squares[c]);
  }
  // dz may be dx itself, as after the SiLU pass.
  std::vector<float> in_place = dz;
  wide::input_gradient<C>(x.data(), in_place.data(), in_place.data(), pixels, mu.data(),
                          inv_std.data(), gamma.data(), mean_dxhat.data(), mean_dxhat_xhat.data());
  for (std::size_t i = 0; i < x.size(); ++i)
    REQUIRE(std::memcmp(&in_place[i], &dx[i], sizeof(float)) == 0);
}
#endif
