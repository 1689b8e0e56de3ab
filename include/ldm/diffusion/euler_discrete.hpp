#pragma once
/// @file
/// The Euler sampler (Karras et al. 2022, Algorithm 2) as diffusers' EulerDiscreteScheduler takes
/// a step, in the sigma parameterisation of ldm/diffusion/sigma_steps.hpp:
/// @verbatim
///   sigma_hat = sigma_i (1 + gamma),  x_hat = x + s_noise sqrt(sigma_hat^2 - sigma_i^2) noise
///   x0_hat = x0 read from the model's output,   d = (x_hat - x0_hat) / sigma_hat
///   x_next = x_hat + (sigma_{i+1} - sigma_hat) d
/// @endverbatim
/// one step of the probability-flow ODE dx/dsigma = (x - x0) / sigma. Without churn (s_churn 0,
/// the default) gamma is 0 and the step is deterministic and never reads its noise operand. With
/// churn, gamma = min(s_churn / n, sqrt(2) - 1) at the steps whose sigma is in [s_tmin, s_tmax],
/// and as in diffusers the noise is added after the model has seen x, x0 is read at sigma_hat for
/// epsilon and at sigma_i for v_prediction. Only interpolation_type "linear" and timestep_type
/// "discrete" are implemented. A step is one fused expression, evaluated in double and rounded
/// once; it meets the sampler contract (ldm/diffusion/sampler.hpp).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <utility>

#include "ldm/core/error.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/diffusion/forward_process.hpp"
#include "ldm/diffusion/sampler.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/diffusion/sigma_sampler.hpp"
#include "ldm/diffusion/sigma_steps.hpp"
#include "ldm/diffusion/sigmas.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::diffusion {

/// EulerDiscreteScheduler's settings; the defaults are diffusers'.
struct EulerDiscreteConfig {
  PredictionType prediction_type = PredictionType::epsilon;  ///< How to read the model's output.
  TimestepSpacing timestep_spacing = TimestepSpacing::linspace;  ///< Which timesteps to visit.
  int steps_offset = 0;            ///< Added to the `leading` timesteps (>= 0).
  bool use_karras_sigmas = false;  ///< Whether Karras et al.'s sigmas replace the spaced ones.
  /// @{
  /// The Karras sigmas' bounds (positive; unused without them); when not set, the spaced sigmas'
  /// smallest and largest.
  std::optional<double> sigma_min = {}, sigma_max = {};
  /// @}
  FinalSigmasType final_sigmas_type = FinalSigmasType::zero;  ///< The sigma the last step ends at.
  /// @{
  /// Churn (see euler_discrete.hpp): s_churn >= 0 (0 adds none), the sigmas [s_tmin, s_tmax] it
  /// applies to, and the scale of its noise. diffusers passes them to EulerDiscreteScheduler.step()
  /// and does not save them in the scheduler's config (ldm keeps them here, as DDIM's eta).
  double s_churn = 0, s_tmin = 0, s_tmax = INFINITY, s_noise = 1;
  /// @}
};

/// The scalars of one Euler step.
struct EulerStep {
  /// @{
  /// The step's sigma, the sigma churn raises it to (sigma without churn), and the one it goes to.
  double sigma, sigma_hat, sigma_next;
  /// @}
  double churn_noise;  ///< The scale of the noise churn adds: s_noise sqrt(sigma_hat^2 - sigma^2).
  Parameterisation parameterisation;  ///< How x0 is read from the model's output (churned x).
};

/// The Euler sampler: the timesteps and sigmas to visit and one step at a time.
class EulerDiscrete : public SigmaSampler<EulerDiscreteConfig> {
 public:
  /// A sampler taking num_inference_steps steps over `schedule`.
  /// @throws ldm::Error when num_inference_steps is not in [1, T], steps_offset is invalid,
  ///         (with Karras sigmas) a sigma bound is not positive or sigma_min exceeds sigma_max, or
  ///         s_churn is negative or not finite, s_noise not finite or s_tmin or s_tmax NaN
  EulerDiscrete(Schedule schedule, const EulerDiscreteConfig& config, int num_inference_steps)
      : SigmaSampler(std::move(schedule), config, num_inference_steps) {
    if (!(config.s_churn >= 0 && std::isfinite(config.s_churn)))
      fail_expected("s_churn", "a finite value >= 0", config.s_churn);
    if (!std::isfinite(config.s_noise)) fail_expected("s_noise", "a finite number", config.s_noise);
    if (std::isnan(config.s_tmin) || std::isnan(config.s_tmax))
      fail("s_tmin and s_tmax: expected numbers, found ", config.s_tmin, " and ", config.s_tmax);
  }

  /// Euler remembers nothing between steps.
  template <ShapeType S, class Space>
  using State = NoState;

  /// The scalars of step i.
  /// @throws ldm::Error when i is not below timesteps().size()
  EulerStep coefficients(std::size_t i) const {
    const double at = sigma_at(i);
    const bool churns = config_.s_tmin <= at && at <= config_.s_tmax;
    const double gamma =
        churns ? std::min(config_.s_churn / num_inference_steps(), std::sqrt(2.0) - 1) : 0.0;
    const double hat = at * (gamma + 1);
    const bool epsilon = config_.prediction_type == PredictionType::epsilon;
    return {
        .sigma = at,
        .sigma_hat = hat,
        .sigma_next = sigmas()[i + 1],
        .churn_noise = config_.s_noise * std::sqrt(hat * hat - at * at),
        .parameterisation = sigma_parameterisation(config_.prediction_type, epsilon ? hat : at)};
  }

  /// The sampler contract's step: prev_sample = x_hat + (sigma_{i+1} - sigma_hat) d. The noise
  /// (any operand of shape S, or a floating-point number) is read only by a step that churns.
  /// prev_sample may alias sample or model_output.
  /// @throws ldm::Error when i is not below timesteps().size()
  template <ShapeType S, class Space, NoiseOperand Noise>
  void step(std::size_t i, NoState&, View<const float, S, Space> model_output,
            View<const float, S, Space> sample, const Noise& noise,
            View<float, S, Space> prev_sample) const {
    const EulerStep c = coefficients(i);
    // x_next = x_hat + k (x_hat - x0_hat) is linear in x_hat and the model's output.
    const Parameterisation& p = c.parameterisation;
    const double k = (c.sigma_next - c.sigma_hat) / c.sigma_hat;
    const double on_sample = 1 + k * (1 - p.x0_from_sample), on_output = -k * p.x0_from_output;
    if (c.churn_noise == 0)
      prev_sample = on_sample * in_double(sample) + on_output * in_double(model_output);
    else
      prev_sample = on_sample * (in_double(sample) + c.churn_noise * in_double(noise)) +
                    on_output * in_double(model_output);
  }
};

}  // namespace ldm::diffusion
