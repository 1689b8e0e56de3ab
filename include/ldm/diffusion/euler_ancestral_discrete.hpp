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
#include <span>
#include <type_traits>
#include <utility>

#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/diffusion/forward_process.hpp"
#include "ldm/diffusion/sampler.hpp"
#include "ldm/diffusion/schedule.hpp"
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
class EulerAncestralDiscrete {
 public:
  /// A sampler taking num_inference_steps steps over `schedule`.
  /// @throws ldm::Error when num_inference_steps is not in [1, T] or steps_offset is invalid
  EulerAncestralDiscrete(Schedule schedule, const EulerAncestralDiscreteConfig& config,
                         int num_inference_steps)
      : schedule_(std::move(schedule)),
        config_(config),
        steps_(schedule_,
               SigmaSpacing{.timestep_spacing = config.timestep_spacing,
                            .steps_offset = config.steps_offset},
               num_inference_steps) {}

  const Schedule& schedule() const { return schedule_; }                  ///< The noise schedule.
  const EulerAncestralDiscreteConfig& config() const { return config_; }  ///< The settings.
  /// The timesteps the model sees, in order (descending; fractions for linspace).
  std::span<const double> timesteps() const { return steps_.timesteps(); }
  /// The sigma of each step, then 0 (diffusers' sigmas).
  std::span<const double> sigmas() const { return steps_.sigmas(); }
  /// How many steps are taken.
  int num_inference_steps() const { return steps_.num_inference_steps(); }
  /// One model evaluation per step.
  int evaluations_per_step() const { return 1; }
  /// The largest sigma (with `leading` spacing, sqrt(sigma^2 + 1)), as diffusers.
  double init_noise_sigma() const { return steps_.init_noise_sigma(); }
  /// 1 / sqrt(sigma_i^2 + 1).
  /// @throws ldm::Error when i is not below timesteps().size()
  double input_scale(std::size_t i) const { return sigma_input_scale(sigma(i)); }
  /// Signal 1 and noise sigma_i, as diffusers' add_noise.
  /// @throws ldm::Error when i is not below timesteps().size()
  NoiseLevel noise_level(std::size_t i) const { return {.signal = 1, .noise = sigma(i)}; }
  /// Euler ancestral remembers nothing between steps.
  template <ShapeType S, class Space>
  using State = NoState;

  /// The scalars of step i.
  /// @throws ldm::Error when i is not below timesteps().size()
  EulerAncestralStep coefficients(std::size_t i) const {
    const double from = sigma(i), to = sigmas()[i + 1];
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
  template <ShapeType S, class Space, class Noise>
  requires(!std::is_integral_v<Noise>) void step(std::size_t i, NoState&,
                                                 View<const float, S, Space> model_output,
                                                 View<const float, S, Space> sample,
                                                 const Noise& noise,
                                                 View<float, S, Space> prev_sample) const {
    const EulerAncestralStep c = coefficients(i);
    prev_sample =
        in_double(sample) +
        (c.sigma_down - c.sigma) * predicted_eps(c.parameterisation, sample, model_output) +
        c.sigma_up * in_double(noise);
  }

 private:
  double sigma(std::size_t i) const {
    detail::check_evaluation(i, timesteps().size());
    return sigmas()[i];
  }

  Schedule schedule_;
  EulerAncestralDiscreteConfig config_;
  SigmaSteps steps_;
};

}  // namespace ldm::diffusion
