#pragma once
// What a model needs in memory for training at batch N, known at compile time: a user can print
// it or static_assert on it before anything is allocated.
//
//   constexpr auto plan = ldm::models::memory_plan<UNet, 64>();
//   static_assert(plan.total_bytes() < (std::size_t(40) << 30));

#include <cstddef>
#include <ostream>

#include "ldm/core/macros.hpp"
#include "ldm/nn/module.hpp"

namespace ldm::models {

struct MemoryPlan {
  std::size_t parameters = 0;        // count
  std::size_t parameter_bytes = 0;   // master weights
  std::size_t gradient_bytes = 0;    // one gradient per parameter
  std::size_t optimizer_bytes = 0;   // AdamW's two moments
  std::size_t activation_bytes = 0;  // what forward keeps for backward at this batch

  constexpr std::size_t total_bytes() const {
    return parameter_bytes + gradient_bytes + optimizer_bytes + activation_bytes;
  }
};

// Model needs `parameter_count`, `value_type` and a `Saved<N>` (nn/module.hpp).
template <class Model, index_t N>
constexpr MemoryPlan memory_plan() {
  using T = typename Model::value_type;
  const std::size_t count = std::size_t(Model::parameter_count);
  return MemoryPlan{count, count * sizeof(T), count * sizeof(T), 2 * count * sizeof(float),
                    nn::saved_bytes<typename Model::template Saved<N>>};
}

inline std::ostream& operator<<(std::ostream& out, const MemoryPlan& plan) {
  auto mib = [](std::size_t bytes) { return double(bytes) / (1 << 20); };
  out << plan.parameters << " parameters: " << mib(plan.parameter_bytes) << " MiB weights, "
      << mib(plan.gradient_bytes) << " MiB gradients, " << mib(plan.optimizer_bytes)
      << " MiB optimiser state, " << mib(plan.activation_bytes) << " MiB activations; "
      << mib(plan.total_bytes()) << " MiB in all";
  return out;
}

}  // namespace ldm::models
