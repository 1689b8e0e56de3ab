#pragma once
// Training losses with their gradients: MSE (the diffusion objective), L1 (autoencoder
// reconstruction) and the KL term of the autoencoder's posterior, as PyTorch and diffusers define
// them.
//
// Forward returns the loss as a double (full reductions accumulate in double in a fixed order, so
// the value does not depend on the thread count; for float data it is rounded to float once).
// Backward overwrites the gradient with d loss / d input times `upstream`, the gradient of the
// final objective with respect to this loss (its weight in a sum of terms, a loss scale).

#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"
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

}  // namespace ldm::ops
