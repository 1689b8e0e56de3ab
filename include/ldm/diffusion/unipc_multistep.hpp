#pragma once
/// @file
/// UniPC (Zhao et al., 2023) as diffusers' UniPCMultistepScheduler with predict_x0: a predictor
/// (UniP) that steps in lambda = -log sigma from the x0 predictions of up to solver_order
/// evaluations, as DPM-Solver++ does (ldm/diffusion/dpm_solver_multistep.hpp), and a corrector
/// (UniC) that, once the model has been evaluated at the predicted sample, redoes the previous
/// step with that evaluation too before predicting the next:
/// @verbatim
///   x_t = (sigma_t / sigma_s) x_s - alpha_t (e^-h - 1) m0 - alpha_t B(h) sum_k rho_k D_k,
/// @endverbatim
/// D_k the divided differences of the x0 predictions m, rho_k solving the order conditions, and
/// B(h) = e^-h - 1 (bh2) or -h (bh1). The first steps have lower order for want of history; with
/// lower_order_final the last ones too. A step is deterministic: it never reads its noise operand.
/// The x0 predictions and the sample the last predictor started from live in the caller's State,
/// so a trajectory can start at any evaluation with a fresh one (image-to-image), as diffusers'
/// set_begin_index does. Not implemented, and refused where they are settings: predict_x0 false,
/// a solver_p, thresholding, and the exponential, beta and flow sigmas.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

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

/// UniPC's B(h), which sets how the correction terms are weighted.
enum class UniPCSolverType {
  bh1,  ///< B(h) = -h, for unconditional sampling
  bh2   ///< B(h) = e^-h - 1 (diffusers' default, for guided sampling)
};

/// UniPCSolverType's names in diffusers' configs, under the key solver_type.
constexpr EnumNames<UniPCSolverType, 2> diffusers_names(UniPCSolverType) {
  return {"solver_type", {{{"bh1", UniPCSolverType::bh1}, {"bh2", UniPCSolverType::bh2}}}};
}

/// UniPCMultistepScheduler's settings ldm implements; the defaults are diffusers'.
struct UniPCMultistepConfig {
  PredictionType prediction_type = PredictionType::epsilon;  ///< How to read the model's output.
  int solver_order = 2;                                ///< 1, 2 or 3: x0 predictions per step.
  UniPCSolverType solver_type = UniPCSolverType::bh2;  ///< B(h).
  bool lower_order_final = true;  ///< Lower the order of the last steps to the steps left.
  /// The steps whose sample is not corrected after the next evaluation (by index, from 0).
  std::vector<int> disable_corrector = {};
  bool use_karras_sigmas = false;  ///< Karras et al.'s sigmas in place of the spacing's.
  FinalSigmasType final_sigmas_type = FinalSigmasType::zero;     ///< The sigma after the last step.
  TimestepSpacing timestep_spacing = TimestepSpacing::linspace;  ///< Which timesteps to visit.
  int steps_offset = 0;  ///< Added to the `leading` timesteps (>= 0).
};

/// What one UniPC trajectory carries from step to step.
template <ShapeType S, class Space>
struct UniPCMultistepState {
  /// The latest x0 predictions, the newest last (as many as the order uses).
  std::array<Tensor<float, S, Space>, 3> x0;
  Tensor<float, S, Space> last_sample;  ///< The sample the last predictor step started from.
  int held = 0;          ///< How many of x0 are from this trajectory (diffusers' lower_order_nums).
  int last_order = 0;    ///< The order of the last predictor step, which its corrector takes.
  std::size_t next = 0;  ///< The evaluation the next step must be (when held > 0).
};

/// A UniP or UniC update: start * (its start sample) + sum_k x0[k] * (k-th newest x0 prediction),
/// plus, for UniC, current * (the x0 prediction of the evaluation that corrects it).
struct UniPCUpdate {
  int order = 1;                         ///< How many earlier x0 predictions it combines.
  double start = 0;                      ///< The coefficient of the sample the step starts from.
  std::array<double, 3> x0 = {0, 0, 0};  ///< The newest earlier x0's, then older ones'.
  double current = 0;                    ///< UniC's: the correcting evaluation's x0's.
};

