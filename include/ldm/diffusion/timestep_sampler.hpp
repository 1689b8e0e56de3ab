#pragma once
/// @file
/// What diffusers' DDPMScheduler and DDIMScheduler share besides their formulas: a step is a
/// function of the whole timestep t it starts from (their step(model_output, timestep, sample)),
/// taken on the variance-preserving sample with one model evaluation, at the spaced timesteps of
/// spaced_timesteps(), with x0 read from the model's output and clamped when clip_sample is set.
/// TimestepSampler answers the sampler contract (ldm/diffusion/sampler.hpp) for such a sampler,
/// whose own file keeps its step formula.

#include <cstdint>
#include <span>
#include <utility>
#include <vector>

#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/diffusion/forward_process.hpp"
#include "ldm/diffusion/sampler.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/diffusion/sigmas.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/random.hpp"

namespace ldm::diffusion {

/// The sampler contract on top of a step at timestep t.
/// @tparam Derived the sampler: it has `coefficients(t)`, whose `parameterisation` reads x0 from
///         the model's output at t, and `step(model_output, t, sample, noise, prev_sample)`
/// @tparam Config its settings, which include prediction_type, clip_sample, clip_sample_range,
///         timestep_spacing and steps_offset
template <class Derived, class Config>
class TimestepSampler {
 public:
  /// Visits num_inference_steps timesteps from now on (see spaced_timesteps()).
  /// @throws ldm::Error when num_inference_steps is not in [1, T]
  void set_timesteps(int num_inference_steps) {
    const auto spaced = spaced_timesteps(config_.timestep_spacing, schedule_.num_train_timesteps(),
                                         num_inference_steps, config_.steps_offset);
    timesteps_.assign(spaced.begin(), spaced.end());
  }

  const Schedule& schedule() const { return schedule_; }  ///< The noise schedule.
  const Config& config() const { return config_; }        ///< The settings.
  /// The timesteps to visit, in order (descending; whole numbers).
  std::span<const double> timesteps() const { return timesteps_; }
  /// How many timesteps are visited.
  int num_inference_steps() const { return int(timesteps_.size()); }
  /// One model evaluation per step.
  int evaluations_per_step() const { return 1; }
  /// Sampling starts from standard normal noise.
  double init_noise_sigma() const { return 1; }
  /// The model sees the sample as it is.
  double input_scale(std::size_t) const { return 1; }
  /// sqrt(abar_t) and sqrt(1 - abar_t) at the i-th timestep.
  NoiseLevel noise_level(std::size_t i) const {
    return noise_level_at(schedule_, int(timesteps_.at(i)));
  }
  /// Nothing is remembered between steps.
  template <ShapeType S, class Space>
  using State = NoState;

  /// The step at t with noise = ldm::randn<S>(seed, offset).
  template <ShapeType S, class Space>
  void step(View<const float, S, Space> model_output, int t, View<const float, S, Space> sample,
            std::uint64_t seed, std::uint64_t offset, View<float, S, Space> prev_sample) const {
    derived().step(model_output, t, sample, randn<S>(seed, offset), prev_sample);
  }

  /// The sampler contract's step: the step at the i-th timestep.
  /// @throws ldm::Error when i is not below timesteps().size()
  template <ShapeType S, class Space, NoiseOperand Noise>
  void step(std::size_t i, State<S, Space>&, View<const float, S, Space> model_output,
            View<const float, S, Space> sample, const Noise& noise,
            View<float, S, Space> prev_sample) const {
    derived().step(model_output, int(timesteps_.at(i)), sample, noise, prev_sample);
  }

  /// x0_hat at t: x0 read from the model's output, clamped when clip_sample is set.
  template <ShapeType S, class Space>
  void pred_original_sample(View<const float, S, Space> model_output, int t,
                            View<const float, S, Space> sample, View<float, S, Space> x0) const {
    x0 =
        predicted_x0(derived().coefficients(t).parameterisation, sample, model_output, clip_bound_);
  }

 protected:
  /// The sampler over `schedule` with these settings, whose constructor then calls
  /// set_timesteps().
  /// @throws ldm::Error when clip_sample is set and clip_sample_range is not positive
  TimestepSampler(Schedule schedule, const Config& config)
      : schedule_(std::move(schedule)),
        config_(config),
        clip_bound_(clip_bound(config.clip_sample, config.clip_sample_range)) {}

  Schedule schedule_;              ///< The noise schedule.
  Config config_;                  ///< The settings.
  double clip_bound_;              ///< The bound x0_hat is clamped to (infinite without clipping).
  std::vector<double> timesteps_;  ///< The timesteps to visit.

 private:
  const Derived& derived() const { return static_cast<const Derived&>(*this); }
};

}  // namespace ldm::diffusion
