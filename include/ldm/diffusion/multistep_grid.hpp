#pragma once
/// @file
/// The timesteps and sigmas of diffusers' multistep solvers (DPMSolverMultistepScheduler,
/// UniPCMultistepScheduler), which set_timesteps() computes alike and differently from DDIM's:
/// `leading` spaces by T / (n + 1) and `linspace` by (T - 1) / n, both dropping timestep 0, and
/// after the n evaluations comes one more sigma, the one the last step lands on (0, or the
/// schedule's smallest). Karras sigmas replace the spacing's and their timesteps are the nearest
/// training timesteps. Everything is in double; diffusers rounds the sigmas to float32 once.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/diffusion/sigmas.hpp"

namespace ldm::diffusion {

/// What a multistep solver's timesteps and sigmas depend on.
struct MultistepGridConfig {
  TimestepSpacing spacing = TimestepSpacing::linspace;  ///< Which timesteps to visit.
  int steps_offset = 0;                                 ///< Added to the `leading` timesteps.
  bool use_karras_sigmas = false;  ///< Karras et al.'s sigmas in place of the spacing's.
  /// How Karras sigmas' fractional timesteps become whole: rounded, or else truncated (diffusers'
  /// DPM-Solver skips the rounding for squaredcos_cap_v2, and the int64 cast then truncates).
  bool round_karras_timesteps = true;
  FinalSigmasType final_sigmas_type = FinalSigmasType::zero;  ///< The sigma after the last step.
  /// The spacings' timesteps stay below this (DPM-Solver's lambda_min_clipped lowers it from T).
  int last_timestep = std::numeric_limits<int>::max();
};

/// The evaluations of a multistep solver: their timesteps and sigmas.
struct MultistepGrid {
  std::vector<double> timesteps;  ///< The model's timestep at each evaluation (whole numbers).
  std::vector<double> sigmas;     ///< One per evaluation, then the sigma the last step lands on.
};

/// The grid diffusers' DPMSolverMultistepScheduler and UniPCMultistepScheduler set for
/// num_inference_steps steps.
/// @throws ldm::Error when num_inference_steps is not in [1, T], steps_offset is negative or
///         pushes a timestep to T or beyond, or the spacing would visit a timestep twice (then two
///         sigmas are equal and the solver divides by their log-ratio)
inline MultistepGrid multistep_grid(const Schedule& schedule, const MultistepGridConfig& config,
                                    int num_inference_steps) {
  const int T = schedule.num_train_timesteps(), n = num_inference_steps;
  if (n < 1 || n > T)
    fail_expected("num_inference_steps", "a count in [1, " + std::to_string(T) + "]", n);
  if (config.steps_offset < 0) fail_expected("steps_offset", "a value >= 0", config.steps_offset);
  const std::vector<double> train_sigmas = schedule_sigmas(schedule);
  MultistepGrid grid;
  if (config.use_karras_sigmas) {
    std::vector<double> log_sigmas(train_sigmas.size());
    std::ranges::transform(train_sigmas, log_sigmas.begin(), [](double s) { return std::log(s); });
    grid.sigmas = karras_sigmas(train_sigmas.front(), train_sigmas.back(), n);
    for (double sigma : grid.sigmas) {
      const double t = sigma_to_timestep(sigma, log_sigmas);
      grid.timesteps.push_back(config.round_karras_timesteps ? detail::round_half_even(t)
                                                             : std::trunc(t));
    }
  } else {
    const int last = std::min(config.last_timestep, T);
    for (int i = n; i >= 1; --i) {
      double t = 0;
      switch (config.spacing) {
        case TimestepSpacing::leading:
          t = double(i * (last / (n + 1)) + config.steps_offset);
          break;
        case TimestepSpacing::trailing: {
          // numpy's arange(last, 0, -T / n) fills last + k * delta, delta = (last - T / n) - last;
          // volatile keeps a compiler from fusing the two roundings into one FMA.
          const double start = last, delta = (start - double(T) / n) - start;
          volatile double offset = (n - i) * delta;
          if (!(start + offset > 0)) continue;  // arange stops before 0
          t = detail::round_half_even(start + offset) - 1;
          break;
        }
        case TimestepSpacing::linspace: {
          // numpy's linspace(0, last - 1, n + 1)[i], the last point exact, then rounded.
          const double step = double(last - 1) / n;
          t = i == n ? double(last - 1) : double(detail::round_half_even(i * step));
          break;
        }
      }
      grid.timesteps.push_back(t);
    }
    for (std::size_t k = 0; k < grid.timesteps.size(); ++k) {
      if (grid.timesteps[k] >= T)
        fail_expected("steps_offset", "a value that keeps the timesteps below " + std::to_string(T),
                      config.steps_offset);
      if (k > 0 && !(grid.timesteps[k] < grid.timesteps[k - 1]))
        fail_expected("num_inference_steps",
                      "a count whose " + std::string(to_string(config.spacing)) +
                          " timesteps are distinct (timestep " +
                          std::to_string(int(grid.timesteps[k])) + " repeats)",
                      n);
      grid.sigmas.push_back(interpolate(train_sigmas, grid.timesteps[k]));
    }
    if (grid.timesteps.empty())
      fail_expected("num_inference_steps", "a count that leaves a timestep to visit", n);
  }
  // With Karras sigmas the last one is already sigma_min (diffusers' UniPC repeats it, its
  // DPM-Solver recomputes it from abar_0: they agree to rounding).
  const double sigma_min = config.use_karras_sigmas ? grid.sigmas.back() : train_sigmas.front();
  grid.sigmas.push_back(config.final_sigmas_type == FinalSigmasType::zero ? 0.0 : sigma_min);
  return grid;
}

/// log(alpha / sigma) of the variance-preserving sample at noise-to-signal ratio sigma: the
/// "time" the multistep solvers step in (+infinity at sigma = 0).
inline double half_log_snr(double sigma) {
  return -std::log(sigma);
}

}  // namespace ldm::diffusion
