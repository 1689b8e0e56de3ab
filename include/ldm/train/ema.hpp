#pragma once
/// @file
/// An exponential moving average of the parameters, as diffusers' EMAModel keeps it, over one flat
/// float buffer. The decay schedule is diffusers' get_decay, so EMA weights made here and there
/// follow the same path; its state (shadow buffer and optimisation step) can be saved and resumed.
/// EMA<Space> keeps the shadow in Space and averages parameters that live there (the spans point
/// into Space's memory); host and device round the same operations, so they agree bit for bit.

#include <algorithm>
#include <cassert>
#include <cmath>
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

/// EMAModel's settings; the defaults are diffusers'.
struct EMAConfig {
  /// @{
  /// The decay's upper and lower bounds.
  double decay = 0.9999, min_decay = 0.0;
  /// @}
  std::int64_t update_after_step = 0;  ///< Updates before the average starts to decay.
  /// The warm-up schedule 1 - (1 + step / inv_gamma)^-power, rather than (1 + step) / (10 + step).
  bool use_ema_warmup = false;
  /// @{
  /// The warm-up's parameters.
  double inv_gamma = 1.0, power = 2.0 / 3.0;
  /// @}
};

namespace detail {

// shadow -= (1 - decay) * (shadow - params), rounded in float at each operation as torch does.
struct EMAUpdate {
  float* s;
  const float* p;
  float one_minus_decay;

  LDM_HD void operator()(index_t i) const {
    const float delta = rounded::sub(s[i], p[i]);
    s[i] = rounded::sub(s[i], rounded::mul(one_minus_decay, delta));
  }
};

}  // namespace detail

/// The EMA of a flat parameter buffer; the shadow lives in Space.
template <class Space = host>
class EMA {
  static constexpr bool on_host = std::is_same_v<Space, host>;

 public:
  /// The average starts at the current parameters (in Space).
  EMA(EMAConfig config, std::span<const float> params) : config_(config), shadow_(params.size()) {
    copy_elements<Space, Space>(params.data(), shadow_.data(), params.size());
  }

  /// The decay used by the update that makes optimisation_step the current one (diffusers counts
  /// from 1). It is 0 until update_after_step + 1 updates have passed, so the average first
  /// becomes a copy of the parameters, whatever min_decay says.
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

  /// One update towards `params` (in Space, size() elements; asserted).
  void step(std::span<const float> params) {
    assert(params.size() == size());
    ++optimization_step_;
    expr::executor<Space>::for_each(
        index_t(size()),
        detail::EMAUpdate{shadow_.data(), params.data(), float(1 - decay_at(optimization_step_))});
  }

  /// Puts the averaged weights into a model, e.g. to sample or to save them.
  void copy_to(std::span<float> params) const {
    assert(params.size() == size());
    copy_elements<Space, Space>(shadow_.data(), params.data(), size());
  }

  const EMAConfig& config() const { return config_; }  ///< The settings.
  std::size_t size() const { return shadow_.size(); }  ///< The number of parameters.
  /// Updates made (diffusers' optimization_step).
  std::int64_t optimization_step() const { return optimization_step_; }
  /// The average (host EMAs only).
  std::span<const float> shadow() const requires on_host {
    return {shadow_.data(), shadow_.size()};
  }
  /// The average where it lives (Space's memory), for a data-parallel run to make it rank 0's.
  std::span<float> shadow_buffer() { return {shadow_.data(), shadow_.size()}; }
  /// A copy of the average in host memory, in any space: what checkpoints save.
  std::vector<float> shadow_host() const {
    return host_vector<Space>(shadow_.data(), shadow_.size());
  }

  /// Resumes from saved state (diffusers' "optimization_step" and "shadow_params", in host
  /// memory).
  /// @throws ldm::Error when optimization_step is negative or the shadow's size is not size()
  void restore(std::int64_t optimization_step, std::span<const float> shadow) {
    if (optimization_step < 0)
      fail_expected("EMA::restore: optimization step", ">= 0", optimization_step);
    if (shadow.size() != size()) fail_expected("EMA::restore: shadow size", size(), shadow.size());
    optimization_step_ = optimization_step;
    copy_elements<host, Space>(shadow.data(), shadow_.data(), shadow.size());
  }

 private:
  EMAConfig config_;
  std::int64_t optimization_step_ = 0;
  Buffer<float, Space> shadow_;
};

}  // namespace ldm::train
