#pragma once
// Training losses with their gradients: MSE (the diffusion objective), L1 (autoencoder
// reconstruction), the KL term of the autoencoder's posterior and softmax cross-entropy (the
// evaluation classifier), as PyTorch and diffusers define them.
//
// Forward returns the loss as a double (full reductions accumulate in double in a fixed order, so
// the value does not depend on the thread count; for float data it is rounded to float once).
// Backward overwrites the gradient with d loss / d input times `upstream`, the gradient of the
// final objective with respect to this loss (its weight in a sum of terms, a loss scale).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "ldm/core/error.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"
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
}  // namespace detail

// mean((pred - target)^2) over every element: F.mse_loss with reduction='mean'.
template <class T, ShapeType S>
double mse_forward(View<const T, S> pred, View<const T, S> target) {
  return double(ldm::mean(square(pred - target)));
}

template <class T, ShapeType S>
void mse_backward(View<const T, S> pred, View<const T, S> target, double upstream,
                  View<T, S> dpred) {
  dpred = (pred - target) * (2 * upstream / double(S::size));
}

// mean(|pred - target|) over every element: F.l1_loss with reduction='mean'.
template <class T, ShapeType S>
double l1_forward(View<const T, S> pred, View<const T, S> target) {
  return double(ldm::mean(abs(pred - target)));
}

template <class T, ShapeType S>
void l1_backward(View<const T, S> pred, View<const T, S> target, double upstream,
                 View<T, S> dpred) {
  dpred = expr::make_unary(pred - target, detail::signum{}) * (upstream / double(S::size));
}

// KL(N(mean, exp(logvar)) || N(0, 1)) as diffusers' DiagonalGaussianDistribution.kl().mean():
// 0.5 * sum(mean^2 + exp(logvar) - 1 - logvar) over each sample (every axis but the batch),
// averaged over the batch. logvar arrives clamped to [-30, 20] by the encoder.
template <class T, ShapeType S>
double kl_forward(View<const T, S> mean, View<const T, S> logvar) {
  const double total = double(ldm::sum(square(mean) + exp(logvar) - 1.0 - logvar));
  return 0.5 * total / double(batch_of<S>);
}

template <class T, ShapeType S>
void kl_backward(View<const T, S> mean, View<const T, S> logvar, double upstream, View<T, S> dmean,
                 View<T, S> dlogvar) {
  const double per_sample = upstream / double(batch_of<S>);
  dmean = mean * per_sample;
  dlogvar = (exp(logvar) - 1.0) * (0.5 * per_sample);
}

namespace detail {

// Labels come from data files, so one outside [0, K) is bad input rather than a broken invariant;
// unchecked, it would index past the row.
template <index_t N, index_t K>
void require_labels(View<const std::int32_t, Shape<N>> labels) {
  for (index_t n = 0; n < N; ++n)
    if (labels[n] < 0 || labels[n] >= K)
      fail_expected("ldm::ops::cross_entropy: label " + std::to_string(n),
                    "a class in [0, " + std::to_string(K) + ")", labels[n]);
}

// log sum_k exp(row[k]) with the row's maximum taken out first, so that no exp overflows and the
// largest term is exactly 1.
// Both sides call it: the CUDA ops use it per row on the device.
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

}  // namespace detail

// mean over the batch of -log softmax(logits[n])[labels[n]]: F.cross_entropy with class-index
// targets and reduction='mean'. Rows are few and short (a batch of class scores), so one thread
// in double gives a value that depends on nothing but the data.
template <class T, index_t N, index_t K>
double cross_entropy_forward(View<const T, Shape<N, K>> logits,
                             View<const std::int32_t, Shape<N>> labels) {
  detail::require_labels<N, K>(labels);
  double total = 0;
  for (index_t n = 0; n < N; ++n) {
    const T* row = logits.data() + n * K;
    total += detail::log_sum_exp<T, K>(row) - double(row[labels[n]]);
  }
  return total / double(N);
}

// dlogits = upstream * (softmax(logits) - onehot(labels)) / N, overwritten.
template <class T, index_t N, index_t K>
void cross_entropy_backward(View<const T, Shape<N, K>> logits,
                            View<const std::int32_t, Shape<N>> labels, double upstream,
                            View<T, Shape<N, K>> dlogits) {
  detail::require_labels<N, K>(labels);
  const double scale = upstream / double(N);
  for (index_t n = 0; n < N; ++n) {
    const T* row = logits.data() + n * K;
    T* grad = dlogits.data() + n * K;
    const double log_total = detail::log_sum_exp<T, K>(row);
    for (index_t k = 0; k < K; ++k) {
      const double target = k == labels[n] ? 1.0 : 0.0;
      grad[k] = T(scale * (std::exp(double(row[k]) - log_total) - target));
    }
  }
}

}  // namespace ldm::ops
