#pragma once
// The Fréchet distance between two Gaussians fitted to feature vectors: FID's formula (Heusel et
// al. 2017), here over the features of ldm's own Fashion-MNIST classifier instead of Inception's,
//   d^2 = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).
//
// S1 S2 is not symmetric, but it is similar to the symmetric positive semi-definite
// M = S1^(1/2) S2 S1^(1/2), so tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(M)). Both square roots come
// from a cyclic Jacobi eigensolver, which is accurate for the small eigenvalues that dominate the
// error of a general (Schur-based) matrix square root, and needs no LAPACK.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/nn/finite.hpp"
#include "ldm/ops/gemm.hpp"

namespace ldm::eval {

// Eigenvalues and eigenvectors of a symmetric matrix: A = V diag(values) V^T, with eigenvector j
// the column j of the row-major n x n `vectors`.
struct SymmetricEigen {
  std::vector<double> values;
  std::vector<double> vectors;
};

// Cyclic Jacobi: sweeps over every off-diagonal pair (p, q), each rotation zeroing a_pq, until
// the off-diagonal part is negligible next to the whole matrix (convergence is quadratic once
// the rotations are small, so a handful of sweeps suffice). `a` is row-major n x n and only read
// as symmetric: its upper triangle is mirrored first.
inline SymmetricEigen symmetric_eigen(std::vector<double> a, std::size_t n) {
  if (a.size() != n * n)
    fail_expected("ldm::eval::symmetric_eigen: matrix elements", n * n, a.size());
  for (std::size_t p = 0; p < n; ++p)
    for (std::size_t q = p + 1; q < n; ++q)
      a[q * n + p] = a[p * n + q];
  std::vector<double> v(n * n, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    v[i * n + i] = 1;

  auto squares = [&](bool off_diagonal_only) {
    double total = 0;
    for (std::size_t p = 0; p < n; ++p)
      for (std::size_t q = 0; q < n; ++q)
        if (!off_diagonal_only || p != q) total += a[p * n + q] * a[p * n + q];
    return total;
  };
  const double whole = squares(false);
  constexpr double kTolerance = 1e-30;  // on squares: an off-diagonal norm of 1e-15 of the whole
  constexpr int kMaxSweeps = 100;
  for (int sweep = 0; sweep < kMaxSweeps && squares(true) > kTolerance * whole; ++sweep) {
    for (std::size_t p = 0; p + 1 < n; ++p)
      for (std::size_t q = p + 1; q < n; ++q) {
        const double apq = a[p * n + q];
        if (apq == 0) continue;
        // The rotation angle's tangent t solves t^2 + 2 theta t - 1 = 0; the root of smaller
        // magnitude keeps the rotation below 45 degrees, which is what makes the sweeps converge.
        const double theta = (a[q * n + q] - a[p * n + p]) / (2 * apq);
        const double t = std::copysign(1.0, theta) / (std::abs(theta) + std::hypot(theta, 1.0));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (std::size_t k = 0; k < n; ++k) {  // A J
          const double kp = a[k * n + p], kq = a[k * n + q];
          a[k * n + p] = c * kp - s * kq;
          a[k * n + q] = s * kp + c * kq;
        }
        for (std::size_t k = 0; k < n; ++k) {  // J^T (A J)
          const double pk = a[p * n + k], qk = a[q * n + k];
          a[p * n + k] = c * pk - s * qk;
          a[q * n + k] = s * pk + c * qk;
        }
        // Exactly zero, as the rotation was chosen to make it, rather than rounding noise.
        a[p * n + q] = a[q * n + p] = 0;
        for (std::size_t k = 0; k < n; ++k) {  // V J
          const double kp = v[k * n + p], kq = v[k * n + q];
          v[k * n + p] = c * kp - s * kq;
          v[k * n + q] = s * kp + c * kq;
        }
      }
  }
  SymmetricEigen result{std::vector<double>(n), std::move(v)};
  for (std::size_t i = 0; i < n; ++i)
    result.values[i] = a[i * n + i];
  return result;
}

// The mean and covariance of D-dimensional feature vectors, added a batch at a time. Each batch
// is centred on its own mean and merged into the running co-moment matrix with the pairwise
// update of Chan, Golub and LeVeque, all in double: summing raw x x^T instead would subtract two
// large, nearly equal sums where the features' mean is large beside their spread.
class FeatureStatistics {
 public:
  explicit FeatureStatistics(std::size_t dim)
      : dim_(dim), mean_(dim, 0.0), comoment_(dim * dim, 0.0) {}

  template <class T, index_t N, index_t D>
  void add(View<const T, Shape<N, D>> features) {
    if (std::size_t(D) != dim_)
      fail_expected("ldm::eval::FeatureStatistics::add: feature dimension", dim_, D);
    std::vector<double> centred(std::size_t(N * D));
    std::vector<double> batch_mean(dim_, 0.0);
    for (index_t n = 0; n < N; ++n)
      for (index_t d = 0; d < D; ++d) {
        // One NaN would make every statistic, and the distance, NaN.
        if (!std::isfinite(double(features(n, d))))
          fail("ldm::eval::FeatureStatistics::add: feature ", d, " of vector ", n, " is ",
               nn::nonfinite_text(double(features(n, d))),
               "; statistics take finite features only");
        batch_mean[d] += double(features(n, d));
      }
    for (double& m : batch_mean)
      m /= double(N);
    for (index_t n = 0; n < N; ++n)
      for (index_t d = 0; d < D; ++d)
        centred[n * D + d] = double(features(n, d)) - batch_mean[d];

    const double before = double(count_), total = before + double(N);
    // The batch's own co-moment, then the correction for the distance between the two means.
    ops::gemm(host{}, ops::Trans::yes, ops::Trans::no, int(D), int(D), int(N), 1.0, centred.data(),
              centred.data(), 1.0, comoment_.data());
    const double weight = before * double(N) / total;
    for (std::size_t i = 0; i < dim_; ++i) {
      const double di = batch_mean[i] - mean_[i];
      for (std::size_t j = 0; j < dim_; ++j)
        comoment_[i * dim_ + j] += weight * di * (batch_mean[j] - mean_[j]);
    }
    for (std::size_t i = 0; i < dim_; ++i)
      mean_[i] += (batch_mean[i] - mean_[i]) * double(N) / total;
    count_ += std::size_t(N);
  }

  std::size_t dim() const { return dim_; }
  std::size_t count() const { return count_; }
  const std::vector<double>& mean() const { return mean_; }

  // Row-major D x D, with the unbiased divisor n - 1 (numpy.cov's default, which pytorch-fid
  // uses), so it needs two vectors at least.
  std::vector<double> covariance() const {
    if (count_ < 2)
      fail_expected("ldm::eval::FeatureStatistics: feature vectors for a covariance", "2 or more",
                    count_);
    std::vector<double> out(comoment_);
    for (double& c : out)
      c /= double(count_ - 1);
    return out;
  }

 private:
  std::size_t dim_;
  std::size_t count_ = 0;
  std::vector<double> mean_;
  std::vector<double> comoment_;  // sum over vectors of (x - mean)(x - mean)^T
};

namespace detail {

// C = A B for row-major n x n matrices.
inline std::vector<double> multiply(const std::vector<double>& a, const std::vector<double>& b,
                                    std::size_t n) {
  std::vector<double> c(n * n);
  ops::gemm(host{}, ops::Trans::no, ops::Trans::no, int(n), int(n), int(n), 1.0, a.data(), b.data(),
            0.0, c.data());
  return c;
}

// The square root of a symmetric positive semi-definite matrix; eigenvalues that rounding left
// slightly negative count as zero.
inline std::vector<double> symmetric_sqrt(const std::vector<double>& a, std::size_t n) {
  const SymmetricEigen e = symmetric_eigen(a, n);
  std::vector<double> scaled(e.vectors);  // V diag(sqrt(lambda))
  for (std::size_t j = 0; j < n; ++j) {
    const double root = std::sqrt(std::max(e.values[j], 0.0));
    for (std::size_t i = 0; i < n; ++i)
      scaled[i * n + j] *= root;
  }
  std::vector<double> out(n * n);
  ops::gemm(host{}, ops::Trans::no, ops::Trans::yes, int(n), int(n), int(n), 1.0, scaled.data(),
            e.vectors.data(), 0.0, out.data());
  return out;
}

}  // namespace detail

// The squared Fréchet distance between the Gaussians N(mean, covariance) of two sets of
// features, as pytorch-fid's calculate_frechet_distance defines it (its value is what papers
// report as FID). Rounding can take an exact zero slightly below it; the result is clamped to
// 0, which the true value never falls below.
inline double frechet_distance(const FeatureStatistics& a, const FeatureStatistics& b) {
  if (a.dim() != b.dim())
    fail_expected("ldm::eval::frechet_distance: feature dimensions",
                  "equal ones (" + std::to_string(a.dim()) + ")", b.dim());
  const std::size_t n = a.dim();
  const std::vector<double> s1 = a.covariance(), s2 = b.covariance();
  double mean_term = 0, traces = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = a.mean()[i] - b.mean()[i];
    mean_term += d * d;
    traces += s1[i * n + i] + s2[i * n + i];
  }
  const std::vector<double> root1 = detail::symmetric_sqrt(s1, n);
  std::vector<double> m = detail::multiply(detail::multiply(root1, s2, n), root1, n);
  const SymmetricEigen e = symmetric_eigen(std::move(m), n);
  double trace_sqrt = 0;
  for (double lambda : e.values)
    trace_sqrt += std::sqrt(std::max(lambda, 0.0));
  return std::max(mean_term + traces - 2 * trace_sqrt, 0.0);
}

}  // namespace ldm::eval
