#pragma once
/// @file
/// Offset noise (Guttenberg, "Diffusion with Offset Noise"), as diffusers' training scripts with
/// --noise_offset: noise += noise_offset * randn(batch, channels, 1, 1), one extra normal draw per
/// sample and channel, shared by all of that channel's pixels, so that the model learns to change
/// an image's mean brightness.

#include <cstdint>

#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/random.hpp"

namespace ldm::train {

/// Adds the offset noise to a batch of NHWC noise in place. The draws are the Philox stream
/// (seed, stream) at element (first_sample + n) * C + c, so that a batch split into parts (given
/// their first samples) draws what the whole batch would.
/// @param noise the batch's standard normal noise, Shape<N, H, W, C>
/// @param noise_offset the draws' scale (0 leaves the noise as it is)
/// @param first_sample the position of the batch's first sample in the whole batch
template <index_t N, index_t H, index_t W, index_t C, class Space>
void add_offset_noise(View<float, Shape<N, H, W, C>, Space> noise, double noise_offset,
                      std::uint64_t seed, std::uint64_t stream, std::uint64_t first_sample = 0) {
  if (noise_offset == 0) return;
  noise += float(noise_offset) * broadcast<Shape<N, H, W, C>, 1, 2>(randn<Shape<N, C>>(
                                     seed, stream, first_sample * std::uint64_t(C)));
}

}  // namespace ldm::train
