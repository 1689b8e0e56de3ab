#pragma once
/// @file
/// Beta schedules under diffusers' names, and the timesteps a sampler visits.
///
/// Everything here is computed in double on the host: the values are diffusers' formulas without
/// its float32 rounding (its float32 cumulative product drifts by up to ~1e-5 relative for
/// squaredcos_cap_v2). Samplers turn them into a few per-step scalars, so nothing of this size
/// ever reaches a kernel.
///
/// A run-time configuration (say, from a scheduler_config.json) names its choices in strings;
/// parse_name<BetaSchedule> and parse_name<TimestepSpacing> (diffusion/names.hpp) turn them into
/// enums, and an unknown name is an ldm::Error naming the field and the accepted values.

#include <algorithm>
#include <array>
#include <cassert>
#include <cmath>
#include <concepts>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/diffusion/names.hpp"

namespace ldm::diffusion {

/// diffusers' beta_schedule names.
enum class BetaSchedule {
  linear,            ///< betas evenly spaced from beta_start to beta_end (DDPM's)
  scaled_linear,     ///< square roots evenly spaced, then squared (Stable Diffusion's)
  squaredcos_cap_v2  ///< the cosine schedule of improved DDPM, betas capped at 0.999
};

/// How set_timesteps spreads the inference steps over the training timesteps (Table 2 of Lin et
/// al., "Common Diffusion Noise Schedules and Sample Steps are Flawed"); spaced_timesteps() gives
/// the formulas.
enum class TimestepSpacing {
  leading,   ///< multiples of T / n from 0 (diffusers' default)
  trailing,  ///< counted down from T - 1
  linspace   ///< evenly spaced from 0 to T - 1
};

/// BetaSchedule's names in diffusers' configs, under the key beta_schedule.
constexpr EnumNames<BetaSchedule, 3> diffusers_names(BetaSchedule) {
  return {"beta_schedule",
          {{{"linear", BetaSchedule::linear},
            {"scaled_linear", BetaSchedule::scaled_linear},
            {"squaredcos_cap_v2", BetaSchedule::squaredcos_cap_v2}}}};
}
/// TimestepSpacing's names in diffusers' configs, under the key timestep_spacing.
constexpr EnumNames<TimestepSpacing, 3> diffusers_names(TimestepSpacing) {
  return {"timestep_spacing",
          {{{"leading", TimestepSpacing::leading},
            {"trailing", TimestepSpacing::trailing},
            {"linspace", TimestepSpacing::linspace}}}};
}

/// A beta schedule as diffusers' scheduler configs state it; the defaults are diffusers'.
/// beta_start and beta_end are the first and last beta of `linear`, and the
/// squares of the ends of `scaled_linear`'s linspace; squaredcos_cap_v2 ignores them.
struct ScheduleConfig {
  BetaSchedule beta_schedule = BetaSchedule::linear;  ///< The formula.
  int num_train_timesteps = 1000;                     ///< T: the timesteps are [0, T).
  double beta_start = 0.0001;                         ///< The first beta, in (0, 1).
  double beta_end = 0.02;                             ///< The last beta, in (0, 1).
};

/// A schedule fixed at compile time is a type with `static constexpr ScheduleConfig config`:
/// the ones below, or a user's own, e.g. for other beta ends:
/// @code{.cpp}
///   struct Steeper { static constexpr ldm::diffusion::ScheduleConfig config{
///       ldm::diffusion::BetaSchedule::linear, 1000, 1e-4, 3e-2}; };
/// @endcode
template <class S>
concept ScheduleSpec = requires {
  { S::config } -> std::convertible_to<ScheduleConfig>;
};

/// DDPM's schedule (Ho et al.): betas from 1e-4 to 2e-2.
/// @tparam T num_train_timesteps (positive)
template <int T = 1000>
struct LinearBetas {
  static_assert(T > 0, "ldm::diffusion::LinearBetas: T must be positive");
  static constexpr ScheduleConfig config{BetaSchedule::linear, T, 1e-4, 2e-2};  ///< The schedule.
};
/// Stable Diffusion's schedule (latent diffusion calls it "linear"): linspace of square roots.
/// @tparam T num_train_timesteps (positive)
template <int T = 1000>
struct ScaledLinearBetas {
  static_assert(T > 0, "ldm::diffusion::ScaledLinearBetas: T must be positive");
  /// The schedule: square roots from sqrt(0.00085) to sqrt(0.012).
  static constexpr ScheduleConfig config{BetaSchedule::scaled_linear, T, 0.00085, 0.012};
};
/// The cosine schedule of improved DDPM (Nichol and Dhariwal), betas capped at 0.999.
/// @tparam T num_train_timesteps (positive)
template <int T = 1000>
struct SquaredCosCapV2Betas {
  static_assert(T > 0, "ldm::diffusion::SquaredCosCapV2Betas: T must be positive");
  static constexpr ScheduleConfig config{BetaSchedule::squaredcos_cap_v2, T};  ///< The schedule.
};

namespace detail {
// torch.linspace's formula: the first half counts up from start, the second half down from end,
// so both ends are exact. A single value is start.
inline std::vector<double> linspace(double start, double end, int count) {
  if (count == 1) return {start};
  std::vector<double> values(static_cast<std::size_t>(count));
  const double step = (end - start) / (count - 1);
  for (int i = 0; i < count; ++i)
    values[std::size_t(i)] = i < count / 2 ? start + step * i : end - step * (count - 1 - i);
  return values;
}

// diffusers' betas_for_alpha_bar with the cosine alpha_bar (offset s = 0.008), evaluated in the
// same order as there so that the doubles agree.
inline std::vector<double> squaredcos_cap_v2_betas(int count) {
  constexpr double kPi = 3.141592653589793, kMaxBeta = 0.999;
  auto alpha_bar = [](double t) {
    const double c = std::cos((t + 0.008) / 1.008 * kPi / 2);
    return c * c;
  };
  std::vector<double> betas(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const double t1 = double(i) / count, t2 = double(i + 1) / count;
    betas[std::size_t(i)] = std::min(1 - alpha_bar(t2) / alpha_bar(t1), kMaxBeta);
  }
  return betas;
}

inline void check_beta(const char* field, double beta) {
  if (!(beta > 0 && beta < 1)) fail_expected(field, "a value in (0, 1)", beta);
}
}  // namespace detail

/// betas, alphas = 1 - betas and alphas_cumprod (abar_t = prod_{s <= t} alpha_s) for t in [0, T).
class Schedule {
 public:
  /// The tables of `config`.
  /// @throws ldm::Error when num_train_timesteps is below 1, or (for linear and scaled_linear)
  ///         beta_start or beta_end is not in (0, 1)
  explicit Schedule(const ScheduleConfig& config = {}) : Schedule(config, {}) {}

