#pragma once
/// @file
/// What diffusers' sigma samplers (EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
/// HeunDiscreteScheduler) share: the timesteps and sigmas they visit after set_timesteps(n), and
/// how they read a model's output at a sigma.
///
/// These samplers move x = x_t / sqrt(abar_t) = x0 + sigma_t eps (ldm/diffusion/sigmas.hpp), so
/// their samples have signal 1 and noise sigma, sampling starts from noise of standard deviation
/// about sigma_max, and the model sees x / sqrt(sigma^2 + 1), the variance-preserving sample it
/// was trained on. Their timesteps are diffusers' spacing without DDIM's rounding of linspace
/// (float32 values, as diffusers keeps them), and each sigma is the schedule's sigma interpolated
/// linearly at its timestep, unless Karras et al.'s sigmas replace them (their timesteps are then
/// the fractional timesteps of those sigmas). The scalars are computed in double on the host.

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/diffusion/forward_process.hpp"
#include "ldm/diffusion/sampler.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/diffusion/sigmas.hpp"

namespace ldm::diffusion {

/// How a sigma sampler chooses its sigmas; the defaults are diffusers'.
struct SigmaSpacing {
  TimestepSpacing timestep_spacing = TimestepSpacing::linspace;  ///< Which timesteps to visit.
  int steps_offset = 0;  ///< Added to the `leading` timesteps (>= 0).
  /// Whether Karras et al.'s sigmas replace the interpolated ones (between the bounds below).
  bool use_karras_sigmas = false;
  /// @{
  /// The Karras sigmas' bounds (positive); when not set, the spaced sigmas' smallest and largest.
  std::optional<double> sigma_min = {}, sigma_max = {};
  /// @}
  FinalSigmasType final_sigmas_type = FinalSigmasType::zero;  ///< The sigma the last step ends at.
};

/// The timesteps a sigma sampler hands the model, one per step in diffusers' float32: the
/// spaced_timesteps() of `leading` and `trailing`, and for `linspace` numpy's linspace(0, T - 1,
/// n) descending, not rounded to whole numbers.
/// @throws ldm::Error when num_inference_steps is not in [1, T], or steps_offset is negative or
///         puts a timestep at T or above
inline std::vector<double> sigma_sampler_timesteps(TimestepSpacing spacing, int num_train_timesteps,
                                                   int num_inference_steps, int steps_offset) {
  const std::vector<int> whole =
      spaced_timesteps(spacing, num_train_timesteps, num_inference_steps, steps_offset);
  std::vector<double> timesteps(whole.begin(), whole.end());
  if (spacing != TimestepSpacing::linspace) return timesteps;
  const int n = num_inference_steps, last = num_train_timesteps - 1;
  const double step = n > 1 ? double(last) / (n - 1) : 0.0;
  for (int i = 0; i < n; ++i)
    timesteps[std::size_t(n - 1 - i)] = double(float(i == n - 1 && n > 1 ? last : i * step));
  return timesteps;
}

/// The steps of a sigma sampler: a timestep per step, and the sigmas from the first step's to the
/// final one, as diffusers' set_timesteps leaves them (before Heun repeats them).
class SigmaSteps {
 public:
  /// The steps of `num_inference_steps` over `schedule`, spaced as `spacing` says.
  /// @throws ldm::Error when num_inference_steps is not in [1, T], steps_offset is invalid, or a
  ///         Karras bound is not positive or sigma_min exceeds sigma_max
  SigmaSteps(const Schedule& schedule, const SigmaSpacing& spacing, int num_inference_steps) {
    timesteps_ = sigma_sampler_timesteps(spacing.timestep_spacing, schedule.num_train_timesteps(),
                                         num_inference_steps, spacing.steps_offset);
    const std::vector<double> table = schedule_sigmas(schedule);
    for (double t : timesteps_)
      sigmas_.push_back(interpolate(table, t));
    if (spacing.use_karras_sigmas) {
      check_bound("sigma_min", spacing.sigma_min);
      check_bound("sigma_max", spacing.sigma_max);
      const double low = spacing.sigma_min.value_or(sigmas_.back()),
                   high = spacing.sigma_max.value_or(sigmas_.front());
      if (!(low <= high))
        fail("sigma_min and sigma_max: expected sigma_min <= sigma_max, found ", low, " and ",
             high);
      sigmas_ = karras_sigmas(low, high, num_inference_steps);
      std::vector<double> log_sigmas;
      for (double sigma : table)
        log_sigmas.push_back(std::log(sigma));
      for (std::size_t k = 0; k < timesteps_.size(); ++k)
        timesteps_[k] = double(float(sigma_to_timestep(sigmas_[k], log_sigmas)));
    }
    sigmas_.push_back(spacing.final_sigmas_type == FinalSigmasType::zero ? 0.0 : table.front());
    const double largest = *std::ranges::max_element(sigmas_);
    // diffusers' init_noise_sigma: with `leading` spacing the first timestep is below T - 1, and
    // the initial noise is scaled as a variance-preserving sample's would be.
    init_noise_sigma_ = spacing.timestep_spacing == TimestepSpacing::leading
                            ? std::sqrt(largest * largest + 1)
                            : largest;
  }

  /// The timestep of each step, descending.
  std::span<const double> timesteps() const { return timesteps_; }
  /// The sigma of each step, then the final sigma: one more than the steps, descending.
  std::span<const double> sigmas() const { return sigmas_; }
  /// The number of steps.
  int num_inference_steps() const { return int(timesteps_.size()); }
  /// The standard deviation of the noise sampling starts from (diffusers' init_noise_sigma).
  double init_noise_sigma() const { return init_noise_sigma_; }

 private:
  static void check_bound(const char* field, const std::optional<double>& bound) {
    if (bound && !(*bound > 0 && std::isfinite(*bound)))
      fail_expected(field, "a positive number (or none)", *bound);
  }

  std::vector<double> timesteps_, sigmas_;
  double init_noise_sigma_ = 1;
};

/// The factor on a sample at noise level sigma that gives the model its variance-preserving
/// input: 1 / sqrt(sigma^2 + 1) (diffusers' scale_model_input).
inline double sigma_input_scale(double sigma) {
  return 1 / std::sqrt(sigma * sigma + 1);
}

/// How x0 and eps = (x - x0) / sigma are read from a model's output at noise level sigma > 0,
/// for a sample x = x0 + sigma eps (diffusers' pred_original_sample in the sigma samplers).
inline Parameterisation sigma_parameterisation(PredictionType type, double sigma) {
  switch (type) {
    case PredictionType::epsilon:  // x0 = x - sigma * output
      return {1, -sigma, 0, 1};
    case PredictionType::v_prediction: {
      // The model saw x / sqrt(sigma^2 + 1) and predicted v at that sample.
      const double scale = sigma_input_scale(sigma), variance = sigma * sigma + 1;
      return {1 / variance, -sigma * scale, sigma / variance, scale};
    }
  }
  assert(false && "a prediction type without a parameterisation");
  return {};
}

namespace detail {
// A sigma sampler's evaluation index, checked against its count of evaluations.
inline void check_evaluation(std::size_t i, std::size_t evaluations) {
  if (i >= evaluations)
    fail_expected("evaluation", "an index below " + std::to_string(evaluations), i);
}
}  // namespace detail

}  // namespace ldm::diffusion
