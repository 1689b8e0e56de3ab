#pragma once
/// @file
/// The DDPM ancestral sampler (Ho et al., eq. 6 and 7) as diffusers' DDPMScheduler takes a step
/// with variance_type "fixed_small":
/// @verbatim
///   x0_hat = clamp(x0 read from the model's output)                     (clip_sample)
///   x_prev = x0_coeff * x0_hat + sample_coeff * x_t + sigma * noise,
///   x0_coeff = sqrt(abar_prev) (1 - abar_t / abar_prev) / (1 - abar_t),
///   sample_coeff = sqrt(abar_t / abar_prev) (1 - abar_prev) / (1 - abar_t),
///   sigma^2 = (1 - abar_prev) / (1 - abar_t) (1 - abar_t / abar_prev), floored at 1e-20,
/// @endverbatim
/// where abar_prev belongs to the next timestep of the schedule (1 after the last), and no noise is
/// added at t = 0. The scalars are computed in double on the host; a step is one fused expression,
/// evaluated in double and rounded once (see forward_process.hpp).
///
/// The noise is an operand the caller chooses: ldm::randn<S>(seed, offset) (what the (seed,
/// offset) overload passes) makes sampling reproducible; randn<S>(seed, offset, first) draws a
/// slice of a larger batch's stream, so a sample's noise does not depend on how the batch is cut;
/// an explicit tensor replays someone else's noise. DDPM meets the sampler contract
/// (ldm/diffusion/sampler.hpp).

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "ldm/core/error.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/diffusion/forward_process.hpp"
#include "ldm/diffusion/sampler.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/diffusion/timestep_sampler.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::diffusion {

/// DDPMScheduler's settings; the defaults are diffusers'.
struct DDPMConfig {
  PredictionType prediction_type = PredictionType::epsilon;  ///< How to read the model's output.
  bool clip_sample = true;         ///< Whether x0_hat is clamped to the range below.
  double clip_sample_range = 1.0;  ///< The clamp's bound (positive).
  TimestepSpacing timestep_spacing = TimestepSpacing::leading;  ///< Which timesteps to visit.
  int steps_offset = 0;  ///< Added to the `leading` timesteps (>= 0).
};

/// The scalars of one step from `timestep` to `prev_timestep` (-1 after the last).
struct DDPMStep {
  /// @{
  /// The step's timestep and the next one visited.
  int timestep, prev_timestep;
  /// @}
  Parameterisation parameterisation;  ///< How x0 is read from the model's output at `timestep`.
  /// @{
  /// The coefficients of the formula in ddpm.hpp.
  double x0_coeff, sample_coeff, sigma;
  /// @}
};

/// The DDPM ancestral sampler: the timesteps to visit and one step at a time.
class DDPM : public TimestepSampler<DDPM, DDPMConfig> {
 public:
  /// A sampler visiting num_inference_steps timesteps of `schedule`.
  /// @throws ldm::Error when num_inference_steps is not in [1, T], or the config's
  ///         clip_sample_range (when clipping) is not positive or steps_offset is invalid
  DDPM(Schedule schedule, const DDPMConfig& config, int num_inference_steps)
      : TimestepSampler(std::move(schedule), config) {
    set_timesteps(num_inference_steps);
  }

  /// The step after t in timesteps(), -1 after the last; t must be one of them.
  /// @throws ldm::Error when t is not one of timesteps()
  int previous_timestep(int t) const {
    const auto it = std::ranges::find(timesteps_, double(t));
    if (it == timesteps_.end())
      fail_expected(
          "timestep",
          "one of the " + std::to_string(timesteps_.size()) + " timesteps set by set_timesteps", t);
    return it + 1 == timesteps_.end() ? -1 : int(*(it + 1));
  }

  /// The scalars of the step at t.
  /// @throws ldm::Error when t is not one of timesteps()
  DDPMStep coefficients(int t) const {
    const int prev = previous_timestep(t);
    const double abar = schedule_.alpha_cumprod(t);
    const double abar_prev = prev >= 0 ? schedule_.alpha_cumprod(prev) : 1.0;
    const double alpha = abar / abar_prev, beta = 1 - alpha;
    const double variance = std::max((1 - abar_prev) / (1 - abar) * beta, 1e-20);
    return DDPMStep{
        .timestep = t,
        .prev_timestep = prev,
        .parameterisation = parameterisation(config_.prediction_type, abar),
        .x0_coeff = std::sqrt(abar_prev) * beta / (1 - abar),
        .sample_coeff = std::sqrt(alpha) * (1 - abar_prev) / (1 - abar),
        .sigma = t > 0 ? std::sqrt(variance) : 0.0,
    };
  }

  // The (seed, offset) overload and the sampler contract's step, both calling this one.
  using TimestepSampler::step;
  /// prev_sample = x_{prev}: the mean plus sigma * noise, noise being any operand of shape S (or
  /// a floating-point number; an integer is refused, as it would be a seed missing its offset).
  /// prev_sample may alias sample or model_output.
  /// @throws ldm::Error when t is not one of timesteps()
  template <ShapeType S, class Space, NoiseOperand Noise>
  void step(View<const float, S, Space> model_output, int t, View<const float, S, Space> sample,
            const Noise& noise, View<float, S, Space> prev_sample) const {
    const DDPMStep c = coefficients(t);
    prev_sample = c.x0_coeff * predicted_x0(c.parameterisation, sample, model_output, clip_bound_) +
                  c.sample_coeff * in_double(sample) + c.sigma * in_double(noise);
  }

  /// The mean of x_prev: step() without noise (pred_original_sample() gives the other
  /// deterministic part, x0_hat).
  template <ShapeType S, class Space>
  void mean(View<const float, S, Space> model_output, int t, View<const float, S, Space> sample,
            View<float, S, Space> out) const {
    step(model_output, t, sample, 0.0f, out);
  }
};

}  // namespace ldm::diffusion
