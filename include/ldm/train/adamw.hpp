#pragma once
/// @file
/// AdamW over one flat float buffer, computed as torch.optim.AdamW computes it (amsgrad and
/// maximize off), so that a run started in PyTorch can be resumed here and compared step by step.
///
/// The per-step scalars are formed in double, as torch forms them from Python floats, and rounded
/// once to float where torch hands them to a float kernel; the elementwise work follows torch's
/// order of float operations. Agreement with torch is to a few ulps, not bit for bit: torch's CPU
/// kernels fuse some multiply-adds in their vector paths and take an approximate square root.
///
/// AdamW<Space> keeps its moments in Space and updates parameters and gradients that live there
/// (the spans point into Space's memory); the host and the device run the same update, rounded
/// after every operation, so they agree bit for bit.

#include <array>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "ldm/core/buffer.hpp"
#include "ldm/core/copy.hpp"
#include "ldm/core/error.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/train/rounded.hpp"

namespace ldm::train {

/// torch.optim.AdamW's hyperparameters and defaults.
// Doubles, as torch's hyperparameters are Python floats: rounding them to float first would move
// the per-step scalars by an ulp away from torch's.
struct AdamWConfig {
  /// @{
  /// The learning rate (>= 0), the moments' decays (in [0, 1)), the denominator's epsilon
  /// (>= 0) and the decoupled weight decay (>= 0).
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 1e-2;
  /// @}
};

namespace detail {

// One parameter's update, for either executor. torch's lerp(m, g, w) is m + w (g - m) for
// |w| < 0.5 and g - (1 - w)(g - m) otherwise; both are base + coef * (g - m), which keeps the
// choice out of the loop.
struct AdamWUpdate {
  float* p;
  const float* g;
  float* m;
  float* v;
  float decay, coef, beta2, one_minus_beta2, bias_correction2_sqrt, eps, neg_step_size;
  bool small_weight;

  LDM_HD void operator()(index_t i) const {
    namespace r = rounded;
    const float grad = g[i];
    const float param = r::mul(p[i], decay);
    const float avg = m[i];
    const float new_avg = r::add(small_weight ? avg : grad, r::mul(coef, r::sub(grad, avg)));
    const float new_avg_sq =
        r::add(r::mul(v[i], beta2), r::mul(r::mul(one_minus_beta2, grad), grad));
    const float denom = r::add(r::div(r::sqrt(new_avg_sq), bias_correction2_sqrt), eps);
    m[i] = new_avg;
    v[i] = new_avg_sq;
    p[i] = r::add(param, r::div(r::mul(neg_step_size, new_avg), denom));
  }
};

}  // namespace detail

/// AdamW over `count` parameters in one flat buffer; the moments live in Space.
template <class Space = host>
class AdamW {
  static constexpr bool on_host = std::is_same_v<Space, host>;

 public:
  /// An optimiser with zero moments and no steps taken.
  /// @throws ldm::Error when a hyperparameter is out of its range (see AdamWConfig)
  AdamW(AdamWConfig config, std::size_t count)
      : config_(config), exp_avg_(count), exp_avg_sq_(count) {
    check_lr(config.lr);
    if (!(config.eps >= 0)) fail_expected("AdamW: eps", ">= 0", config.eps);
    if (!(config.beta1 >= 0 && config.beta1 < 1))
      fail_expected("AdamW: beta1", "in [0, 1)", config.beta1);
    if (!(config.beta2 >= 0 && config.beta2 < 1))
      fail_expected("AdamW: beta2", "in [0, 1)", config.beta2);
    if (!(config.weight_decay >= 0))
      fail_expected("AdamW: weight_decay", ">= 0", config.weight_decay);
  }