  /// A schedule of explicit betas, as diffusers' `trained_betas` (which then take the place of
  /// `config`'s beta_schedule, beta_start and beta_end); empty `trained_betas` means none.
  /// @throws ldm::Error when num_train_timesteps is not positive, when there are trained betas
  /// but not num_train_timesteps of them, or when a beta is outside (0, 1).
  Schedule(const ScheduleConfig& config, std::span<const double> trained_betas) : config_(config) {
    const int count = config.num_train_timesteps;
    if (count < 1) fail_expected("num_train_timesteps", "a positive count", count);
    if (!trained_betas.empty()) {
      if (trained_betas.size() != std::size_t(count))
        fail_expected("trained_betas", std::to_string(count) + " values (num_train_timesteps)",
                      std::to_string(trained_betas.size()) + " values");
      for (std::size_t t = 0; t < trained_betas.size(); ++t)
        detail::check_beta(("trained_betas[" + std::to_string(t) + "]").c_str(), trained_betas[t]);
      betas_.assign(trained_betas.begin(), trained_betas.end());
    } else {
      betas_from_config();
    }
    double running = 1;
    for (double beta : betas_) {
      alphas_.push_back(1 - beta);
      running *= 1 - beta;
      alphas_cumprod_.push_back(running);
    }
  }

  /// The schedule of a compile-time Spec such as LinearBetas<1000>.
  template <ScheduleSpec Spec>
  static Schedule of() {
    return Schedule(Spec::config);
  }

  const ScheduleConfig& config() const { return config_; }                 ///< The configuration.
  int num_train_timesteps() const { return config_.num_train_timesteps; }  ///< T.
  std::span<const double> betas() const { return betas_; }    ///< beta_t for t in [0, T).
  std::span<const double> alphas() const { return alphas_; }  ///< 1 - beta_t.
  std::span<const double> alphas_cumprod() const { return alphas_cumprod_; }  ///< abar_t.

