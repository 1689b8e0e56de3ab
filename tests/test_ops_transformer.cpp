// The ops under the transformer modules: attention whose keys are fewer or more than its queries
// (cross-attention), LayerNorm over the last axis and GEGLU, each against loops written out in
// double and by central differences in double, with outputs and gradients poisoned with NaN so
// that an unwritten element fails.
#include <doctest/doctest.h>

#include <cmath>
#include <ldm/ldm.hpp>
#include <ldm/ops/attention.hpp>
#include <ldm/ops/geglu.hpp>
#include <ldm/ops/layer_norm.hpp>
#include <limits>
#include <vector>

#include "support/gradcheck.hpp"

using namespace ldm;

namespace {
constexpr double poison = std::numeric_limits<double>::quiet_NaN();

// softmax(q k^T / sqrt(D)) v per head, index by index, for Lq queries over Lk keys.
template <index_t Heads, index_t N, index_t Lq, index_t Lk, index_t C, class T>
std::vector<double> reference_attention(const T* q, const T* k, const T* v) {
  constexpr index_t D = C / Heads;
  std::vector<double> out(std::size_t(N * Lq * C), 0.0);
  for (index_t n = 0; n < N; ++n)
    for (index_t h = 0; h < Heads; ++h)
      for (index_t i = 0; i < Lq; ++i) {
        std::vector<double> p(static_cast<std::size_t>(Lk));
        double top = -std::numeric_limits<double>::infinity(), total = 0;
        for (index_t j = 0; j < Lk; ++j) {
          double dot = 0;
          for (index_t d = 0; d < D; ++d)
            dot +=
                double(q[(n * Lq + i) * C + h * D + d]) * double(k[(n * Lk + j) * C + h * D + d]);
          p[std::size_t(j)] = dot / std::sqrt(double(D));
          top = std::max(top, p[std::size_t(j)]);
        }
        for (auto& z : p)
          total += z = std::exp(z - top);
        for (index_t j = 0; j < Lk; ++j)
          for (index_t d = 0; d < D; ++d)
            out[std::size_t((n * Lq + i) * C + h * D + d)] +=
                p[std::size_t(j)] / total * double(v[(n * Lk + j) * C + h * D + d]);
      }
  return out;
}

template <index_t Heads, class T, index_t N, index_t Lq, index_t Lk, index_t C>
void check_attention_forward(double tolerance) {
  Tensor<T, Shape<N, Lq, C>> q, out;
  Tensor<T, Shape<N, Lk, C>> k, v;
  Tensor<T, Shape<N, Heads, Lq, Lk>> probs;
  q = randn<Shape<N, Lq, C>>(3, 0);
  k = randn<Shape<N, Lk, C>>(3, 1);
  v = randn<Shape<N, Lk, C>>(3, 2);
  out = randn<Shape<N, Lq, C>>(3, 3) * poison;
  probs = randn<Shape<N, Heads, Lq, Lk>>(3, 4) * poison;
  ops::attention_forward<Heads>(q, k, v, out.view(), probs.view());
  const double error = test::max_error(
      out.data(), reference_attention<Heads, N, Lq, Lk, C>(q.data(), k.data(), v.data()));
  MESSAGE("Heads=" << Heads << " Lq=" << Lq << " Lk=" << Lk << ": largest error " << error);
  CHECK(error <= tolerance);
  for (index_t row = 0; row < N * Heads * Lq; ++row) {
    double total = 0;
    for (index_t j = 0; j < Lk; ++j)
      total += double(probs[row * Lk + j]);
    REQUIRE(std::abs(total - 1) <= tolerance);
  }
}

template <index_t Heads, index_t N, index_t Lq, index_t Lk, index_t C>
void check_attention_gradients() {
  Tensor<double, Shape<N, Lq, C>> q, out, g, dq;
  Tensor<double, Shape<N, Lk, C>> k, v, dk, dv;
  Tensor<double, Shape<N, Heads, Lq, Lk>> probs;
  q = randn<Shape<N, Lq, C>>(5, 0);
  k = randn<Shape<N, Lk, C>>(5, 1);
  v = randn<Shape<N, Lk, C>>(5, 2);
  g = randn<Shape<N, Lq, C>>(5, 3);
  dq = poison, dk = poison, dv = poison;
  auto loss = [&] {
    ops::attention_forward<Heads>(q, k, v, out.view(), probs.view());
    return test::dot(out.data(), g.data(), out.size);
  };
  loss();
  ops::attention_backward<Heads>(q, k, v, probs, g, dq.view(), dk.view(), dv.view());
  const double eq =
      test::max_relative_error(dq.data(), test::numerical_gradient(loss, q.data(), q.size));
  const double ek =
      test::max_relative_error(dk.data(), test::numerical_gradient(loss, k.data(), k.size));
  const double ev =
      test::max_relative_error(dv.data(), test::numerical_gradient(loss, v.data(), v.size));
  MESSAGE("Heads=" << Heads << " Lq=" << Lq << " Lk=" << Lk << ": dq " << eq << ", dk " << ek
                   << ", dv " << ev);
  CHECK(eq <= 1e-7);
  CHECK(ek <= 1e-7);
  CHECK(ev <= 1e-7);
}
}  // namespace

TEST_CASE("attention over keys of another length: forward against loops") {
  check_attention_forward<2, float, 2, 7, 3, 6>(1e-5);
  check_attention_forward<1, float, 3, 4, 9, 5>(1e-5);
  check_attention_forward<3, double, 2, 5, 11, 6>(1e-12);
  check_attention_forward<2, double, 1, 9, 1, 4>(1e-12);  // one key: the output is v
}

TEST_CASE("attention over keys of another length: central differences") {
  check_attention_gradients<2, 2, 7, 3, 6>();
  check_attention_gradients<1, 2, 4, 9, 5>();
}