  /// One update of every parameter, in one parallel loop; params and grads are in Space and hold
  /// size() elements each (asserted).
  void step(std::span<float> params, std::span<const float> grads) {
    assert(params.size() == size() && grads.size() == size());
    ++steps_;
    const double bias_correction1 = 1 - std::pow(config_.beta1, double(steps_));
    const double bias_correction2 = 1 - std::pow(config_.beta2, double(steps_));
    const float weight = float(1 - config_.beta1);
    const bool small_weight = std::abs(weight) < 0.5f;
    const detail::AdamWUpdate update{
        .p = params.data(),
        .g = grads.data(),
        .m = exp_avg_.data(),
        .v = exp_avg_sq_.data(),
        .decay = float(1 - config_.lr * config_.weight_decay),
        .coef = small_weight ? weight : weight - 1.0f,
        .beta2 = float(config_.beta2),
        .one_minus_beta2 = float(1 - config_.beta2),
        .bias_correction2_sqrt = float(std::sqrt(bias_correction2)),
        .eps = float(config_.eps),
        .neg_step_size = float(-(config_.lr / bias_correction1)),
        .small_weight = small_weight,
    };
    expr::executor<Space>::for_each(index_t(size()), update);
  }

  /// For schedules: the next step uses this rate.
  /// @throws ldm::Error when lr is negative
  void set_lr(double lr) {
    check_lr(lr);
    config_.lr = lr;
  }

  const AdamWConfig& config() const { return config_; }  ///< The hyperparameters now.
  std::size_t size() const { return exp_avg_.size(); }   ///< The number of parameters.
  std::int64_t steps() const { return steps_; }          ///< Steps taken (torch's state["step"]).
  /// The first moments (host optimisers only).
  std::span<const float> exp_avg() const requires on_host {
    return {exp_avg_.data(), exp_avg_.size()};
  }
  /// The second moments (host optimisers only).
  std::span<const float> exp_avg_sq() const requires on_host {
    return {exp_avg_sq_.data(), exp_avg_sq_.size()};
  }
  /// Both moments where they live (Space's memory), for a data-parallel run to make them rank 0's
  /// (LatentDiffusion::broadcast_state()).
  std::array<std::span<float>, 2> moments() {
    return {std::span<float>(exp_avg_.data(), exp_avg_.size()),
            std::span<float>(exp_avg_sq_.data(), exp_avg_sq_.size())};
  }
  /// @{
  /// Copies of the moments in host memory, in any space: what checkpoints save.
  std::vector<float> exp_avg_host() const {
    return host_vector<Space>(exp_avg_.data(), exp_avg_.size());
  }
  std::vector<float> exp_avg_sq_host() const {
    return host_vector<Space>(exp_avg_sq_.data(), exp_avg_sq_.size());
  }
  /// @}

  /// Resumes from saved state (torch's state["step"], "exp_avg", "exp_avg_sq", in host memory):
  /// the following steps are those the saving run would have taken.
  /// @throws ldm::Error when steps is negative or a moment's size is not size()
  void restore(std::int64_t steps, std::span<const float> exp_avg,
               std::span<const float> exp_avg_sq) {
    if (steps < 0) fail_expected("AdamW::restore: step count", ">= 0", steps);
    if (exp_avg.size() != size())
      fail_expected("AdamW::restore: exp_avg size", size(), exp_avg.size());
    if (exp_avg_sq.size() != size())
      fail_expected("AdamW::restore: exp_avg_sq size", size(), exp_avg_sq.size());
    steps_ = steps;
    copy_elements<host, Space>(exp_avg.data(), exp_avg_.data(), exp_avg.size());
    copy_elements<host, Space>(exp_avg_sq.data(), exp_avg_sq_.data(), exp_avg_sq.size());
  }

 private:
  static void check_lr(double lr) {
    if (!(lr >= 0)) fail_expected("AdamW: learning rate", ">= 0", lr);
  }

  AdamWConfig config_;
  std::int64_t steps_ = 0;
  Buffer<float, Space> exp_avg_, exp_avg_sq_;
};

}  // namespace ldm::train
