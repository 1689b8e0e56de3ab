#pragma once
// What a forward pass is for. Dropout is the only layer that behaves differently in training;
// its masks come from the Philox stream (seed, step << 32 | layer), so a training step is
// reproducible and backward regenerates the mask instead of storing it. A batch that is part of a
// larger one (micro-batches of gradient accumulation) says where it starts, so that its masks are
// those the larger batch would draw.

#include <cstdint>

namespace ldm::nn {

struct Mode {
  bool training = false;
  std::uint64_t seed = 0;
  std::uint64_t step = 0;
  std::uint64_t first_sample = 0;  // the batch's first sample in the whole batch

  std::uint64_t stream_for(std::uint64_t layer) const {
    return (step << 32) | (layer & 0xffffffffu);
  }
};

inline constexpr Mode inference{};

}  // namespace ldm::nn
