#pragma once
// The sinusoidal timestep embedding on the device, with the host's call form and arithmetic
// (host.hpp): each element computed in double and rounded once, so both sides agree to the
// rounding of the result.

#include "ldm/core/error.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/cuda_executor.cuh"
#include "ldm/expr/math.hpp"

namespace ldm::ops {

template <index_t Dim, class T, index_t N>
void timestep_embedding(View<const float, Shape<N>, cuda> timesteps, bool flip_sin_to_cos,
                        double freq_shift, View<T, Shape<N, Dim>, cuda> out,
                        double max_period = 10000, double scale = 1) {
  static_assert(Dim >= 2, "ldm::ops::timestep_embedding: Dim must hold at least one sin/cos pair");
  constexpr index_t half = Dim / 2;
  if (double(half) - freq_shift == 0)
    fail("ldm::ops::timestep_embedding: freq_shift must differ from Dim / 2 = ", half);
  const double log_max_period = math::log(max_period);
  const float* t = timesteps.data();
  T* o = out.data();
  expr::executor<cuda>::for_each(N * Dim, [=] __device__(index_t e) {
    const index_t n = e / Dim, k = e % Dim;
    if (k == 2 * half) {  // the odd Dim's last element
      o[e] = T(0);
      return;
    }
    const index_t i = k % half;
    const double frequency = math::exp(-log_max_period * double(i) / (double(half) - freq_shift));
    const double arg = scale * (double(t[n]) * frequency);
    // The first half is sin (cos with flip_sin_to_cos), the second half the other one.
    const bool cosine = (k < half) == flip_sin_to_cos;
    o[e] = T(cosine ? ::cos(arg) : ::sin(arg));
  });
}

}  // namespace ldm::ops
