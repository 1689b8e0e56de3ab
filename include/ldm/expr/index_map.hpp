#pragma once
// Maps a linear index of one shape to the linear index of another through compile-time mixed-radix
// arithmetic. Adjacent axes that are treated alike are merged first, so the usual cases cost one
// division by a constant: a per-channel vector over NHWC reads i % C, a per-sample value i / HWC.

#include <array>

#include "ldm/core/macros.hpp"

namespace ldm::expr {

// Axis d of the walked shape has extent[d] and contributes stride[d] (0 when the mapped-to shape
// does not have that axis) to the mapped index.
template <int Rank>
struct AxisStrides {
  std::array<index_t, Rank> extent{};
  std::array<index_t, Rank> stride{};
};

template <int Rank>
constexpr int merged_rank(const AxisStrides<Rank>& a) {
  int groups = 0;
  for (int d = 0; d < Rank; ++d) {
    bool continues = d > 0 && ((a.stride[d - 1] == 0) == (a.stride[d] == 0)) &&
                     (a.stride[d] == 0 || a.stride[d - 1] == a.stride[d] * a.extent[d]);
    if (!continues) ++groups;
  }
  return groups;
}

template <int Merged, int Rank>
constexpr AxisStrides<Merged> merge_axes(const AxisStrides<Rank>& a) {
  AxisStrides<Merged> m{};
  int g = -1;
  for (int d = 0; d < Rank; ++d) {
    bool continues = d > 0 && ((a.stride[d - 1] == 0) == (a.stride[d] == 0)) &&
                     (a.stride[d] == 0 || a.stride[d - 1] == a.stride[d] * a.extent[d]);
    if (continues) {
      m.extent[g] *= a.extent[d];
      m.stride[g] = a.stride[d];
    } else {
      ++g;
      m.extent[g] = a.extent[d];
      m.stride[g] = a.stride[d];
    }
  }
  return m;
}

// Maps walked-shape linear index i to sum over axes of coordinate * stride.
template <auto Axes>
struct IndexMap {
  static constexpr int rank = merged_rank(Axes);
  static constexpr auto merged = merge_axes<rank>(Axes);

  LDM_HD static index_t map(index_t i) {
    index_t mapped = 0;
    index_t rest = i;
    for (int d = rank - 1; d >= 0; --d) {
      constexpr auto m = merged;  // a local copy keeps the array usable in device code
      index_t coordinate = d == 0 ? rest : rest % m.extent[d];
      rest = d == 0 ? 0 : rest / m.extent[d];
      mapped += coordinate * m.stride[d];
    }
    return mapped;
  }
};

}  // namespace ldm::expr