  /// abar_t. A timestep handed in by a caller (a training batch, a sampler step) is checked
  /// here, since past the end it would read outside the table.
  /// @throws ldm::Error when t is not in [0, T)
  double alpha_cumprod(int t) const {
    if (t < 0 || t >= num_train_timesteps())
      fail_expected("timestep", "a value in [0, " + std::to_string(num_train_timesteps()) + ")", t);
    return alphas_cumprod_[std::size_t(t)];
  }

 private:
  void betas_from_config() {
    const ScheduleConfig& config = config_;
    const int count = config.num_train_timesteps;
    switch (config.beta_schedule) {
      case BetaSchedule::linear:
        detail::check_beta("beta_start", config.beta_start);
        detail::check_beta("beta_end", config.beta_end);
        betas_ = detail::linspace(config.beta_start, config.beta_end, count);
        break;
      case BetaSchedule::scaled_linear:
        detail::check_beta("beta_start", config.beta_start);
        detail::check_beta("beta_end", config.beta_end);
        betas_ = detail::linspace(std::sqrt(config.beta_start), std::sqrt(config.beta_end), count);
        for (double& beta : betas_)
          beta *= beta;
        break;
      case BetaSchedule::squaredcos_cap_v2:
        betas_ = detail::squaredcos_cap_v2_betas(count);
        break;
    }
  }

  ScheduleConfig config_;
  std::vector<double> betas_, alphas_, alphas_cumprod_;
};

namespace detail {
// numpy.round: to nearest, ties to even.
inline int round_half_even(double x) {
  const double floor = std::floor(x), fraction = x - floor;
  const double rounded =
      fraction > 0.5 || (fraction == 0.5 && std::fmod(floor, 2.0) != 0) ? floor + 1 : floor;
  return int(rounded);
}
}  // namespace detail

/// The timesteps set_timesteps(num_inference_steps) gives in diffusers, in the order a sampler
/// visits them (descending):
/// - leading:  (0, r, 2r, ..., (n-1) r) + steps_offset with r = T / n (integer division);
/// - trailing: round(T - i T/n) - 1 for i in [0, n), steps_offset ignored as diffusers does;
/// - linspace: round(linspace(0, T - 1, n)), steps_offset ignored.
///
/// The values follow numpy's arithmetic (arange as start + i * delta, ties to even), so they agree
/// with diffusers exactly where a value lands on .5. Where numpy's float-step arange yields one
/// value too many (trailing for 62 of the counts 1..1000 when T = 1000, e.g. 61), diffusers ends
/// with a timestep of -1; here there are always n timesteps.
/// @throws ldm::Error when num_inference_steps is not in [1, T], or steps_offset is negative or
///         puts a timestep at T or above
inline std::vector<int> spaced_timesteps(TimestepSpacing spacing, int num_train_timesteps,
                                         int num_inference_steps, int steps_offset) {
  const int T = num_train_timesteps, n = num_inference_steps;
  if (n < 1 || n > T)
    fail_expected("num_inference_steps", "a count in [1, " + std::to_string(T) + "]", n);
  if (steps_offset < 0) fail_expected("steps_offset", "a value >= 0", steps_offset);
  std::vector<int> timesteps(static_cast<std::size_t>(n));
  switch (spacing) {
    case TimestepSpacing::leading:
      for (int i = 0; i < n; ++i)
        timesteps[std::size_t(i)] = (n - 1 - i) * (T / n) + steps_offset;
      break;
    case TimestepSpacing::trailing: {
      // numpy's arange(T, 0, -T/n) fills start + i * delta with delta = (start + step) - start.
      // volatile keeps a compiler from fusing the two roundings into one FMA.
      const double start = T, delta = (start - double(T) / n) - start;
      for (int i = 0; i < n; ++i) {
        volatile double offset = i * delta;
        timesteps[std::size_t(i)] = detail::round_half_even(start + offset) - 1;
      }
      break;
    }
    case TimestepSpacing::linspace: {
      const double step = n > 1 ? double(T - 1) / (n - 1) : 0.0;
      for (int i = 0; i < n; ++i)
        timesteps[std::size_t(n - 1 - i)] =
            i == n - 1 && n > 1 ? T - 1 : detail::round_half_even(i * step);
      break;
    }
  }
  if (timesteps.front() >= T)
    fail_expected("steps_offset", "a value that keeps the timesteps below " + std::to_string(T),
                  steps_offset);
  return timesteps;
}

}  // namespace ldm::diffusion
