#pragma once
/// @file
/// The DDIM sampler (Song et al., eq. 12) as diffusers' DDIMScheduler takes a step:
/// @verbatim
///   x0_hat = clamp(x0 read from the model's output),  eps_hat = eps read from it (unclipped)
///   x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps_hat + sigma * noise,
///   sigma = eta * sqrt((1 - abar_prev) / (1 - abar_t) (1 - abar_t / abar_prev)).
/// @endverbatim
/// As in diffusers, the previous timestep is t - T / num_inference_steps (integer division) for
/// every spacing, and before t = 0 abar_prev is 1 (set_alpha_to_one) or abar_0. With eta = 0 (the
/// default) a step is deterministic; otherwise the noise is an operand the caller chooses, as for
/// DDPM (ldm/diffusion/ddpm.hpp). The scalars are computed in double on the host; a step is one
/// fused expression, evaluated in double and rounded once (see forward_process.hpp). DDIM meets
/// the sampler contract (ldm/diffusion/sampler.hpp).

#include <algorithm>
#include <cmath>
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

/// DDIMScheduler's settings; the defaults are diffusers'.
struct DDIMConfig {
  PredictionType prediction_type = PredictionType::epsilon;  ///< How to read the model's output.
  bool clip_sample = true;         ///< Whether x0_hat is clamped to the range below.
  double clip_sample_range = 1.0;  ///< The clamp's bound (positive).
  bool set_alpha_to_one = true;    ///< abar before t = 0: 1, or else abar_0.
  TimestepSpacing timestep_spacing = TimestepSpacing::leading;  ///< Which timesteps to visit.
  int steps_offset = 0;  ///< Added to the `leading` timesteps (>= 0).
  /// In [0, 1]: scales each step's noise; 0 adds none, 1 has DDPM's variance. diffusers passes it
  /// to DDIMScheduler.step() and does not save it in the scheduler's config.
  double eta = 0;
};

/// The scalars of one step from `timestep` to `prev_timestep` (negative before t = 0).
struct DDIMStep {
  /// @{
  /// The step's timestep and the one it goes to.
  int timestep, prev_timestep;
  /// @}
  Parameterisation parameterisation;  ///< How x0 and eps are read from the model's output.
  /// @{
  /// The coefficients of the formula in ddim.hpp.
  double x0_coeff, eps_coeff, sigma;
  /// @}
};

/// The DDIM sampler: the timesteps to visit and one step at a time.
class DDIM : public TimestepSampler<DDIM, DDIMConfig> {
 public:
  /// A sampler visiting num_inference_steps timesteps of `schedule`.
  /// @throws ldm::Error when num_inference_steps is not in [1, T], or the config's
  ///         clip_sample_range (when clipping) is not positive, steps_offset is invalid or eta is
  ///         not in [0, 1]
  DDIM(Schedule schedule, const DDIMConfig& config, int num_inference_steps)
      : TimestepSampler(std::move(schedule), config),
        final_alpha_cumprod_(config.set_alpha_to_one ? 1.0 : schedule_.alphas_cumprod()[0]) {
    if (!(config.eta >= 0 && config.eta <= 1))
      fail_expected("eta", "a value in [0, 1]", config.eta);
    set_timesteps(num_inference_steps);
  }

  /// t - T / num_inference_steps, as diffusers (negative before t = 0).
  int previous_timestep(int t) const {
    return t - schedule_.num_train_timesteps() / num_inference_steps();
  }

  /// The scalars of the step at t, with the config's eta.
  /// @throws ldm::Error when t is not in [0, T)
  DDIMStep coefficients(int t) const {
    const int prev = previous_timestep(t);
    const double abar = schedule_.alpha_cumprod(t);
    const double abar_prev = prev >= 0 ? schedule_.alpha_cumprod(prev) : final_alpha_cumprod_;
    const double variance = (1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev);
    const double sigma = config_.eta * std::sqrt(variance);
    return DDIMStep{
        .timestep = t,
        .prev_timestep = prev,
        .parameterisation = parameterisation(config_.prediction_type, abar),
        .x0_coeff = std::sqrt(abar_prev),
        // Zero in exact arithmetic at abar_prev = 1 with eta = 1; rounding must not make it NaN.
        .eps_coeff = std::sqrt(std::max(0.0, 1 - abar_prev - sigma * sigma)),
        .sigma = sigma,
    };
  }

  // The (seed, offset) overload and the sampler contract's step, both calling this one.
  using TimestepSampler::step;
  /// prev_sample = x_{prev}; noise is any operand of shape S (or a floating-point number; an
  /// integer is refused, as it would be a seed missing its offset), scaled by 0 when eta is 0.
  /// prev_sample may alias sample or model_output.
  /// @throws ldm::Error when t is not in [0, T)
  template <ShapeType S, class Space, NoiseOperand Noise>
  void step(View<const float, S, Space> model_output, int t, View<const float, S, Space> sample,
            const Noise& noise, View<float, S, Space> prev_sample) const {
    const DDIMStep c = coefficients(t);
    prev_sample = c.x0_coeff * predicted_x0(c.parameterisation, sample, model_output, clip_bound_) +
                  c.eps_coeff * predicted_eps(c.parameterisation, sample, model_output) +
                  c.sigma * in_double(noise);
  }

 private:
  double final_alpha_cumprod_;
};

}  // namespace ldm::diffusion
