#pragma once
/// @file
/// Noise levels as sigmas, the language of the Euler, Heun, DPM-Solver and UniPC samplers:
/// sigma_t = sqrt((1 - abar_t) / abar_t) is the noise-to-signal ratio of the forward process at t,
/// so x_t / sqrt(abar_t) = x0 + sigma_t eps. The conversions diffusers' schedulers share, in
/// double: the sigmas of a schedule, linear interpolation at fractional timesteps, Karras et al.'s
/// spacing, and a sigma's (fractional) timestep.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/diffusion/sampler.hpp"
#include "ldm/diffusion/schedule.hpp"

namespace ldm::diffusion {

/// sigma_t = sqrt((1 - abar_t) / abar_t) for every training timestep t (ascending in t).
inline std::vector<double> schedule_sigmas(const Schedule& schedule) {
  std::vector<double> sigmas;
  sigmas.reserve(schedule.alphas_cumprod().size());
  for (double abar : schedule.alphas_cumprod())
    sigmas.push_back(std::sqrt((1 - abar) / abar));
  return sigmas;
}

/// The forward process's mix at training timestep t: sqrt(abar_t) and sqrt(1 - abar_t).
/// @throws ldm::Error when t is not in [0, T)
inline NoiseLevel noise_level_at(const Schedule& schedule, int t) {
  const double abar = schedule.alpha_cumprod(t);
  return {.signal = std::sqrt(abar), .noise = std::sqrt(1 - abar)};
}

/// The value at fractional position x of a table sampled at 0, 1, 2...: numpy's
/// interp(x, arange(len(table)), table), which clamps outside the table.
inline double interpolate(std::span<const double> table, double x) {
  if (table.empty()) fail("interpolate: the table is empty");
  if (!(x > 0)) return table.front();
  const double last = double(table.size() - 1);
  if (x >= last) return table.back();
  const auto low = std::size_t(x);
  const double w = x - double(low);
  return table[low] + w * (table[low + 1] - table[low]);
}

/// Karras et al. (2022, eq. 5): n sigmas from sigma_max down to sigma_min, evenly spaced in
/// sigma^(1/rho); rho = 7 as in diffusers.
/// @throws ldm::Error when n < 1 or the bounds are not positive with sigma_min <= sigma_max
inline std::vector<double> karras_sigmas(double sigma_min, double sigma_max, int n,
                                         double rho = 7.0) {
  if (n < 1) fail_expected("num_inference_steps", "at least 1", n);
  if (!(sigma_min > 0 && sigma_min <= sigma_max))
    fail("karras_sigmas: expected 0 < sigma_min <= sigma_max, found sigma_min ", sigma_min,
         " and sigma_max ", sigma_max);
  const double min_inv_rho = std::pow(sigma_min, 1 / rho),
               max_inv_rho = std::pow(sigma_max, 1 / rho);
  std::vector<double> sigmas(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    // numpy's linspace(0, 1, n): i * step, with the last point exactly 1.
    const double ramp = n == 1 ? 0.0 : (i == n - 1 ? 1.0 : i * (1.0 / (n - 1)));
    sigmas[std::size_t(i)] = std::pow(max_inv_rho + ramp * (min_inv_rho - max_inv_rho), rho);
  }
  return sigmas;
}

/// The fractional timestep whose sigma is `sigma`, interpolating linearly in log sigma between
/// the two neighbouring training timesteps, clamped to [0, T - 1] (diffusers' _sigma_to_t).
/// @param log_sigmas log of schedule_sigmas(), ascending in t
inline double sigma_to_timestep(double sigma, std::span<const double> log_sigmas) {
  if (log_sigmas.size() < 2) fail("sigma_to_timestep: the schedule needs at least 2 timesteps");
  const double log_sigma = std::log(std::max(sigma, 1e-10));
  // The last training timestep whose log sigma is at most log_sigma, kept below the end so that
  // it has an upper neighbour.
  std::size_t low = 0;
  for (std::size_t t = 0; t < log_sigmas.size(); ++t)
    if (log_sigma - log_sigmas[t] >= 0) low = t;
  low = std::min(low, log_sigmas.size() - 2);
  const double w =
      std::clamp((log_sigmas[low] - log_sigma) / (log_sigmas[low] - log_sigmas[low + 1]), 0.0, 1.0);
  return (1 - w) * double(low) + w * double(low + 1);
}

/// The variance-preserving sample at noise-to-signal ratio sigma: alpha = 1 / sqrt(1 + sigma^2)
/// and noise sigma * alpha, as diffusers' _sigma_to_alpha_sigma_t. At sigma = 0 it is (1, 0).
inline NoiseLevel vp_noise_level(double sigma) {
  const double alpha = 1 / std::sqrt(sigma * sigma + 1);
  return {.signal = alpha, .noise = sigma * alpha};
}

/// The sigma a sigma sampler ends at (diffusers' final_sigmas_type).
enum class FinalSigmasType {
  zero,      ///< 0: the last step lands on the clean sample (diffusers' default)
  sigma_min  ///< the schedule's smallest sigma, sigma_0
};

/// FinalSigmasType's names in diffusers' configs, under the key final_sigmas_type.
constexpr EnumNames<FinalSigmasType, 2> diffusers_names(FinalSigmasType) {
  return {"final_sigmas_type",
          {{{"zero", FinalSigmasType::zero}, {"sigma_min", FinalSigmasType::sigma_min}}}};
}

}  // namespace ldm::diffusion
