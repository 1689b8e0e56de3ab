// The Jacobi eigensolver, feature statistics merged over batches, and the Fréchet distance
// against closed forms and against an independent matrix square root (Denman-Beavers).
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <ldm/eval/frechet.hpp>
#include <ldm/ldm.hpp>
#include <limits>
#include <utility>
#include <vector>

#include "support/errors.hpp"

using namespace ldm;
using Matrix = std::vector<double>;

namespace {

Matrix random_symmetric(std::size_t n, std::uint64_t seed) {
  Matrix a(n * n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j <= i; ++j)
      a[i * n + j] = a[j * n + i] = normal(seed, 0, i * n + j);
  return a;
}

Matrix product(const Matrix& a, const Matrix& b, std::size_t n) {
  Matrix c(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t k = 0; k < n; ++k)
      for (std::size_t j = 0; j < n; ++j)
        c[i * n + j] += a[i * n + k] * b[k * n + j];
  return c;
}

double max_abs(const Matrix& a) {
  double m = 0;
  for (double v : a)
    m = std::max(m, std::abs(v));
  return m;
}

// The inverse by Gauss-Jordan elimination with partial pivoting.
Matrix inverse(Matrix a, std::size_t n) {
  Matrix inv(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    inv[i * n + i] = 1;
  for (std::size_t col = 0; col < n; ++col) {
    std::size_t pivot = col;
    for (std::size_t r = col + 1; r < n; ++r)
      if (std::abs(a[r * n + col]) > std::abs(a[pivot * n + col])) pivot = r;
    for (std::size_t j = 0; j < n; ++j) {
      std::swap(a[col * n + j], a[pivot * n + j]);
      std::swap(inv[col * n + j], inv[pivot * n + j]);
    }
    const double d = a[col * n + col];
    for (std::size_t j = 0; j < n; ++j) {
      a[col * n + j] /= d;
      inv[col * n + j] /= d;
    }
    for (std::size_t r = 0; r < n; ++r) {
      if (r == col) continue;
      const double f = a[r * n + col];
      for (std::size_t j = 0; j < n; ++j) {
        a[r * n + j] -= f * a[col * n + j];
        inv[r * n + j] -= f * inv[col * n + j];
      }
    }
  }
  return inv;
}

// tr(A^(1/2)) for A = S1 S2 by the Denman-Beavers iteration Y <- (Y + Z^-1) / 2,
// Z <- (Z + Y^-1) / 2 from Y = A, Z = I, which converges to A^(1/2) for a matrix whose
// eigenvalues are positive, as those of a product of two positive definite matrices are.
double trace_sqrt_denman_beavers(const Matrix& a, std::size_t n) {
  Matrix y = a, z(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    z[i * n + i] = 1;
  for (int k = 0; k < 50; ++k) {
    const Matrix yi = inverse(y, n), zi = inverse(z, n);
    for (std::size_t i = 0; i < n * n; ++i) {
      y[i] = 0.5 * (y[i] + zi[i]);
      z[i] = 0.5 * (z[i] + yi[i]);
    }
  }
  const Matrix square = product(y, y, n);
  double residual = 0;
  for (std::size_t i = 0; i < n * n; ++i)
    residual = std::max(residual, std::abs(square[i] - a[i]));
  REQUIRE(residual <= 1e-10 * max_abs(a));
  double trace = 0;
  for (std::size_t i = 0; i < n; ++i)
    trace += y[i * n + i];
  return trace;
}

// N feature vectors of dimension D: x = offset + mix * z, z standard normal from `seed`.
template <index_t N, index_t D>
Tensor<double, Shape<N, D>> features(std::uint64_t seed, const Matrix& mix, double offset) {
  Tensor<double, Shape<N, D>> z, x;
  z = randn<Shape<N, D>>(seed);
  for (index_t n = 0; n < N; ++n)
    for (index_t i = 0; i < D; ++i) {
      double v = offset;
      for (index_t j = 0; j < D; ++j)
        v += mix[std::size_t(i * D + j)] * z(n, j);
      x(n, i) = v;
    }
  return x;
}

}  // namespace

TEST_CASE("symmetric_eigen: A = V diag(lambda) V^T with V orthonormal") {
  for (std::size_t n : {1, 2, 5, 24}) {
    CAPTURE(n);
    const Matrix a = random_symmetric(n, 10 + n);
    const eval::SymmetricEigen e = eval::symmetric_eigen(a, n);
    Matrix rebuilt(n * n, 0.0), gram(n * n, 0.0);
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t j = 0; j < n; ++j)
        for (std::size_t k = 0; k < n; ++k) {
          rebuilt[i * n + j] += e.vectors[i * n + k] * e.values[k] * e.vectors[j * n + k];
          gram[i * n + j] += e.vectors[k * n + i] * e.vectors[k * n + j];
        }
    double error = 0, orthogonality = 0;
    for (std::size_t i = 0; i < n * n; ++i) {
      error = std::max(error, std::abs(rebuilt[i] - a[i]));
      orthogonality = std::max(orthogonality, std::abs(gram[i] - (i % (n + 1) == 0 ? 1.0 : 0.0)));
    }
    CHECK(error <= 1e-13 * max_abs(a));
    CHECK(orthogonality <= 1e-13);
  }

  // Repeated eigenvalues: 2 I + u u^T has eigenvalue 2 (n - 1 times) and 2 + |u|^2.
  const std::size_t n = 6;
  Matrix a(n * n);
  double norm2 = 0;
  for (std::size_t i = 0; i < n; ++i)
    norm2 += double(i + 1) * double(i + 1);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j)
      a[i * n + j] = double(i + 1) * double(j + 1) + (i == j ? 2.0 : 0.0);
  auto values = eval::symmetric_eigen(a, n).values;
  std::sort(values.begin(), values.end());
  for (std::size_t i = 0; i + 1 < n; ++i)
    CHECK(values[i] == doctest::Approx(2.0).epsilon(1e-13));
  CHECK(values[n - 1] == doctest::Approx(2.0 + norm2).epsilon(1e-13));
}

