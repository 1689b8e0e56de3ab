#pragma once
// The weights of the LPIPS golden network (tools/golden/make_lpips_golden.py writes the same): a
// formula instead of a file, so tests need no VGG16 download.

#include <cmath>
#include <cstdint>
#include <vector>

#include <ldm/nn/parameters.hpp>

namespace ldm::test {

// The golden network's weights (see make_lpips_golden.py): tensor t of the state_dict order,
// element i in PyTorch's layout.
inline std::uint32_t mix(std::uint32_t v) {
  v *= 0x9E3779B1u;
  v ^= v >> 16;
  v *= 0x2C1B3C6Du;
  v ^= v >> 13;
  v *= 0x297A2D39u;
  v ^= v >> 16;
  return v;
}

inline std::vector<float> formula_weight(std::uint32_t t, const nn::ParameterInfo& info) {
  const std::uint32_t key = mix(t + 1);
  const bool lin = info.name.starts_with("lin"), bias = info.name.ends_with(".bias");
  const double bound = lin || bias
                           ? 0.0
                           : std::sqrt(6.0 / double(info.torch_shape[1] * info.torch_shape[2] *
                                                    info.torch_shape[3]));
  std::vector<float> values(std::size_t(info.size));
  for (std::uint32_t i = 0; i < std::uint32_t(info.size); ++i) {
    const double u = double(mix(i ^ key) >> 8) / 16777216.0;
    values[i] = lin ? float(u) : bias ? float((2 * u - 1) * 0.1) : float((2 * u - 1) * bound);
  }
  return values;
}

}  // namespace ldm::test
