#pragma once
/// @file
/// What diffusers' multistep solvers (DPMSolverMultistepScheduler, UniPCMultistepScheduler) share
/// besides their formulas: the sampler contract's answers on their grid
/// (ldm/diffusion/multistep_grid.hpp), the variance-preserving sample seen as it is, and the
/// history of x0 predictions a trajectory's State carries, which each step extends by its own and
/// combines linearly with a sample.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "ldm/core/error.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/diffusion/forward_process.hpp"
#include "ldm/diffusion/multistep_grid.hpp"
#include "ldm/diffusion/sampler.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/diffusion/sigmas.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::diffusion {

/// The sampler contract's accessors of a multistep solver with settings of type Config; the solver
/// sets the grid in its constructor and takes the steps.
/// @tparam Config its settings, which include prediction_type, solver_order, timestep_spacing,
///         steps_offset, use_karras_sigmas and final_sigmas_type
template <class Config>
class MultistepSolver {
 public:
  /// The timesteps the model is evaluated at, in order (descending; whole numbers).
  std::span<const double> timesteps() const { return grid_.timesteps; }
  /// The sigma of each evaluation, then the one the last step lands on.
  std::span<const double> sigmas() const { return grid_.sigmas; }
  /// How many steps are taken (fewer than asked when DPM-Solver++'s lambda_min_clipped cuts
  /// `trailing` short).
  int num_inference_steps() const { return int(grid_.timesteps.size()); }
  const Schedule& schedule() const { return schedule_; }  ///< The noise schedule.
  const Config& config() const { return config_; }        ///< The settings.
  /// One model evaluation per step.
  int evaluations_per_step() const { return 1; }
  /// Sampling starts from standard normal noise.
  double init_noise_sigma() const { return 1; }
  /// The model sees the sample as it is.
  double input_scale(std::size_t) const { return 1; }
  /// The variance-preserving mix at the i-th evaluation's sigma (diffusers' add_noise).
  /// @throws ldm::Error when i is not below timesteps().size()
  NoiseLevel noise_level(std::size_t i) const { return vp_noise_level(sigma_at(i)); }

 protected:
  /// A solver over `schedule` with these settings, whose constructor then calls set_grid().
  /// @throws ldm::Error when solver_order is not 1, 2 or 3
  MultistepSolver(Schedule schedule, const Config& config)
      : schedule_(std::move(schedule)), config_(config) {
    if (config.solver_order < 1 || config.solver_order > 3)
      fail_expected("solver_order", "1, 2 or 3", config.solver_order);
  }

  /// Sets the grid of num_inference_steps steps: the settings' spacing, steps_offset, Karras
  /// sigmas and final sigma, and the rest of `grid` (the solver's own choices).
  /// @throws ldm::Error as multistep_grid()
  void set_grid(int num_inference_steps, MultistepGridConfig grid = {}) {
    grid.spacing = config_.timestep_spacing;
    grid.steps_offset = config_.steps_offset;
    grid.use_karras_sigmas = config_.use_karras_sigmas;
    grid.final_sigmas_type = config_.final_sigmas_type;
    grid_ = multistep_grid(schedule_, grid, num_inference_steps);
  }

  /// The x0 prediction of evaluation i (never clamped), as an expression of its operands.
  /// @throws ldm::Error when i is not below timesteps().size()
  template <ShapeType S, class Space>
  auto predicted_x0_at(std::size_t i, View<const float, S, Space> model_output,
                       View<const float, S, Space> sample) const {
    const double sigma = sigma_at(i);
    return predicted_x0(parameterisation(config_.prediction_type, 1 / (1 + sigma * sigma)), sample,
                        model_output, INFINITY);
  }

  /// Refuses an order out of range for a step from evaluation i: 1, 2 or 3, and at most the
  /// evaluations so far (i + 1).
  /// @throws ldm::Error when it is
  static void check_order(std::size_t i, int order) {
    if (order < 1 || order > 3 || std::size_t(order) > i + 1)
      fail_expected("order", "1, 2 or 3 and at most the evaluations so far", order);
  }

  /// The sigma of evaluation i.
  /// @throws ldm::Error when i is not below timesteps().size()
  double sigma_at(std::size_t i) const {
    if (i >= grid_.timesteps.size())
      fail_expected("evaluation", "one of the sampler's " + std::to_string(grid_.timesteps.size()),
                    i);
    return grid_.sigmas[i];
  }

  Schedule schedule_;   ///< The noise schedule.
  Config config_;       ///< The settings.
  MultistepGrid grid_;  ///< The evaluations' timesteps and sigmas.
};

namespace detail {

// Refuses a State that holds predictions of an evaluation other than i - 1. `sampler` names the
// class in the message.
template <class State>
void check_in_order(const State& state, std::size_t i, std::string_view sampler) {
  if (state.held > 0 && state.next != i)
    fail(sampler, "::step: evaluation ", i, " after evaluation ", state.next - 1,
         " in the same State; each trajectory needs its own State, stepped in order");
}

// Makes x0 (evaluation i's x0 prediction) the newest in the State; the oldest one's tensor takes
// it.
template <class State, class X0>
void record_x0(State& state, std::size_t i, const X0& x0) {
  std::rotate(state.x0.begin(), state.x0.begin() + 1, state.x0.end());
  state.x0[2] = x0;
  state.held = std::min(state.held + 1, 3);
  state.next = i + 1;
}

// out = start + sum_{k < order} on_x0[k] * (the k-th newest of x0), x0 holding the newest last:
// one fused expression per order.
template <class Out, class Start, class X0s>
void assign_multistep(Out&& out, const Start& start, int order, const std::array<double, 3>& on_x0,
                      const X0s& x0) {
  switch (order) {
    case 1:
      out = start + on_x0[0] * in_double(x0[2]);
      break;
    case 2:
      out = start + on_x0[0] * in_double(x0[2]) + on_x0[1] * in_double(x0[1]);
      break;
    default:
      out = start + on_x0[0] * in_double(x0[2]) + on_x0[1] * in_double(x0[1]) +
            on_x0[2] * in_double(x0[0]);
  }
}

}  // namespace detail

}  // namespace ldm::diffusion
