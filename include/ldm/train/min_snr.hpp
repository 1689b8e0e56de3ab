#pragma once
/// @file
/// Min-SNR-gamma loss weighting (Hang et al., "Efficient Diffusion Training via Min-SNR Weighting
/// Strategy"), as diffusers' train_text_to_image.py with --snr_gamma: sample n's squared error is
/// weighted by
/// @verbatim
///   snr = abar_t / (1 - abar_t)                        (diffusers' compute_snr)
///   w   = min(snr, gamma) / snr        (epsilon prediction)
///   w   = min(snr, gamma) / (snr + 1)  (v_prediction)
///   loss = mean over n of w_n * mean over sample n's elements of (prediction - target)^2
/// @endverbatim
/// The weights are formed in double from the schedule's double alphas_cumprod; diffusers forms
/// them in float32, which agrees to about 1e-6 relative.

#include <algorithm>
#include <cstdint>

#include "ldm/core/copy.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/diffusion/forward_process.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/expr/assign.hpp"

namespace ldm::train {

/// One sample's Min-SNR-gamma weight at noise level `alpha_cumprod` (abar_t, in (0, 1)).
/// @param gamma the clamp of the signal-to-noise ratio (> 0)
inline double min_snr_weight(double alpha_cumprod, diffusion::PredictionType type, double gamma) {
  const double snr = alpha_cumprod / (1 - alpha_cumprod);
  const double clamped = std::min(snr, gamma);
  return type == diffusion::PredictionType::epsilon ? clamped / snr : clamped / (snr + 1);
}

/// The Min-SNR-gamma weight of each sample's timestep, in the space of the timesteps (the
/// schedule lives on the host, so the N timesteps are read there).
/// @throws ldm::Error when a timestep is not in [0, T)
template <index_t N, class Space>
Tensor<double, Shape<N>, Space> min_snr_weights(
    const diffusion::Schedule& schedule, diffusion::PredictionType type, double gamma,
    View<const std::int32_t, Shape<N>, Space> timesteps) {
  const Tensor<std::int32_t, Shape<N>> t = to_host(timesteps);
  Tensor<double, Shape<N>> weights;
  for (index_t n = 0; n < N; ++n)
    weights[n] = min_snr_weight(schedule.alpha_cumprod(t[n]), type, gamma);
  Tensor<double, Shape<N>, Space> out;
  copy(View<const double, Shape<N>>(weights), out.view());
  return out;
}

/// mean over samples n of weights[n] * (sample n's mean squared error): the weighted loss.
template <class T, ShapeType S, class Space>
double weighted_mse_forward(View<const T, S, Space> prediction, View<const T, S, Space> target,
                            View<const double, Shape<batch_of<S>>, Space> weights) {
  using diffusion::in_double;
  return ldm::mean(diffusion::per_sample<S>(weights) *
                   square(in_double(prediction) - in_double(target)));
}

/// The gradient of weighted_mse_forward() with respect to the prediction, times `upstream`.
template <class T, ShapeType S, class Space>
void weighted_mse_backward(View<const T, S, Space> prediction, View<const T, S, Space> target,
                           View<const double, Shape<batch_of<S>>, Space> weights, double upstream,
                           View<T, S, Space> d_prediction) {
  using diffusion::in_double;
  d_prediction = diffusion::per_sample<S>(weights) * (in_double(prediction) - in_double(target)) *
                 (2 * upstream / double(S::size));
}

}  // namespace ldm::train
