#pragma once
/// @file
/// DPM-Solver++ (Lu et al., 2022), multistep, as diffusers' DPMSolverMultistepScheduler with
/// algorithm_type "dpmsolver++": each evaluation's output is turned into a prediction of x0, and
/// the step from sigma_s to sigma_t integrates the probability-flow ODE in lambda = -log sigma,
/// with the x0 predictions of up to solver_order evaluations as a polynomial:
/// @verbatim
///   h = lambda_t - lambda_s,  x_t = (sigma_t / sigma_s) x_s - alpha_t (e^-h - 1) D0 + ...
/// @endverbatim
/// (sigma, alpha: the variance-preserving noise and signal; D0, D1, D2: the newest x0 and its
/// divided differences). The first steps of a trajectory are of lower order for want of history,
/// and with lower_order_final the last ones too. A step is deterministic: it never reads its
/// noise operand. The earlier x0 predictions live in the caller's State, so a trajectory can start
/// at any evaluation with a fresh one (image-to-image), as diffusers' set_begin_index does.
/// Not implemented, and refused where they are settings: the "dpmsolver" and SDE algorithms,
/// thresholding, learned variances, and the exponential, beta, Lu-lambda and flow sigmas.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>
#include <string_view>
#include <utility>

#include "ldm/core/error.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/diffusion/forward_process.hpp"
#include "ldm/diffusion/multistep_grid.hpp"
#include "ldm/diffusion/multistep_solver.hpp"
#include "ldm/diffusion/sampler.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/diffusion/sigmas.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::diffusion {

/// How DPM-Solver++ uses the previous x0 prediction in a second-order step.
enum class DPMSolverType {
  midpoint,  ///< the midpoint rule (diffusers' default)
  heun       ///< Heun's rule
};

/// DPMSolverType's names in diffusers' configs, under the key solver_type.
constexpr EnumNames<DPMSolverType, 2> diffusers_names(DPMSolverType) {
  return {"solver_type", {{{"midpoint", DPMSolverType::midpoint}, {"heun", DPMSolverType::heun}}}};
}

/// DPMSolverMultistepScheduler's settings ldm implements; the defaults are diffusers'.
struct DPMSolverMultistepConfig {
  PredictionType prediction_type = PredictionType::epsilon;  ///< How to read the model's output.
  int solver_order = 2;                                 ///< 1, 2 or 3: x0 predictions per step.
  DPMSolverType solver_type = DPMSolverType::midpoint;  ///< The second-order rule.
  /// Lower the order of the last steps when there are fewer than 15 (more stable).
  bool lower_order_final = true;
  bool euler_at_final = false;     ///< First order for the last step, whatever the step count.
  bool use_karras_sigmas = false;  ///< Karras et al.'s sigmas in place of the spacing's.
  FinalSigmasType final_sigmas_type = FinalSigmasType::zero;  ///< The sigma after the last step.
  /// The spacings skip the timesteps whose lambda = log(alpha / sigma) is below this (useful for
  /// squaredcos_cap_v2); -infinity skips none.
  double lambda_min_clipped = -std::numeric_limits<double>::infinity();
  TimestepSpacing timestep_spacing = TimestepSpacing::linspace;  ///< Which timesteps to visit.
  int steps_offset = 0;  ///< Added to the `leading` timesteps (>= 0).
};

/// The x0 predictions of the latest evaluations of one DPM-Solver++ trajectory.
template <ShapeType S, class Space>
struct DPMSolverMultistepState {
  /// The latest x0 predictions, the newest last (as many as the order uses).
  std::array<Tensor<float, S, Space>, 3> x0;
  int held = 0;          ///< How many of x0 are from this trajectory (diffusers' lower_order_nums).
  std::size_t next = 0;  ///< The evaluation the next step must be (when held > 0).
};

/// One step's update: x_t = sample * sample + sum_k x0[k] * (the k-th newest x0 prediction).
struct MultistepUpdate {
  int order = 1;                         ///< How many x0 predictions it combines.
  double sample = 0;                     ///< The coefficient of the current sample.
  std::array<double, 3> x0 = {0, 0, 0};  ///< The coefficients of the newest x0, then older ones.
};

/// The DPM-Solver++ multistep sampler (diffusers' DPMSolverMultistepScheduler).
class DPMSolverMultistep : public MultistepSolver<DPMSolverMultistepConfig> {
 public:
  /// A sampler taking num_inference_steps steps over `schedule`.
  /// @throws ldm::Error when num_inference_steps is not in [1, T] (or leaves timesteps that repeat
  ///         or none), solver_order is not 1, 2 or 3, steps_offset is invalid, or
  ///         lambda_min_clipped is NaN or +infinity
  DPMSolverMultistep(Schedule schedule, const DPMSolverMultistepConfig& config,
                     int num_inference_steps)
      : MultistepSolver(std::move(schedule), config) {
    if (std::isnan(config.lambda_min_clipped) || config.lambda_min_clipped == INFINITY)
      fail_expected("lambda_min_clipped", "a number or -infinity", config.lambda_min_clipped);
    int clipped = 0;
    for (double abar : schedule_.alphas_cumprod())
      clipped += 0.5 * std::log(abar / (1 - abar)) < config.lambda_min_clipped;
    set_grid(num_inference_steps, {.round_karras_timesteps = schedule_.config().beta_schedule !=
                                                             BetaSchedule::squaredcos_cap_v2,
                                   .last_timestep = schedule_.num_train_timesteps() - clipped});
  }

