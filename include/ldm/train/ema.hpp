#pragma once
// An exponential moving average of the parameters, as diffusers' EMAModel keeps it, over one flat
// float buffer. The decay schedule is diffusers' get_decay, so EMA weights made here and there
// follow the same path; its state (shadow buffer and optimisation step) can be saved and resumed.

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <span>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::train {

// diffusers' defaults.
struct EMAConfig {
  double decay = 0.9999, min_decay = 0.0;
  std::int64_t update_after_step = 0;
  bool use_ema_warmup = false;
  double inv_gamma = 1.0, power = 2.0 / 3.0;
};

class EMA {
 public:
  // The average starts at the current parameters.
  EMA(EMAConfig config, std::span<const float> params)
      : config_(config), shadow_(params.begin(), params.end()) {}

  // The decay used by the update that makes optimisation_step the current one (diffusers counts
  // from 1). It is 0 until update_after_step + 1 updates have passed, so the average first
  // becomes a copy of the parameters, whatever min_decay says.
  double decay_at(std::int64_t optimization_step) const {
    const std::int64_t step =
        std::max<std::int64_t>(0, optimization_step - config_.update_after_step - 1);
    if (step <= 0) return 0.0;
    const double s = double(step);
    double decay = config_.use_ema_warmup ? 1 - std::pow(1 + s / config_.inv_gamma, -config_.power)
                                          : (1 + s) / (10 + s);
    decay = std::min(decay, config_.decay);
    return std::max(decay, config_.min_decay);
  }

  // shadow -= (1 - decay) * (shadow - params), rounded in float at each operation as torch does.
  void step(std::span<const float> params) {
    assert(params.size() == size());
    ++optimization_step_;
    const float one_minus_decay = float(1 - decay_at(optimization_step_));
    float* s = shadow_.data();
    const float* p = params.data();
    expr::executor<host>::for_each(index_t(size()), [=](index_t i) {
      const float delta = s[i] - p[i];
      s[i] = s[i] - one_minus_decay * delta;
    });
  }

  // Puts the averaged weights into a model, e.g. to sample or to save them.
  void copy_to(std::span<float> params) const {
    assert(params.size() == size());
    std::copy(shadow_.begin(), shadow_.end(), params.begin());
  }

  const EMAConfig& config() const { return config_; }
  std::size_t size() const { return shadow_.size(); }
  std::int64_t optimization_step() const { return optimization_step_; }
  std::span<const float> shadow() const { return shadow_; }

  // Resumes from saved state (diffusers' "optimization_step" and "shadow_params").
  void restore(std::int64_t optimization_step, std::span<const float> shadow) {
    if (optimization_step < 0)
      fail_expected("EMA::restore: optimization step", ">= 0", optimization_step);
    if (shadow.size() != size()) fail_expected("EMA::restore: shadow size", size(), shadow.size());
    optimization_step_ = optimization_step;
    shadow_.assign(shadow.begin(), shadow.end());
  }

 private:
  EMAConfig config_;
  std::int64_t optimization_step_ = 0;
  std::vector<float> shadow_;
};

}  // namespace ldm::train