namespace detail {
// The solution of the k x k system a x = b (k <= 3), by Gaussian elimination with partial
// pivoting.
inline std::array<double, 3> solve(std::array<std::array<double, 3>, 3> a, std::array<double, 3> b,
                                   int k) {
  for (int col = 0; col < k; ++col) {
    int pivot = col;
    for (int row = col + 1; row < k; ++row)
      if (std::abs(a[row][col]) > std::abs(a[pivot][col])) pivot = row;
    std::swap(a[col], a[pivot]);
    std::swap(b[col], b[pivot]);
    for (int row = col + 1; row < k; ++row) {
      const double f = a[row][col] / a[col][col];
      for (int c = col; c < k; ++c)
        a[row][c] -= f * a[col][c];
      b[row] -= f * b[col];
    }
  }
  std::array<double, 3> x{};
  for (int row = k - 1; row >= 0; --row) {
    double sum = b[row];
    for (int c = row + 1; c < k; ++c)
      sum -= a[row][c] * x[c];
    x[row] = sum / a[row][row];
  }
  return x;
}
}  // namespace detail

/// The UniPC multistep sampler (diffusers' UniPCMultistepScheduler, predict_x0).
class UniPCMultistep : public MultistepSolver<UniPCMultistepConfig> {
 public:
  /// A sampler taking num_inference_steps steps over `schedule`.
  /// @throws ldm::Error when num_inference_steps is not in [1, T] (or leaves timesteps that
  ///         repeat), solver_order is not 1, 2 or 3, steps_offset is invalid, or lower_order_final
  ///         is off with final_sigmas_type zero and solver_order above 1 (the last step would then
  ///         divide by its infinite length, giving diffusers NaNs)
  UniPCMultistep(Schedule schedule, const UniPCMultistepConfig& config, int num_inference_steps)
      : MultistepSolver(std::move(schedule), config) {
    if (!config.lower_order_final && config.solver_order > 1 &&
        config.final_sigmas_type == FinalSigmasType::zero)
      fail_expected("lower_order_final",
                    "true with final_sigmas_type zero and solver_order " +
                        std::to_string(config.solver_order) +
                        " (a higher-order last step to sigma 0 is not finite)",
                    "false");
    set_grid(num_inference_steps);
  }

  /// The x0 predictions and last sample a trajectory carries from step to step.
  template <ShapeType S, class Space>
  using State = UniPCMultistepState<S, Space>;

  /// The order of the predictor at evaluation i when `held` x0 predictions (the current one
  /// included) are at hand: solver_order, less at the start and with lower_order_final at the end.
  int order_at(std::size_t i, int held) const {
    int order = std::min(config_.solver_order, held);
    if (config_.lower_order_final)
      order = std::min(order, int(grid_.timesteps.size() - std::min(i, grid_.timesteps.size())));
    return order;
  }

  /// UniP's coefficients for the step at evaluation i of the given order (at most i + 1), from
  /// the sample at sigmas()[i] with x0 predictions of evaluations i, i - 1...
  /// @throws ldm::Error when i is not below timesteps().size() or the order is out of range
  UniPCUpdate predictor(std::size_t i, int order) const { return update(i, i + 1, order, false); }
  /// UniC's coefficients for correcting the sample at evaluation i (> 0), which the predictor of
  /// the given order reached from evaluation i - 1, with the x0 prediction of evaluation i.
  /// @throws ldm::Error when i is 0 or not below timesteps().size(), or the order is out of range
  UniPCUpdate corrector(std::size_t i, int order) const {
    if (i == 0) fail_expected("evaluation", "one after the first, to correct", i);
    sigma_at(i);
    return update(i - 1, i, order, true);
  }