  /// The x0 predictions a trajectory carries from step to step.
  template <ShapeType S, class Space>
  using State = DPMSolverMultistepState<S, Space>;

  /// The order of the step at evaluation i when `held` x0 predictions (the current one included)
  /// are at hand: solver_order, less at the start and, as diffusers decides, at the end.
  int order_at(std::size_t i, int held) const {
    const std::size_t n = grid_.timesteps.size();
    const bool few = config_.lower_order_final && n < 15;
    int order = std::min(config_.solver_order, held);
    if (i + 1 == n &&
        (config_.euler_at_final || few || config_.final_sigmas_type == FinalSigmasType::zero))
      order = 1;
    if (i + 2 == n && few) order = std::min(order, 2);
    return order;
  }

  /// The coefficients of the step at evaluation i of the given order (at most i + 1).
  /// @throws ldm::Error when i is not below timesteps().size() or the order is out of range
  MultistepUpdate update(std::size_t i, int order) const {
    check_order(i, order);
    const double sigma_s0 = sigma_at(i), sigma_t = grid_.sigmas[i + 1];
    const double alpha_t = vp_noise_level(sigma_t).signal;
    const double h = half_log_snr(sigma_t) - half_log_snr(sigma_s0);
    // A step of length 0 (the last one of a Karras grid to sigma_min, which is its last sigma
    // already) keeps the sample: the limit of every order's formula, where 0 / 0 would be NaN.
    if (h == 0) return {.order = order, .sample = 1};
    const double phi1 = -alpha_t * std::expm1(-h);  // the coefficient of D0
    MultistepUpdate u{.order = order,
                      .sample = vp_noise_level(sigma_t).noise / vp_noise_level(sigma_s0).noise};
    u.x0[0] = phi1;
    if (order == 1) return u;
    // D1 = (m0 - m1) / r0 (and with a third point, the second difference D2).
    const double r0 = (half_log_snr(sigma_s0) - half_log_snr(sigma_at(i - 1))) / h;
    const double phi2 = alpha_t * (std::expm1(-h) / h + 1);
    if (order == 2) {
      const double d1 = config_.solver_type == DPMSolverType::midpoint ? 0.5 * phi1 : phi2;
      u.x0[0] += d1 / r0;
      u.x0[1] -= d1 / r0;
      return u;
    }
    const double r1 = (half_log_snr(sigma_at(i - 1)) - half_log_snr(sigma_at(i - 2))) / h;
    const double phi3 = -alpha_t * ((std::expm1(-h) + h) / (h * h) - 0.5);
    // D1_0 = (m0 - m1) / r0, D1_1 = (m1 - m2) / r1, D1 = D1_0 + r0 / (r0 + r1) (D1_0 - D1_1),
    // D2 = (D1_0 - D1_1) / (r0 + r1): x0's coefficients through D1_0 and D1_1.
    const double on_d10 = phi2 * (1 + r0 / (r0 + r1)) + phi3 / (r0 + r1);
    const double on_d11 = -phi2 * r0 / (r0 + r1) - phi3 / (r0 + r1);
    u.x0[0] += on_d10 / r0;
    u.x0[1] += -on_d10 / r0 + on_d11 / r1;
    u.x0[2] += -on_d11 / r1;
    return u;
  }

  /// The sampler contract's step: records this evaluation's x0 prediction in `state`, then steps
  /// to the next sigma. `noise` is never read. prev_sample may alias sample.
  /// @throws ldm::Error when i is not below timesteps().size(), or `state` holds predictions
  ///         from an evaluation other than i - 1 (a State serves one trajectory, in order)
  template <ShapeType S, class Space, NoiseOperand Noise>
  void step(std::size_t i, State<S, Space>& state, View<const float, S, Space> model_output,
            View<const float, S, Space> sample, const Noise&,
            View<float, S, Space> prev_sample) const {
    const auto x0 = predicted_x0_at(i, model_output, sample);
    detail::check_in_order(state, i, "DPMSolverMultistep");
    detail::record_x0(state, i, x0);
    const MultistepUpdate u = update(i, order_at(i, state.held));
    detail::assign_multistep(prev_sample, u.sample * in_double(sample), u.order, u.x0, state.x0);
  }
};

}  // namespace ldm::diffusion