TEST_CASE("FeatureStatistics: batches merged as one two-pass mean and unbiased covariance") {
  // A mean a million times the spread: one-pass sums of x x^T would lose about 12 digits here.
  constexpr index_t D = 5;
  const Matrix mix = random_symmetric(D, 3);
  const auto a = features<7, D>(1, mix, 1e6);
  const auto b = features<13, D>(2, mix, 1e6);
  const auto c = features<1, D>(3, mix, 1e6);
  eval::FeatureStatistics stats(D);
  stats.add(a);
  stats.add(b);
  stats.add(c);
  REQUIRE(stats.count() == 21);

  std::vector<std::vector<double>> rows;
  auto collect = [&](const auto& t) {
    for (index_t n = 0; n < batch_of<typename std::decay_t<decltype(t)>::shape>; ++n) {
      std::vector<double> row(D);
      for (index_t d = 0; d < D; ++d)
        row[std::size_t(d)] = t(n, d);
      rows.push_back(row);
    }
  };
  collect(a), collect(b), collect(c);
  std::vector<double> mean(D, 0.0);
  for (const auto& row : rows)
    for (index_t d = 0; d < D; ++d)
      mean[std::size_t(d)] += row[std::size_t(d)] / double(rows.size());
  const Matrix covariance = stats.covariance();
  for (index_t i = 0; i < D; ++i) {
    CHECK(stats.mean()[std::size_t(i)] == doctest::Approx(mean[std::size_t(i)]).epsilon(1e-15));
    for (index_t j = 0; j < D; ++j) {
      double expected = 0;
      for (const auto& row : rows)
        expected += (row[std::size_t(i)] - mean[std::size_t(i)]) *
                    (row[std::size_t(j)] - mean[std::size_t(j)]) / double(rows.size() - 1);
      CHECK(covariance[std::size_t(i * D + j)] == doctest::Approx(expected).epsilon(1e-9));
    }
  }
}

TEST_CASE("frechet_distance: identical statistics give zero") {
  constexpr index_t D = 16;
  const auto x = features<200, D>(4, random_symmetric(D, 5), 3.0);
  eval::FeatureStatistics stats(D), moved(D);
  stats.add(x);
  const double d = eval::frechet_distance(stats, stats);
  MESSAGE("distance of a set to itself: " << d);
  // Next to the traces (about 16 * 16 here), rounding noise.
  CHECK(d <= 1e-9);

  // The clamp at zero could hide a trace term that overshoots, so the same covariance with the
  // mean moved must come to exactly the squared move.
  Tensor<double, Shape<200, D>> y;
  y = x + 0.125;
  moved.add(y);
  CHECK(eval::frechet_distance(stats, moved) == doctest::Approx(D * 0.125 * 0.125).epsilon(1e-9));
}

