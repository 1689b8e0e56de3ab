#pragma once
/// @file
/// Heun's second-order sampler (Karras et al. 2022, Algorithm 1 without churn) as diffusers'
/// HeunDiscreteScheduler takes its steps, in the sigma parameterisation of
/// ldm/diffusion/sigma_steps.hpp. Step k from sigma_k to sigma_{k+1} evaluates the model twice:
/// @verbatim
///   evaluation 2k, at sigma_k:        d1 = (x - x0_hat) / sigma_k
///                                     x' = x + (sigma_{k+1} - sigma_k) d1
///   evaluation 2k+1, at sigma_{k+1}:  d2 = (x' - x0_hat') / sigma_{k+1}
///                                     x_next = x + (sigma_{k+1} - sigma_k) (d1 + d2) / 2
/// @endverbatim
/// where x0_hat is x0 read from the model's output, clamped when clip_sample is set. The last
/// step, to sigma 0, is Euler's first half alone, so n steps take 2n - 1 evaluations, and the
/// timesteps list every timestep but the first twice, as diffusers'. The first half's d1 and x
/// are the State a trajectory keeps between the two evaluations; image-to-image starts at an
/// even evaluation (first_evaluation() gives 2k) with a fresh State. A half step is one fused
/// expression, evaluated in double and rounded once; Heun meets the sampler contract
/// (ldm/diffusion/sampler.hpp) and never reads its noise operand.

#include <cstddef>
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

/// HeunDiscreteScheduler's settings; the defaults are diffusers'.
struct HeunDiscreteConfig {
  PredictionType prediction_type = PredictionType::epsilon;  ///< How to read the model's output.
  TimestepSpacing timestep_spacing = TimestepSpacing::linspace;  ///< Which timesteps to visit.
  int steps_offset = 0;            ///< Added to the `leading` timesteps (>= 0).
  bool use_karras_sigmas = false;  ///< Whether Karras et al.'s sigmas replace the spaced ones.
  bool clip_sample = false;        ///< Whether x0_hat is clamped to the range below.
  double clip_sample_range = 1.0;  ///< The clamp's bound (positive).
};

/// What a Heun trajectory keeps between the two evaluations of a step: the first half's
/// derivative d1 and the sample the step started from. Default-constructed, it holds no half
/// step.
/// @tparam S the shape of the samples
/// @tparam Space where they live
template <ShapeType S, class Space>
struct HeunState {
  Tensor<float, S, Space> derivative;  ///< d1 of the step begun.
  Tensor<float, S, Space> sample;      ///< The sample the step began from.
  bool first_half_taken = false;       ///< Whether the two above hold a step begun.
};

/// The scalars of one of Heun's evaluations.
struct HeunEvaluation {
  bool first_half;  ///< Whether it begins a step (else it completes one).
  /// @{
  /// The sigmas the step goes from and to.
  double sigma, sigma_next;
  /// @}
  /// How x0 is read from the model's output, at sigma (first half) or sigma_next (second half).
  Parameterisation parameterisation;
};

/// Heun's sampler: the timesteps and sigmas to visit and one evaluation at a time.
class HeunDiscrete : public SigmaSampler<HeunDiscreteConfig> {
 public:
  /// A sampler taking num_inference_steps steps over `schedule`.
  /// @throws ldm::Error when num_inference_steps is not in [1, T], steps_offset is invalid, or
  ///         the clip_sample_range (when clipping) is not positive
  HeunDiscrete(Schedule schedule, const HeunDiscreteConfig& config, int num_inference_steps)
      : SigmaSampler(std::move(schedule), config, num_inference_steps, 2),
        clip_bound_(clip_bound(config.clip_sample, config.clip_sample_range)) {}

  /// A trajectory's half-finished step.
  template <ShapeType S, class Space>
  using State = HeunState<S, Space>;

  /// The scalars of evaluation i.
  /// @throws ldm::Error when i is not below timesteps().size()
  HeunEvaluation coefficients(std::size_t i) const {
    detail::check_evaluation(i, timesteps().size());
    const std::size_t k = i / 2;  // the step evaluation i belongs to
    const bool first_half = i % 2 == 0;
    const double sigma = sigmas()[k], sigma_next = sigmas()[k + 1];
    return {.first_half = first_half,
            .sigma = sigma,
            .sigma_next = sigma_next,
            .parameterisation =
                sigma_parameterisation(config_.prediction_type, first_half ? sigma : sigma_next)};
  }

  /// The sampler contract's step: evaluation i's half of a step (see this file's description).
  /// The noise is not read. prev_sample may alias sample or model_output.
  /// @throws ldm::Error when i is not below timesteps().size(), or when `state` does not fit
  ///         evaluation i: an odd i completes the step begun at i - 1, whose State it needs; an
  ///         even one begins a step, with a State that holds none
  template <ShapeType S, class Space, NoiseOperand Noise>
  void step(std::size_t i, HeunState<S, Space>& state, View<const float, S, Space> model_output,
            View<const float, S, Space> sample, const Noise&,
            View<float, S, Space> prev_sample) const {
    const HeunEvaluation c = coefficients(i);
    if (c.first_half == state.first_half_taken)
      fail("HeunDiscrete: evaluation ", i,
           c.first_half ? " begins a step, but the State holds one begun and not completed"
                        : " completes the step begun at the evaluation before it, but the State "
                          "holds none (start at an even evaluation with a fresh State)");
    const double dt = c.sigma_next - c.sigma;
    if (c.first_half) {
      const double at = c.sigma;
      auto derivative = (1 / at) * (in_double(sample) - predicted_x0(c.parameterisation, sample,
                                                                     model_output, clip_bound_));
      if (i + 1 == timesteps().size()) {  // the last step, to sigma 0: Euler's
        prev_sample = in_double(sample) + dt * derivative;
        return;
      }
      state.derivative = derivative;
      state.sample = sample;
      state.first_half_taken = true;
      prev_sample = in_double(state.sample) + dt * in_double(state.derivative);
    } else {
      const double at = c.sigma_next;
      prev_sample =
          in_double(state.sample) +
          (dt / 2) * (in_double(state.derivative) +
                      (1 / at) * (in_double(sample) - predicted_x0(c.parameterisation, sample,
                                                                   model_output, clip_bound_)));
      state.first_half_taken = false;
    }
  }

 private:
  double clip_bound_;
};

}  // namespace ldm::diffusion
