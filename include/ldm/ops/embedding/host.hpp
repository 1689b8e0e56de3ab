#pragma once
// The sinusoidal timestep embedding of diffusers' get_timestep_embedding (DDPM's positional
// embedding of the diffusion step), used by the UNet with flip_sin_to_cos = true, freq_shift = 0.
//
// With half = Dim / 2, frequency i is exp(-ln(max_period) * i / (half - freq_shift)), and
// out[n] = [sin(args), cos(args)] for args = scale * t[n] * frequency, or [cos, sin] with
// flip_sin_to_cos; an odd Dim leaves the last element zero. There is no backward: timesteps are
// inputs, never learned.

#include <cmath>

#include "ldm/core/error.hpp"
#include "ldm/core/tensor.hpp"

namespace ldm::ops {

// Computed in double and rounded once: the arguments reach ~1000 radians, where diffusers' float32
// arithmetic is off by a few 1e-6; this keeps the host a correctly rounded reference.
template <index_t Dim, class T, index_t N>
void timestep_embedding(View<const float, Shape<N>> timesteps, bool flip_sin_to_cos,
                        double freq_shift, View<T, Shape<N, Dim>> out, double max_period = 10000,
                        double scale = 1) {
  static_assert(Dim >= 2, "ldm::ops::timestep_embedding: Dim must hold at least one sin/cos pair");
  constexpr index_t half = Dim / 2;
  // freq_shift comes from a model's configuration (diffusers' UNet config.json), where this value
  // would divide by zero.
  if (double(half) - freq_shift == 0)
    fail("ldm::ops::timestep_embedding: freq_shift must differ from Dim / 2 = ", half);
  const double log_max_period = std::log(max_period);
  for (index_t n = 0; n < N; ++n) {
    for (index_t i = 0; i < half; ++i) {
      const double frequency = std::exp(-log_max_period * double(i) / (double(half) - freq_shift));
      const double arg = scale * (double(timesteps[n]) * frequency);
      const double s = std::sin(arg), c = std::cos(arg);
      out(n, i) = T(flip_sin_to_cos ? c : s);
      out(n, half + i) = T(flip_sin_to_cos ? s : c);
    }
    if constexpr (Dim % 2 == 1) out(n, Dim - 1) = T(0);
  }
}

}  // namespace ldm::ops
