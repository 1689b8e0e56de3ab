#pragma once
/// @file
/// The memory a call holds at its peak, by what holds it, known at compile time: a user can print
/// it or static_assert on it before anything is allocated.
///
/// @code{.cpp}
///   constexpr auto peak = ldm::LatentDiffusion<Config>::diffusion_step_memory<64>();
///   static_assert(peak.total() < (std::size_t(40) << 30));
/// @endcode
///
/// LatentDiffusion (pipeline/latent_diffusion.hpp) makes one for each of its calls from the
/// modules' Saved structs (nn::saved_bytes) and Scratch (nn::scratch_of), and
/// tests/test_memory_plan.cpp checks it against the host allocator's measured peak.

#include <cstddef>
#include <ostream>

namespace ldm::models {

/// The bytes a call holds at its peak, by what holds them.
struct PeakMemory {
  std::size_t parameters = 0;         ///< weights of the models being trained or sampled
  std::size_t gradients = 0;          ///< one gradient per parameter
  std::size_t optimizer_state = 0;    ///< AdamW's two moments
  std::size_t ema = 0;                ///< the EMA's shadow weights and the model it is copied into
  std::size_t saved_activations = 0;  ///< the Saved structs: what forward keeps for backward
  std::size_t workspaces = 0;         ///< the call's other buffers that live from call to call
  std::size_t temporaries = 0;        ///< the peak of tensors and op scratch alive within the call

  /// The sum of the above.
  constexpr std::size_t total() const {
    return parameters + gradients + optimizer_state + ema + saved_activations + workspaces +
           temporaries;
  }
};

/// Each part and the total in MiB, in one line.
inline std::ostream& operator<<(std::ostream& out, const PeakMemory& m) {
  auto mib = [](std::size_t bytes) { return double(bytes) / (1 << 20); };
  out << mib(m.parameters) << " MiB weights, " << mib(m.gradients) << " MiB gradients, "
      << mib(m.optimizer_state) << " MiB optimiser state, " << mib(m.ema) << " MiB EMA, "
      << mib(m.saved_activations) << " MiB saved activations, " << mib(m.workspaces)
      << " MiB workspaces, " << mib(m.temporaries) << " MiB temporaries; " << mib(m.total())
      << " MiB in all";
  return out;
}

}  // namespace ldm::models
