#pragma once
/// @file
/// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_ with its defaults
/// (norm_type 2, error_if_nonfinite false), over flat gradient buffers in any space.

#include <cmath>
#include <span>

#include "ldm/core/macros.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::train {

namespace detail {

// Squares in double: no overflow for any float gradient.
struct SquareInDouble {
  const float* g;
  LDM_HD double operator()(index_t i) const {
    const double x = g[i];
    return x * x;
  }
};
struct SumDoubles {
  LDM_HD double operator()(double a, double b) const { return a + b; }
};
struct ScaleBy {
  float* g;
  float scale;
  LDM_HD void operator()(index_t i) const { g[i] *= scale; }
};

}  // namespace detail

/// clip_grad_norm(grads, max_norm) (below) over several gradient buffers as one (torch's
/// clip_grad_norm_ over several parameters' gradients): the norm is that of all of them together,
/// and every buffer is scaled by the same factor. The squares are summed buffer by buffer, in
/// order.
template <class Space = host>
double clip_grad_norm(std::span<const std::span<float>> buffers, double max_norm) {
  double sum_sq = 0;
  for (const std::span<float> grads : buffers)
    sum_sq += expr::executor<Space>::reduce(
        index_t(grads.size()), 0.0, detail::SquareInDouble{grads.data()}, detail::SumDoubles{});
  const double norm = std::sqrt(sum_sq);
  const double clip_coef = max_norm / (norm + 1e-6);
  if (clip_coef < 1 || std::isnan(clip_coef))
    for (const std::span<float> grads : buffers)
      expr::executor<Space>::for_each(index_t(grads.size()),
                                      detail::ScaleBy{grads.data(), float(clip_coef)});
  return norm;
}

/// Scales grads (in Space) by max_norm / (norm + 1e-6) when that is below 1 and returns the norm
/// before scaling. A NaN norm makes every gradient NaN and an infinite one zeroes the finite
/// gradients, which is what torch does when it is not asked to raise: the caller sees the norm and
/// decides. The sum of squares comes from the executor's deterministic reduction (fixed blocks on
/// the host, CUB on the device), so a space gives the same norm on every run.
template <class Space = host>
double clip_grad_norm(std::span<float> grads, double max_norm) {
  const std::span<float> one[] = {grads};
  return clip_grad_norm<Space>(std::span<const std::span<float>>(one), max_norm);
}

}  // namespace ldm::train
