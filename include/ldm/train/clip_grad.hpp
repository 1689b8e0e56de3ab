#pragma once
// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_ with its defaults
// (norm_type 2, error_if_nonfinite false), over one flat gradient buffer.

#include <cmath>
#include <span>

#include "ldm/core/macros.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::train {

// Scales grads by max_norm / (norm + 1e-6) when that is below 1 and returns the norm before
// scaling. A NaN norm makes every gradient NaN and an infinite one zeroes the finite gradients,
// which is what torch does when it is not asked to raise: the caller sees the norm and decides.
inline double clip_grad_norm(std::span<float> grads, double max_norm) {
  float* g = grads.data();
  // Squares summed in double by the executor's fixed blocks: no overflow for any float gradient,
  // and the same norm whatever the thread count.
  const double sum_sq = expr::executor<host>::reduce(
      index_t(grads.size()), 0.0,
      [g](index_t i) {
        const double x = g[i];
        return x * x;
      },
      [](double a, double b) { return a + b; });
  const double norm = std::sqrt(sum_sq);
  const double clip_coef = max_norm / (norm + 1e-6);
  if (clip_coef < 1 || std::isnan(clip_coef)) {
    const float scale = float(clip_coef);
    expr::executor<host>::for_each(index_t(grads.size()), [=](index_t i) { g[i] *= scale; });
  }
  return norm;
}

}  // namespace ldm::train
