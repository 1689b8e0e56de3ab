#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <ldm/ldm.hpp>
#include <ldm/ops/attention.hpp>
#include <limits>
#include <string>
#include <vector>

#include "support/gradcheck.hpp"

using namespace ldm;

namespace {

// Attention written out index by index in double, softmax with the row maximum subtracted (the
// same function as without it, but finite for the large logits tested below). Returns the output
// [N, L, C] and fills the probabilities [N, Heads, L, L] and the largest logit.
template <index_t Heads, index_t N, index_t L, index_t C, class T>
std::vector<double> reference_attention(const T* q, const T* k, const T* v,
                                        std::vector<double>& probs, double& largest_logit) {
  constexpr index_t D = C / Heads;
  std::vector<double> out(N * L * C, 0.0);
  probs.assign(N * Heads * L * L, 0.0);
  largest_logit = -std::numeric_limits<double>::infinity();
  for (index_t n = 0; n < N; ++n)
    for (index_t h = 0; h < Heads; ++h)
      for (index_t i = 0; i < L; ++i) {
        std::vector<double> logits(L);
        for (index_t j = 0; j < L; ++j) {
          double dot = 0;
          for (index_t d = 0; d < D; ++d)
            dot += double(q[(n * L + i) * C + h * D + d]) * double(k[(n * L + j) * C + h * D + d]);
          logits[j] = dot / std::sqrt(double(D));
        }
        const double top = *std::max_element(logits.begin(), logits.end());
        largest_logit = std::max(largest_logit, top);
        double total = 0;
        for (double& z : logits)
          total += z = std::exp(z - top);
        for (index_t j = 0; j < L; ++j) {
          const double p = logits[j] / total;
          probs[((n * Heads + h) * L + i) * L + j] = p;
          for (index_t d = 0; d < D; ++d)
            out[(n * L + i) * C + h * D + d] += p * double(v[(n * L + j) * C + h * D + d]);
        }
      }
  return out;
}

// |actual - expected| <= tolerance * (1 + |expected|) element by element; returns the largest
// |actual - expected| / (1 + |expected|).
template <class T>
double compare(const T* actual, const std::vector<double>& expected, double tolerance,
               const char* what) {
  double worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double error = std::abs(double(actual[i]) - expected[i]) / (1 + std::abs(expected[i]));
    REQUIRE_MESSAGE(error <= tolerance,
                    what << "[" << i << "]: " << double(actual[i]) << " vs " << expected[i]);
    worst = std::max(worst, error);
  }
  return worst;
}

template <index_t Heads, class T, index_t N, index_t L, index_t C>
void check_forward(double tolerance, float q_scale = 1.0f) {
  using S = Shape<N, L, C>;
  Tensor<T, S> q, k, v, out;
  Tensor<T, Shape<N, Heads, L, L>> probs;
  q = randn<S>(7, 0) * q_scale;
  k = randn<S>(7, 1);
  v = randn<S>(7, 2);
  out = randn<S>(7, 3) * std::numeric_limits<float>::quiet_NaN();
  probs = randn<Shape<N, Heads, L, L>>(7, 4) * std::numeric_limits<float>::quiet_NaN();

  ops::attention_forward<Heads>(q, k, v, out, probs);

  std::vector<double> expected_probs;
  double largest_logit = 0;
  const auto expected = reference_attention<Heads, N, L, C>(q.data(), k.data(), v.data(),
                                                            expected_probs, largest_logit);
  const double out_error = compare(out.data(), expected, tolerance, "out");
  const double probs_error = compare(probs.data(), expected_probs, tolerance, "probs");
  MESSAGE("Heads=" << Heads << " N=" << N << " L=" << L << " C=" << C << " "
                   << (std::is_same_v<T, float> ? std::string("float") : std::string("double"))
                   << " q x" << q_scale << ": largest logit " << largest_logit
                   << ", largest error out " << out_error << ", probs " << probs_error
                   << " (tolerance " << tolerance << ")");
  if (q_scale > 1) {
    // Without the maximum subtracted, exp of such a logit overflows float to inf.
    REQUIRE(largest_logit > std::log(double(std::numeric_limits<float>::max())));
    for (index_t i = 0; i < S::size; ++i)
      REQUIRE(std::isfinite(double(out[i])));
  }
}

