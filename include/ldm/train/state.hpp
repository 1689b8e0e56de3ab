#pragma once
// Optimiser state lives in a Buffer in the optimiser's space; checkpoints read and write it as
// host arrays. These two moves are the only place the state crosses between spaces.

#include <cstddef>
#include <span>
#include <vector>

#include "ldm/core/buffer.hpp"
#include "ldm/core/copy.hpp"

namespace ldm::train::detail {

template <class Space>
std::vector<float> host_copy(const Buffer<float, Space>& state) {
  std::vector<float> out(state.size());
  copy_elements<Space, host>(state.data(), out.data(), state.size());
  return out;
}

// The caller has checked that the sizes match.
template <class Space>
void assign_from_host(Buffer<float, Space>& state, std::span<const float> values) {
  copy_elements<host, Space>(values.data(), state.data(), values.size());
}

}  // namespace ldm::train::detail