  /// The sampler contract's step: corrects the sample with this evaluation (when the State holds
  /// the previous step and the corrector is not disabled there), records this evaluation's x0
  /// prediction, then predicts the sample at the next sigma. `noise` is never read. prev_sample
  /// may alias sample.
  /// @throws ldm::Error when i is not below timesteps().size(), or `state` holds a step other
  ///         than i - 1 (a State serves one trajectory, in order)
  template <ShapeType S, class Space, NoiseOperand Noise>
  void step(std::size_t i, State<S, Space>& state, View<const float, S, Space> model_output,
            View<const float, S, Space> sample, const Noise&,
            View<float, S, Space> prev_sample) const {
    const auto x0 = predicted_x0_at(i, model_output, sample);
    detail::check_in_order(state, i, "UniPCMultistep");
    auto& last = state.last_sample;
    if (state.held > 0 && std::ranges::find(config_.disable_corrector, int(i) - 1) ==
                              config_.disable_corrector.end()) {
      const UniPCUpdate c = corrector(i, state.last_order);
      detail::assign_multistep(last, c.start * in_double(last) + c.current * x0, c.order, c.x0,
                               state.x0);
    } else {
      last = sample;
    }
    detail::record_x0(state, i, x0);
    state.last_order = order_at(i, state.held);
    const UniPCUpdate p = predictor(i, state.last_order);
    detail::assign_multistep(prev_sample, p.start * in_double(last), p.order, p.x0, state.x0);
  }

 private:
  // The step from sigmas[s] to sigmas[t] with the x0 predictions of evaluations s, s - 1...
  // (order of them); a corrector also weighs the x0 prediction at t.
  UniPCUpdate update(std::size_t s, std::size_t t, int order, bool correct) const {
    check_order(s, order);
    const double sigma_s0 = sigma_at(s), sigma_t = grid_.sigmas[t];
    const double alpha_t = vp_noise_level(sigma_t).signal;
    const double hh = half_log_snr(sigma_s0) - half_log_snr(sigma_t);  // -h
    // A step of length 0 (the last one of a Karras grid to sigma_min, which is its last sigma
    // already) keeps the sample: the limit of every order's formula, where 0 / 0 would be NaN.
    if (hh == 0) return {.order = order, .start = 1};
    const double h_phi_1 = std::expm1(hh);
    const double b_h = config_.solver_type == UniPCSolverType::bh1 ? hh : std::expm1(hh);
    // The ratios r_k of the earlier points' lambda steps to h, then 1 for the point at t.
    std::array<double, 3> r{1, 1, 1};
    for (int k = 1; k < order; ++k)
      r[std::size_t(k - 1)] =
          (half_log_snr(sigma_s0) - half_log_snr(sigma_at(s - std::size_t(k)))) / hh;
    r[std::size_t(order - 1)] = 1;
    // The order conditions: sum_k rho_k r_k^j = b_j, with b_j from the phi functions of -h.
    std::array<double, 3> b{};
    std::array<std::array<double, 3>, 3> powers{};
    double h_phi_k = h_phi_1 / hh - 1, factorial = 1;
    for (int j = 0; j < order; ++j) {
      b[std::size_t(j)] = h_phi_k * factorial / b_h;
      factorial *= j + 2;
      h_phi_k = h_phi_k / hh - 1 / factorial;
      for (int k = 0; k < order; ++k)
        powers[std::size_t(j)][std::size_t(k)] = std::pow(r[std::size_t(k)], j);
    }
    std::array<double, 3> rho{0.5, 0, 0};
    // diffusers fixes rho at 1/2 where only one is free (UniP-2, UniC-1) rather than solving.
    if (correct ? order > 1 : order > 2)
      rho = detail::solve(powers, b, correct ? order : order - 1);
    UniPCUpdate u{.order = order,
                  .start = vp_noise_level(sigma_t).noise / vp_noise_level(sigma_s0).noise};
    u.x0[0] = -alpha_t * h_phi_1;
    // D_k = (m_k - m0) / r_k for the earlier points, and UniC's D_t = m_t - m0.
    for (int k = 1; k < order; ++k) {
      const double w = -alpha_t * b_h * rho[std::size_t(k - 1)] / r[std::size_t(k - 1)];
      u.x0[std::size_t(k)] += w;
      u.x0[0] -= w;
    }
    if (correct) {
      const double w = -alpha_t * b_h * rho[std::size_t(order - 1)];
      u.current = w;
      u.x0[0] -= w;
    }
    return u;
  }
};

}  // namespace ldm::diffusion