// Central differences of <out, g> with respect to q, k and v, against attention_backward.
template <index_t Heads, index_t N, index_t L, index_t C>
void check_gradients() {
  using S = Shape<N, L, C>;
  Tensor<double, S> q, k, v, out, g, dq, dk, dv;
  Tensor<double, Shape<N, Heads, L, L>> probs;
  q = randn<S>(11, 0);
  k = randn<S>(11, 1);
  v = randn<S>(11, 2);
  g = randn<S>(11, 3);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  dq = randn<S>(11, 4) * nan;
  dk = randn<S>(11, 5) * nan;
  dv = randn<S>(11, 6) * nan;

  auto loss = [&] {
    ops::attention_forward<Heads>(q, k, v, out, probs);
    return test::dot(out.data(), g.data(), S::size);
  };
  loss();
  ops::attention_backward(q, k, v, probs, g, dq, dk, dv);
  // max_relative_error would pass over a NaN left from the poison, so check that none is left.
  for (index_t i = 0; i < S::size; ++i)
    REQUIRE_MESSAGE((std::isfinite(dq[i]) && std::isfinite(dk[i]) && std::isfinite(dv[i])),
                    "gradient element " << i << " was not overwritten");

  const double error_q =
      test::max_relative_error(dq.data(), test::numerical_gradient(loss, q.data(), S::size));
  const double error_k =
      test::max_relative_error(dk.data(), test::numerical_gradient(loss, k.data(), S::size));
  const double error_v =
      test::max_relative_error(dv.data(), test::numerical_gradient(loss, v.data(), S::size));
  MESSAGE("Heads=" << Heads << " N=" << N << " L=" << L << " C=" << C
                   << ": largest relative gradient error dq " << error_q << ", dk " << error_k
                   << ", dv " << error_v);
  const double tolerance = 1e-7;
  CHECK(error_q <= tolerance);
  CHECK(error_k <= tolerance);
  CHECK(error_v <= tolerance);
}

}  // namespace

TEST_CASE("attention forward: against a double reference at N=2, L=7, C=6") {
  // float: inputs ~N(0,1), 6-term dot products and 7-term softmax sums, about 1e-7 relative.
  check_forward<1, float, 2, 7, 6>(2e-6);
  check_forward<2, float, 2, 7, 6>(2e-6);
  check_forward<3, float, 2, 7, 6>(2e-6);
  check_forward<1, double, 2, 7, 6>(1e-13);
  check_forward<2, double, 2, 7, 6>(1e-13);
  check_forward<3, double, 2, 7, 6>(1e-13);
}

TEST_CASE("attention forward: larger odd sizes, one and several heads") {
  check_forward<1, float, 3, 33, 20>(5e-6);
  check_forward<4, float, 3, 33, 20>(5e-6);
  check_forward<5, double, 1, 49, 15>(1e-13);
  // Enough rows (N * Heads * L * L above the executor's threshold) for the parallel softmax.
  check_forward<2, float, 2, 129, 6>(5e-6);
}

TEST_CASE("attention forward: large logits (q x 100) stay finite and correct") {
  // The logits reach a few hundred, and their rounding error (epsilon times their size) enters
  // the probabilities: about 1e-6 in float, 1e-15 in double.
  check_forward<1, float, 2, 7, 6>(2e-5, 100.0f);
  check_forward<3, float, 2, 7, 6>(2e-5, 100.0f);
  check_forward<2, double, 2, 7, 6>(1e-12, 100.0f);
}

TEST_CASE("attention backward: central differences in double, gradients overwritten") {
  check_gradients<1, 2, 5, 6>();
  check_gradients<2, 2, 7, 6>();
  check_gradients<3, 2, 7, 6>();
  // Enough rows for the parallel softmax backward.
  check_gradients<2, 1, 131, 4>();
}
