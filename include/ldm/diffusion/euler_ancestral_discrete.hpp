#pragma once
/// @file
/// The Euler ancestral sampler as diffusers' EulerAncestralDiscreteScheduler takes a step, in the
/// sigma parameterisation of ldm/diffusion/sigma_steps.hpp: an Euler step down to sigma_down,
/// then fresh noise up to sigma_{i+1}:
/// @verbatim
///   sigma_up = sqrt(sigma_{i+1}^2 (sigma_i^2 - sigma_{i+1}^2) / sigma_i^2)
///   sigma_down = sqrt(sigma_{i+1}^2 - sigma_up^2) = sigma_{i+1}^2 / sigma_i
///   x_next = x + (sigma_down - sigma_i) (x - x0_hat) / sigma_i + sigma_up * noise
/// @endverbatim
/// The noise is the step's operand (ldm::randn<S>(seed, offset) in the pipeline, or a tensor).
/// A step is one fused expression, evaluated in double and rounded once; it meets the sampler
/// contract (ldm/diffusion/sampler.hpp).

#include <cmath>
#include <cstddef>
#include <utility>

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

/// EulerAncestralDiscreteScheduler's settings; the defaults are diffusers'.
struct EulerAncestralDiscreteConfig {
  PredictionType prediction_type = PredictionType::epsilon;  ///< How to read the model's output.
  TimestepSpacing timestep_spacing = TimestepSpacing::linspace;  ///< Which timesteps to visit.
  int steps_offset = 0;  ///< Added to the `leading` timesteps (>= 0).
};

/// The scalars of one Euler ancestral step.
struct EulerAncestralStep {
  /// @{
  /// The step's sigma, the one its Euler part goes down to, and the noise's scale.
  double sigma, sigma_down, sigma_up;
  /// @}
  Parameterisation parameterisation;  ///< How x0 and d are read from the model's output at sigma.
};

/// The Euler ancestral sampler: the timesteps and sigmas to visit and one step at a time.
class EulerAncestralDiscrete : public SigmaSampler<EulerAncestralDiscreteConfig> {
 public:
  /// A sampler taking num_inference_steps steps over `schedule`.
  /// @throws ldm::Error when num_inference_steps is not in [1, T] or steps_offset is invalid
  EulerAncestralDiscrete(Schedule schedule, const EulerAncestralDiscreteConfig& config,
                         int num_inference_steps)
      : SigmaSampler(std::move(schedule), config, num_inference_steps) {}

  /// Euler ancestral remembers nothing between steps.
  template <ShapeType S, class Space>
  using State = NoState;

  /// The scalars of step i.
  /// @throws ldm::Error when i is not below timesteps().size()
  EulerAncestralStep coefficients(std::size_t i) const {
    const double from = sigma_at(i), to = sigmas()[i + 1];
    return {.sigma = from,
            // sigma_up^2 + sigma_down^2 = to^2, written so that no difference can round below 0.
            .sigma_down = to * to / from,
            .sigma_up = to * std::sqrt((from - to) * (from + to)) / from,
            .parameterisation = sigma_parameterisation(config_.prediction_type, from)};
  }

  /// The sampler contract's step: the Euler step to sigma_down plus sigma_up * noise, noise being
  /// any operand of shape S (or a floating-point number; an integer is refused, as it would be a
  /// seed missing its offset). prev_sample may alias sample or model_output.
  /// @throws ldm::Error when i is not below timesteps().size()
  template <ShapeType S, class Space, NoiseOperand Noise>
  void step(std::size_t i, NoState&, View<const float, S, Space> model_output,
            View<const float, S, Space> sample, const Noise& noise,
            View<float, S, Space> prev_sample) const {
    const EulerAncestralStep c = coefficients(i);
    prev_sample =
        in_double(sample) +
        (c.sigma_down - c.sigma) * predicted_eps(c.parameterisation, sample, model_output) +
        c.sigma_up * in_double(noise);
  }
};

}  // namespace ldm::diffusion
