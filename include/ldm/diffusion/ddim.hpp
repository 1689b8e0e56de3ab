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
#include <cstdint>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include "ldm/core/error.hpp"
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
class DDIM {
 public:
  /// A sampler visiting num_inference_steps timesteps of `schedule`.
  /// @throws ldm::Error when num_inference_steps is not in [1, T], or the config's
  ///         clip_sample_range (when clipping) is not positive, steps_offset is invalid or eta is
  ///         not in [0, 1]
  DDIM(Schedule schedule, const DDIMConfig& config, int num_inference_steps)
      : schedule_(std::move(schedule)),
        config_(config),
        clip_bound_(clip_bound(config.clip_sample, config.clip_sample_range)),
        final_alpha_cumprod_(config.set_alpha_to_one ? 1.0 : schedule_.alphas_cumprod()[0]) {
    if (!(config.eta >= 0 && config.eta <= 1))
      fail_expected("eta", "a value in [0, 1]", config.eta);
    set_timesteps(num_inference_steps);
  }

  /// Visits num_inference_steps timesteps from now on (see spaced_timesteps()).
  /// @throws ldm::Error when num_inference_steps is not in [1, T]
  void set_timesteps(int num_inference_steps) {
    const auto spaced = spaced_timesteps(config_.timestep_spacing, schedule_.num_train_timesteps(),
                                         num_inference_steps, config_.steps_offset);
    timesteps_.assign(spaced.begin(), spaced.end());
    step_ratio_ = schedule_.num_train_timesteps() / num_inference_steps;
  }

  const Schedule& schedule() const { return schedule_; }  ///< The noise schedule.
  const DDIMConfig& config() const { return config_; }    ///< The settings.
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
  /// DDIM remembers nothing between steps.
  template <ShapeType S, class Space>
  using State = NoState;
  /// t - T / num_inference_steps, as diffusers (negative before t = 0).
  int previous_timestep(int t) const { return t - step_ratio_; }

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

  /// prev_sample = x_{prev}; noise is any operand of shape S (or a floating-point number; an
  /// integer is refused, as it would be a seed missing its offset), scaled by 0 when eta is 0.
  /// prev_sample may alias sample or model_output.
  /// @throws ldm::Error when t is not in [0, T)
  template <ShapeType S, class Space, class Noise>
  requires(!std::is_integral_v<Noise>) void step(View<const float, S, Space> model_output, int t,
                                                 View<const float, S, Space> sample,
                                                 const Noise& noise,
                                                 View<float, S, Space> prev_sample) const {
    const DDIMStep c = coefficients(t);
    prev_sample = c.x0_coeff * predicted_x0(c.parameterisation, sample, model_output, clip_bound_) +
                  c.eps_coeff * predicted_eps(c.parameterisation, sample, model_output) +
                  c.sigma * in_double(noise);
  }

  /// The same with noise = ldm::randn<S>(seed, offset).
  template <ShapeType S, class Space>
  void step(View<const float, S, Space> model_output, int t, View<const float, S, Space> sample,
            std::uint64_t seed, std::uint64_t offset, View<float, S, Space> prev_sample) const {
    step(model_output, t, sample, randn<S>(seed, offset), prev_sample);
  }

  /// The sampler contract's step: the step at the i-th timestep.
  /// @throws ldm::Error when i is not below timesteps().size()
  template <ShapeType S, class Space, class Noise>
  requires(!std::is_integral_v<Noise>) void step(std::size_t i, NoState&,
                                                 View<const float, S, Space> model_output,
                                                 View<const float, S, Space> sample,
                                                 const Noise& noise,
                                                 View<float, S, Space> prev_sample) const {
    step(model_output, int(timesteps_.at(i)), sample, noise, prev_sample);
  }

  /// x0_hat at t: x0 read from the model's output, clamped when clip_sample is set.
  template <ShapeType S, class Space>
  void pred_original_sample(View<const float, S, Space> model_output, int t,
                            View<const float, S, Space> sample, View<float, S, Space> x0) const {
    x0 = predicted_x0(coefficients(t).parameterisation, sample, model_output, clip_bound_);
  }

 private:
  Schedule schedule_;
  DDIMConfig config_;
  double clip_bound_;
  double final_alpha_cumprod_;
  std::vector<double> timesteps_;
  int step_ratio_ = 0;
};

}  // namespace ldm::diffusion