TEST_CASE("frechet_distance: diagonal covariances and a 1-D case against closed forms") {
  // Hadamard columns are orthogonal and sum to zero, so features mean + s_d h_d over the 8 rows
  // have exactly that mean and the diagonal covariance s_d^2 * 8 / 7.
  constexpr index_t D = 7, N = 8;
  auto hadamard = [](index_t row, index_t col) {
    return std::popcount(unsigned(row & col)) % 2 ? -1.0 : 1.0;
  };
  auto diagonal_set = [&](const double* mean, const double* spread) {
    Tensor<double, Shape<N, D>> x;
    for (index_t n = 0; n < N; ++n)
      for (index_t d = 0; d < D; ++d)
        x(n, d) = mean[d] + spread[d] * hadamard(n, d + 1);
    eval::FeatureStatistics stats(D);
    stats.add(x);
    return stats;
  };
  const double mean1[D] = {0, 1, -2, 0.5, 3, 0, 1}, spread1[D] = {1, 2, 0.5, 3, 1, 0.1, 0};
  const double mean2[D] = {1, 1, 0, -0.5, 3, 2, 0}, spread2[D] = {2, 0.5, 0.5, 1, 4, 0.3, 1};
  const auto a = diagonal_set(mean1, spread1), b = diagonal_set(mean2, spread2);
  double expected = 0;
  for (index_t d = 0; d < D; ++d) {
    const double va = spread1[d] * spread1[d] * N / (N - 1);
    const double vb = spread2[d] * spread2[d] * N / (N - 1);
    expected += (mean1[d] - mean2[d]) * (mean1[d] - mean2[d]) +
                (std::sqrt(va) - std::sqrt(vb)) * (std::sqrt(va) - std::sqrt(vb));
  }
  CHECK(eval::frechet_distance(a, b) == doctest::Approx(expected).epsilon(1e-12));
  CHECK(eval::frechet_distance(b, a) == doctest::Approx(expected).epsilon(1e-12));

  // In one dimension the distance is (m1 - m2)^2 + (sigma1 - sigma2)^2.
  Tensor<double, Shape<5, 1>> x, y;
  const double xs[5] = {1, 2, 4, 8, 16}, ys[5] = {-3, 0.5, 0.25, 7, 1};
  for (index_t n = 0; n < 5; ++n)
    x(n, 0) = xs[n], y(n, 0) = ys[n];
  eval::FeatureStatistics sx(1), sy(1);
  sx.add(x);
  sy.add(y);
  auto moments = [](const double* v) {
    double m = 0, s = 0;
    for (int i = 0; i < 5; ++i)
      m += v[i] / 5;
    for (int i = 0; i < 5; ++i)
      s += (v[i] - m) * (v[i] - m) / 4;
    return std::pair{m, std::sqrt(s)};
  };
  const auto [mx, sdx] = moments(xs);
  const auto [my, sdy] = moments(ys);
  CHECK(eval::frechet_distance(sx, sy) ==
        doctest::Approx((mx - my) * (mx - my) + (sdx - sdy) * (sdx - sdy)).epsilon(1e-13));
}

TEST_CASE("frechet_distance: non-commuting 6x6 covariances against Denman-Beavers") {
  constexpr index_t D = 6;
  eval::FeatureStatistics a(D), b(D);
  a.add(features<40, D>(6, random_symmetric(D, 7), 0.0));
  b.add(features<40, D>(8, random_symmetric(D, 9), 0.5));
  const Matrix s1 = a.covariance(), s2 = b.covariance();
  const Matrix s12 = product(s1, s2, D), s21 = product(s2, s1, D);
  double commutator = 0;
  for (std::size_t i = 0; i < s12.size(); ++i)
    commutator = std::max(commutator, std::abs(s12[i] - s21[i]));
  REQUIRE(commutator >= 0.1 * max_abs(s12));  // the case a diagonal test cannot reach

  double expected = 0;
  for (index_t i = 0; i < D; ++i) {
    const double d = a.mean()[std::size_t(i)] - b.mean()[std::size_t(i)];
    expected += d * d + s1[std::size_t(i * (D + 1))] + s2[std::size_t(i * (D + 1))];
  }
  expected -= 2 * trace_sqrt_denman_beavers(s12, D);
  const double actual = eval::frechet_distance(a, b);
  MESSAGE("distance " << actual << ", Denman-Beavers " << expected);
  CHECK(actual == doctest::Approx(expected).epsilon(1e-10));
}

TEST_CASE("frechet_distance: a common translation of both sets changes nothing") {
  constexpr index_t D = 8;
  const auto x = features<30, D>(11, random_symmetric(D, 12), 0.0);
  const auto y = features<30, D>(13, random_symmetric(D, 14), 1.0);
  eval::FeatureStatistics a(D), b(D), ta(D), tb(D);
  a.add(x);
  b.add(y);
  Tensor<double, Shape<30, D>> shifted_x, shifted_y;
  for (index_t n = 0; n < 30; ++n)
    for (index_t d = 0; d < D; ++d) {
      const double shift = 1000.0 * double(d) - 250.0;
      shifted_x(n, d) = x(n, d) + shift;
      shifted_y(n, d) = y(n, d) + shift;
    }
  ta.add(shifted_x);
  tb.add(shifted_y);
  CHECK(eval::frechet_distance(ta, tb) ==
        doctest::Approx(eval::frechet_distance(a, b)).epsilon(1e-9));
}

TEST_CASE("FeatureStatistics and frechet_distance: mismatched inputs are ldm::Errors") {
  eval::FeatureStatistics a(3), b(4), one(3);
  Tensor<float, Shape<2, 3>> x;
  Tensor<float, Shape<1, 3>> single;
  a.add(x);
  one.add(single);
  test::check_message(test::error_of([&] { b.add(x); }), {"feature dimension", "4", "found 3"});
  test::check_message(test::error_of([&] { (void)eval::frechet_distance(a, b); }),
                      {"feature dimensions", "found 4"});
  test::check_message(test::error_of([&] { (void)eval::frechet_distance(a, one); }),
                      {"2 or more", "found 1"});
}

TEST_CASE("FeatureStatistics refuses a feature that is not finite, naming it") {
  eval::FeatureStatistics stats(3);
  Tensor<float, Shape<2, 3>> x;
  x(1, 2) = std::numeric_limits<float>::quiet_NaN();
  test::check_message(test::error_of([&] { stats.add(x); }),
                      {"FeatureStatistics::add", "feature 2 of vector 1 is NaN"});
}
