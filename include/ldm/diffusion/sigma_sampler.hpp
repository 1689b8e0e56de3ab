#pragma once
/// @file
/// What diffusers' sigma samplers (EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
/// HeunDiscreteScheduler) share besides their formulas: the sampler contract's answers on their
/// steps (ldm/diffusion/sigma_steps.hpp). Each evaluation's sample has signal 1 and noise sigma,
/// and the model sees it scaled to the variance-preserving sample. Euler's evaluations are its
/// steps; Heun's evaluates each step twice, the second time at the step's end, but the last step
/// once, so its timesteps list every step's timestep but the first twice, as diffusers'.

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "ldm/diffusion/sampler.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/diffusion/sigma_steps.hpp"

namespace ldm::diffusion {

/// The sampler contract's accessors of a sigma sampler with settings of type Config; the sampler
/// takes the steps.
/// @tparam Config its settings, which include timestep_spacing and steps_offset, and may include
///         the other fields of SigmaSpacing
template <class Config>
class SigmaSampler {
 public:
  const Schedule& schedule() const { return schedule_; }  ///< The noise schedule.
  const Config& config() const { return config_; }        ///< The settings.
  /// The timesteps the model sees, in order (descending; fractions for linspace and Karras).
  std::span<const double> timesteps() const { return timesteps_; }
  /// The sigma of each step, then the final sigma (diffusers' sigmas, before Heun repeats them).
  std::span<const double> sigmas() const { return steps_.sigmas(); }
  /// How many steps are taken.
  int num_inference_steps() const { return steps_.num_inference_steps(); }
  /// Model evaluations per step: 1, or 2 (Heun; one for the last step).
  int evaluations_per_step() const { return evaluations_per_step_; }
  /// The largest sigma (with `leading` spacing, sqrt(sigma^2 + 1)), as diffusers.
  double init_noise_sigma() const { return steps_.init_noise_sigma(); }
  /// 1 / sqrt(sigma^2 + 1) at the sigma of evaluation i.
  /// @throws ldm::Error when i is not below timesteps().size()
  double input_scale(std::size_t i) const { return sigma_input_scale(sigma_at(i)); }
  /// Signal 1 and noise sigma at evaluation i, as diffusers' add_noise.
  /// @throws ldm::Error when i is not below timesteps().size()
  NoiseLevel noise_level(std::size_t i) const { return {.signal = 1, .noise = sigma_at(i)}; }

  /// The sigma the model sees at evaluation i: sigma_i with one evaluation per step; with two,
  /// sigma_k at evaluations 2k - 1 and 2k.
  /// @throws ldm::Error when i is not below timesteps().size()
  double sigma_at(std::size_t i) const {
    detail::check_evaluation(i, timesteps_.size());
    return sigmas()[evaluations_per_step_ == 1 ? i : (i + 1) / 2];
  }

 protected:
  /// The sampler taking num_inference_steps steps over `schedule`, spaced as the settings say,
  /// with evaluations_per_step (1 or 2) evaluations each.
  /// @throws ldm::Error when num_inference_steps is not in [1, T], steps_offset is invalid, or
  ///         (with Karras sigmas) a sigma bound is not positive or sigma_min exceeds sigma_max
  SigmaSampler(Schedule schedule, const Config& config, int num_inference_steps,
               int evaluations_per_step = 1)
      : schedule_(std::move(schedule)),
        config_(config),
        steps_(schedule_, spacing_of(config), num_inference_steps),
        evaluations_per_step_(evaluations_per_step) {
    const auto steps = steps_.timesteps();
    timesteps_.push_back(steps.front());
    for (std::size_t k = 1; k < steps.size(); ++k)
      timesteps_.insert(timesteps_.end(), std::size_t(evaluations_per_step), steps[k]);
  }

  Schedule schedule_;  ///< The noise schedule.
  Config config_;      ///< The settings.
  SigmaSteps steps_;   ///< The steps' timesteps and sigmas.

 private:
  // The spacing the settings describe; a field they do not have keeps SigmaSpacing's default.
  static SigmaSpacing spacing_of(const Config& config) {
    SigmaSpacing spacing{.timestep_spacing = config.timestep_spacing,
                         .steps_offset = config.steps_offset};
    if constexpr (requires { config.use_karras_sigmas; })
      spacing.use_karras_sigmas = config.use_karras_sigmas;
    if constexpr (requires { config.sigma_min; }) {
      spacing.sigma_min = config.sigma_min;
      spacing.sigma_max = config.sigma_max;
    }
    if constexpr (requires { config.final_sigmas_type; })
      spacing.final_sigmas_type = config.final_sigmas_type;
    return spacing;
  }

  int evaluations_per_step_;
  std::vector<double> timesteps_;
};

}  // namespace ldm::diffusion
