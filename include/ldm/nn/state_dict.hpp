#pragma once
// Conversion between a parameter's internal layout and PyTorch's, for files: checkpoints carry
// diffusers' names and PyTorch's layouts, and only this boundary knows the difference.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ldm/nn/parameters.hpp"

namespace ldm::nn {

namespace detail {

// Calls visit(internal, in_torch) for each element of `info`'s parameter: its index in the
// internal layout and in PyTorch's, in the internal order. The one place that knows how the
// layouts differ.
template <class Visit>
void for_each_layout_index(const ParameterInfo& info, Visit visit) {
  if (info.layout == Layout::same) {
    for (index_t i = 0; i < info.size; ++i)
      visit(i, i);
    return;
  }
  // conv_ohwi: internal [Co, KH, KW, Ci] -> PyTorch [Co, Ci, KH, KW].
  const auto co = info.torch_shape[0], ci = info.torch_shape[1], kh = info.torch_shape[2],
             kw = info.torch_shape[3];
  for (std::int64_t o = 0; o < co; ++o)
    for (std::int64_t y = 0; y < kh; ++y)
      for (std::int64_t x = 0; x < kw; ++x)
        for (std::int64_t c = 0; c < ci; ++c)
          visit(((o * kh + y) * kw + x) * ci + c, ((o * ci + c) * kh + y) * kw + x);
}

}  // namespace detail

// Element order of `info` in PyTorch's layout, as floats.
template <class T>
std::vector<float> to_torch_layout(const ParameterInfo& info, const T* values) {
  const T* v = values + info.offset;
  std::vector<float> out(static_cast<std::size_t>(info.size));
  detail::for_each_layout_index(info, [&](index_t internal, index_t in_torch) {
    out[std::size_t(in_torch)] = float(v[internal]);
  });
  return out;
}

// Writes `torch` (PyTorch layout, info.size elements) into the parameter's internal layout.
template <class T>
void from_torch_layout(const ParameterInfo& info, const float* torch, T* values) {
  T* v = values + info.offset;
  detail::for_each_layout_index(
      info, [&](index_t internal, index_t in_torch) { v[internal] = T(torch[in_torch]); });
}

}  // namespace ldm::nn
