#pragma once
// The sinusoidal timestep embedding of diffusers' get_timestep_embedding (DDPM's positional
// embedding of the diffusion step), used by the UNet with flip_sin_to_cos = true, freq_shift = 0.
//
// With half = Dim / 2, frequency i is exp(-ln(max_period) * i / (half - freq_shift)), and
// out[n] = [sin(args), cos(args)] for args = scale * t[n] * frequency, or [cos, sin] with
// flip_sin_to_cos; an odd Dim leaves the last element zero. There is no backward: timesteps are
// inputs, never learned.

#include "ldm/core/error.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/math.hpp"

namespace ldm::ops {

namespace detail {

// One element of the embedding, computed in double and rounded once: the arguments reach ~1000
// radians, where diffusers' float32 arithmetic is off by a few 1e-6; this keeps every backend a
// correctly rounded reference.
template <index_t Dim, class T>
struct TimestepEmbeddingElement {
  const float* timesteps;
  bool flip_sin_to_cos;
  double freq_shift, log_max_period, scale;
  T* out;
  LDM_HD void operator()(index_t e) const {
    constexpr index_t half = Dim / 2;
    const index_t n = e / Dim, k = e % Dim;
    if (k == 2 * half) {  // the odd Dim's last element
      out[e] = T(0);
      return;
    }
    const index_t i = k % half;
    const double frequency = math::exp(-log_max_period * double(i) / (double(half) - freq_shift));
    const double arg = scale * (double(timesteps[n]) * frequency);
    // The first half is sin (cos with flip_sin_to_cos), the second half the other one.
    const bool cosine = (k < half) == flip_sin_to_cos;
    out[e] = T(cosine ? math::cos(arg) : math::sin(arg));
  }
};

}  // namespace detail

template <index_t Dim, class T, index_t N, class Space>
void timestep_embedding(View<const float, Shape<N>, Space> timesteps, bool flip_sin_to_cos,
                        double freq_shift, View<T, Shape<N, Dim>, Space> out,
                        double max_period = 10000, double scale = 1) {
  static_assert(Dim >= 2, "ldm::ops::timestep_embedding: Dim must hold at least one sin/cos pair");
  // freq_shift comes from a model's configuration (diffusers' UNet config.json), where this value
  // would divide by zero.
  if (double(Dim / 2) - freq_shift == 0)
    fail("ldm::ops::timestep_embedding: freq_shift must differ from Dim / 2 = ", Dim / 2);
  expr::executor<Space>::for_each(N * Dim, detail::TimestepEmbeddingElement<Dim, T>{
                                               timesteps.data(), flip_sin_to_cos, freq_shift,
                                               math::log(max_period), scale, out.data()});
}

}  // namespace ldm::ops
