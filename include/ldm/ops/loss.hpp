#pragma once
// Training losses with their gradients, on any space: MSE (the diffusion objective), L1
// (autoencoder reconstruction), the KL term of the autoencoder's posterior and softmax
// cross-entropy (the evaluation classifier), as PyTorch and diffusers define them.
//
// Forward returns the loss to the host as a double: every term is formed in double from the
// stored values and the terms are summed in double in an order fixed by the executor, so the
// value does not depend on the thread count and repeats run to run. Backward overwrites the
// gradient with d loss / d input times `upstream`, the gradient of the final objective with
// respect to this loss (its weight in a sum of terms, a loss scale).

#include <cstdint>
#include <string>

#include "ldm/core/copy.hpp"
#include "ldm/core/error.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/kernel.hpp"
#include "ldm/expr/math.hpp"
#include "ldm/expr/reduce.hpp"

namespace ldm::ops {

namespace detail {

// torch.sign: zero at zero, so an exact match pulls nowhere, and NaN stays NaN so that a broken
// prediction shows in its gradient instead of vanishing.
struct signum {
  template <class V>
  LDM_HD V operator()(V x) const {
    return x > V(0) ? V(1) : x < V(0) ? V(-1) : x;
  }
};

// The sum over i < n of term(i), in double.
template <class Space, class Term>
double sum_of_terms(index_t n, const Term& term) {
  return expr::executor<Space>::reduce(n, 0.0, term, expr::CombineKernel<expr::reducer::sum>{});
}

template <class T>
struct SquaredError {
  const T* pred;
  const T* target;
  LDM_HD double operator()(index_t i) const {
    const double d = double(pred[i]) - double(target[i]);
    return d * d;
  }
};

template <class T>
struct AbsoluteError {
  const T* pred;
  const T* target;
  LDM_HD double operator()(index_t i) const {
    return math::abs(double(pred[i]) - double(target[i]));
  }
};

template <class T>
struct KlTerm {
  const T* mean;
  const T* logvar;
  LDM_HD double operator()(index_t i) const {
    const double m = double(mean[i]), lv = double(logvar[i]);
    return m * m + math::exp(lv) - 1 - lv;
  }
};

// Labels come from data files, so one outside [0, K) is bad input rather than a broken invariant;
// unchecked, it would index past the row. They are few: checked on the host.
template <index_t N, index_t K, class Space>
void require_labels(View<const std::int32_t, Shape<N>, Space> labels) {
  const Tensor<std::int32_t, Shape<N>> host_labels = to_host(labels);
  for (index_t n = 0; n < N; ++n)
    if (host_labels[n] < 0 || host_labels[n] >= K)
      fail_expected("ldm::ops::cross_entropy: label " + std::to_string(n),
                    "a class in [0, " + std::to_string(K) + ")", host_labels[n]);
}

// log sum_k exp(row[k]) with the row's maximum taken out first, so that no exp overflows and the
// largest term is exactly 1.
template <class T, index_t K>
LDM_HD double log_sum_exp(const T* row) {
  double max = double(row[0]);
  for (index_t k = 1; k < K; ++k)
    max = math::max(max, double(row[k]));
  double total = 0;
  for (index_t k = 0; k < K; ++k)
    total += math::exp(double(row[k]) - max);
  return max + math::log(total);
}

// -log softmax(row n)[label n], one work item per row.
template <class T, index_t K>
struct CrossEntropyRow {
  const T* logits;
  const std::int32_t* labels;
  double* out;
  LDM_HD void operator()(index_t n) const {
    const T* row = logits + n * K;
    out[n] = log_sum_exp<T, K>(row) - double(row[labels[n]]);
  }
};

// scale * (softmax - onehot) at one element; rows are short, so each element computes its row's
// normaliser again rather than synchronise with the others.
template <class T, index_t K>
struct CrossEntropyGrad {
  const T* logits;
  const std::int32_t* labels;
  double scale;
  T* grad;
  LDM_HD void operator()(index_t i) const {
    const index_t n = i / K, k = i % K;
    const double log_total = log_sum_exp<T, K>(logits + n * K);
    const double target = k == labels[n] ? 1.0 : 0.0;
    grad[i] = T(scale * (math::exp(double(logits[i]) - log_total) - target));
  }
};

}  // namespace detail

// mean((pred - target)^2) over every element: F.mse_loss with reduction='mean'.
template <class T, ShapeType S, class Space>
double mse_forward(View<const T, S, Space> pred, View<const T, S, Space> target) {
  return detail::sum_of_terms<Space>(S::size, detail::SquaredError<T>{pred.data(), target.data()}) /
         double(S::size);
}

template <class T, ShapeType S, class Space>
void mse_backward(View<const T, S, Space> pred, View<const T, S, Space> target, double upstream,
                  View<T, S, Space> dpred) {
  dpred = (pred - target) * (2 * upstream / double(S::size));
}

// mean(|pred - target|) over every element: F.l1_loss with reduction='mean'.
template <class T, ShapeType S, class Space>
double l1_forward(View<const T, S, Space> pred, View<const T, S, Space> target) {
  return detail::sum_of_terms<Space>(S::size,
                                     detail::AbsoluteError<T>{pred.data(), target.data()}) /
         double(S::size);
}

template <class T, ShapeType S, class Space>
void l1_backward(View<const T, S, Space> pred, View<const T, S, Space> target, double upstream,
                 View<T, S, Space> dpred) {
  dpred = expr::make_unary(pred - target, detail::signum{}) * (upstream / double(S::size));
}

// KL(N(mean, exp(logvar)) || N(0, 1)) as diffusers' DiagonalGaussianDistribution.kl().mean():
// 0.5 * sum(mean^2 + exp(logvar) - 1 - logvar) over each sample (every axis but the batch),
// averaged over the batch. logvar arrives clamped to [-30, 20] by the encoder.
template <class T, ShapeType S, class Space>
double kl_forward(View<const T, S, Space> mean, View<const T, S, Space> logvar) {
  const double total =
      detail::sum_of_terms<Space>(S::size, detail::KlTerm<T>{mean.data(), logvar.data()});
  return 0.5 * total / double(batch_of<S>);
}

template <class T, ShapeType S, class Space>
void kl_backward(View<const T, S, Space> mean, View<const T, S, Space> logvar, double upstream,
                 View<T, S, Space> dmean, View<T, S, Space> dlogvar) {
  const double per_sample = upstream / double(batch_of<S>);
  dmean = mean * per_sample;
  dlogvar = (exp(logvar) - 1.0) * (0.5 * per_sample);
}

// mean over the batch of -log softmax(logits[n])[labels[n]]: F.cross_entropy with class-index
// targets and reduction='mean'. The N row losses are added on the host in row order, so the value
// depends on nothing but the data.
template <class T, index_t N, index_t K, class Space>
double cross_entropy_forward(View<const T, Shape<N, K>, Space> logits,
                             View<const std::int32_t, Shape<N>, Space> labels) {
  detail::require_labels<N, K>(labels);
  Tensor<double, Shape<N>, Space> rows;
  expr::executor<Space>::for_each(
      N, detail::CrossEntropyRow<T, K>{logits.data(), labels.data(), rows.data()});
  const Tensor<double, Shape<N>> host_rows = to_host(View<const double, Shape<N>, Space>(rows));
  double total = 0;
  for (index_t n = 0; n < N; ++n)
    total += host_rows[n];
  return total / double(N);
}

// dlogits = upstream * (softmax(logits) - onehot(labels)) / N, overwritten.
template <class T, index_t N, index_t K, class Space>
void cross_entropy_backward(View<const T, Shape<N, K>, Space> logits,
                            View<const std::int32_t, Shape<N>, Space> labels, double upstream,
                            View<T, Shape<N, K>, Space> dlogits) {
  detail::require_labels<N, K>(labels);
  expr::executor<Space>::for_each(
      N * K, detail::CrossEntropyGrad<T, K>{logits.data(), labels.data(), upstream / double(N),
                                            dlogits.data()});
}

}  // namespace ldm::ops
