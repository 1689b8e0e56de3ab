#pragma once
/// @file
/// The Euler sampler (Karras et al. 2022, Algorithm 2 without churn) as diffusers'
/// EulerDiscreteScheduler takes a step, in the sigma parameterisation of
/// ldm/diffusion/sigma_steps.hpp:
/// @verbatim
///   x0_hat = x0 read from the model's output at sigma_i,   d = (x - x0_hat) / sigma_i
///   x_next = x + (sigma_{i+1} - sigma_i) d
/// @endverbatim
/// one step of the probability-flow ODE dx/dsigma = (x - x0) / sigma. It is deterministic and
/// never reads its noise operand. diffusers' step() arguments s_churn, s_tmin, s_tmax and s_noise
/// stay at their defaults (no churn), and only interpolation_type "linear" and timestep_type
/// "discrete" are implemented. A step is one fused expression, evaluated in double and rounded
/// once; it meets the sampler contract (ldm/diffusion/sampler.hpp).

#include <cmath>
#include <cstddef>
#include <optional>
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
};

/// The scalars of one Euler step.
struct EulerStep {
  /// @{
  /// The step's sigma and the one it goes to.
  double sigma, sigma_next;
  /// @}
  Parameterisation parameterisation;  ///< How x0 and d are read from the model's output at sigma.
};

/// The Euler sampler: the timesteps and sigmas to visit and one step at a time.
class EulerDiscrete {
 public:
  /// A sampler taking num_inference_steps steps over `schedule`.
  /// @throws ldm::Error when num_inference_steps is not in [1, T], steps_offset is invalid, or
  ///         (with Karras sigmas) a sigma bound is not positive or sigma_min exceeds sigma_max
  EulerDiscrete(Schedule schedule, const EulerDiscreteConfig& config, int num_inference_steps)
      : schedule_(std::move(schedule)),
        config_(config),
        steps_(schedule_,
               SigmaSpacing{.timestep_spacing = config.timestep_spacing,
                            .steps_offset = config.steps_offset,
                            .use_karras_sigmas = config.use_karras_sigmas,
                            .sigma_min = config.sigma_min,
                            .sigma_max = config.sigma_max,
                            .final_sigmas_type = config.final_sigmas_type},
               num_inference_steps) {}

  const Schedule& schedule() const { return schedule_; }         ///< The noise schedule.
  const EulerDiscreteConfig& config() const { return config_; }  ///< The settings.
  /// The timesteps the model sees, in order (descending; fractions for linspace and Karras).
  std::span<const double> timesteps() const { return steps_.timesteps(); }
  /// The sigma of each step, then the final sigma (diffusers' sigmas).
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
  /// Euler remembers nothing between steps.
  template <ShapeType S, class Space>
  using State = NoState;

  /// The scalars of step i.
  /// @throws ldm::Error when i is not below timesteps().size()
  EulerStep coefficients(std::size_t i) const {
    return {.sigma = sigma(i),
            .sigma_next = sigmas()[i + 1],
            .parameterisation = sigma_parameterisation(config_.prediction_type, sigma(i))};
  }

  /// The sampler contract's step: prev_sample = x + (sigma_{i+1} - sigma_i) d. The noise (any
  /// operand of shape S, or a floating-point number) is not read. prev_sample may alias sample
  /// or model_output.
  /// @throws ldm::Error when i is not below timesteps().size()
  template <ShapeType S, class Space, class Noise>
  requires(!std::is_integral_v<Noise>) void step(std::size_t i, NoState&,
                                                 View<const float, S, Space> model_output,
                                                 View<const float, S, Space> sample, const Noise&,
                                                 View<float, S, Space> prev_sample) const {
    const EulerStep c = coefficients(i);
    // d is the noise read from the output (eps = (x - x0) / sigma).
    prev_sample = in_double(sample) + (c.sigma_next - c.sigma) *
                                          predicted_eps(c.parameterisation, sample, model_output);
  }

 private:
  double sigma(std::size_t i) const {
    detail::check_evaluation(i, timesteps().size());
    return sigmas()[i];
  }

  Schedule schedule_;
  EulerDiscreteConfig config_;
  SigmaSteps steps_;
};

}  // namespace ldm::diffusion