namespace {
template <index_t Rows, index_t C>
std::vector<double> reference_layer_norm(const double* x, const double* gamma, const double* beta,
                                         double eps) {
  std::vector<double> y(std::size_t(Rows * C));
  for (index_t r = 0; r < Rows; ++r) {
    double mean = 0, var = 0;
    for (index_t c = 0; c < C; ++c)
      mean += x[r * C + c] / C;
    for (index_t c = 0; c < C; ++c)
      var += (x[r * C + c] - mean) * (x[r * C + c] - mean) / C;
    for (index_t c = 0; c < C; ++c)
      y[std::size_t(r * C + c)] = (x[r * C + c] - mean) / std::sqrt(var + eps) * gamma[c] + beta[c];
  }
  return y;
}
}  // namespace

TEST_CASE("layer_norm: forward against loops, in float far from zero mean, and in double") {
  using S = Shape<3, 5, 12>;
  Tensor<double, S> x, expected_input;
  Tensor<double, Shape<12>> gamma, beta;
  // Far from zero mean: a float one-pass variance (E[x^2] - E[x]^2) would be off by about 10%.
  // What remains in float is the mean's rounding, half an ulp of 100 against a spread of 0.1.
  x = randn<S>(7, 0) * 0.1 + 100.0;
  gamma = randn<Shape<12>>(7, 1) + 1.0;
  beta = randn<Shape<12>>(7, 2);
  const auto expected = reference_layer_norm<15, 12>(x.data(), gamma.data(), beta.data(), 1e-5);

  Tensor<double, S> y;
  Tensor<double, Shape<15>> mean, rstd;
  y = poison, mean = poison, rstd = poison;
  ops::layer_norm_forward(x, gamma, beta, 1e-5, y.view(), mean.view(), rstd.view());
  const double double_error = test::max_error(y.data(), expected);

  Tensor<float, S> xf, yf;
  Tensor<float, Shape<12>> gf, bf;
  Tensor<float, Shape<15>> mf, rf;
  xf = x, gf = gamma, bf = beta;
  yf = float(poison), mf = float(poison), rf = float(poison);
  ops::layer_norm_forward(xf, gf, bf, 1e-5f, yf.view(), mf.view(), rf.view());
  // The float input is x rounded to float: compare with the exact norm of that.
  Tensor<double, S> rounded;
  rounded = xf;
  const double float_error = test::max_error(
      yf.data(), reference_layer_norm<15, 12>(rounded.data(), gamma.data(), beta.data(), 1e-5));
  MESSAGE("largest error: double " << double_error << ", float " << float_error);
  CHECK(double_error <= 1e-9);
  CHECK(float_error <= 2e-4);
}

TEST_CASE("layer_norm: central differences; dx overwritten, parameter gradients added") {
  using S = Shape<2, 3, 7>;
  Tensor<double, S> x, y, g, dx;
  Tensor<double, Shape<7>> gamma, beta, dgamma, dbeta;
  Tensor<double, Shape<6>> mean, rstd;
  x = randn<S>(9, 0) * 2.0 + 0.5;
  gamma = randn<Shape<7>>(9, 1) + 1.0;
  beta = randn<Shape<7>>(9, 2);
  g = randn<S>(9, 3);
  auto loss = [&] {
    ops::layer_norm_forward(x, gamma, beta, 1e-5, y.view(), mean.view(), rstd.view());
    return test::dot(y.data(), g.data(), y.size);
  };
  loss();
  dx = poison;
  dgamma = 1.0, dbeta = -2.0;  // backward adds to what is there
  ops::layer_norm_backward(x, gamma, mean, rstd, g, dx.view(), dgamma.view(), dbeta.view());
  dgamma -= 1.0, dbeta += 2.0;
  const double ex =
      test::max_relative_error(dx.data(), test::numerical_gradient(loss, x.data(), x.size));
  const double eg = test::max_relative_error(
      dgamma.data(), test::numerical_gradient(loss, gamma.data(), gamma.size));
  const double eb = test::max_relative_error(
      dbeta.data(), test::numerical_gradient(loss, beta.data(), beta.size));
  MESSAGE("dx " << ex << ", dgamma " << eg << ", dbeta " << eb);
  CHECK(ex <= 1e-7);
  CHECK(eg <= 1e-7);
  CHECK(eb <= 1e-7);
}

TEST_CASE("geglu: hidden * gelu(gate) against loops; central differences") {
  using SP = Shape<2, 3, 10>;
  using SO = Shape<2, 3, 5>;
  Tensor<double, SP> proj, dproj;
  Tensor<double, SO> out, g;
  proj = randn<SP>(11, 0) * 2.0;
  g = randn<SO>(11, 1);
  out = poison;
  ops::geglu_forward(proj, out.view());
  std::vector<double> expected(SO::size);
  for (index_t r = 0; r < 6; ++r)
    for (index_t c = 0; c < 5; ++c) {
      const double hidden = proj[r * 10 + c], gate = proj[r * 10 + 5 + c];
      expected[std::size_t(r * 5 + c)] =
          hidden * 0.5 * gate * (1 + std::erf(gate / std::sqrt(2.0)));
    }
  const double forward_error = test::max_error(out.data(), expected);

  auto loss = [&] {
    ops::geglu_forward(proj, out.view());
    return test::dot(out.data(), g.data(), out.size);
  };
  dproj = poison;
  ops::geglu_backward(proj, g, dproj.view());
  const double backward_error = test::max_relative_error(
      dproj.data(), test::numerical_gradient(loss, proj.data(), proj.size));
  MESSAGE("forward " << forward_error << ", backward " << backward_error);
  CHECK(forward_error <= 1e-14);
  CHECK(backward_error <= 1e-8);
}
