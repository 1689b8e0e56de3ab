#pragma once
// Conversion between a parameter's internal layout and PyTorch's, for files: checkpoints carry
// diffusers' names and PyTorch's layouts, and only this boundary knows the difference.

#include <cstddef>
#include <vector>

#include "ldm/nn/parameters.hpp"

namespace ldm::nn {

// Element order of `info` in PyTorch's layout, as floats.
template <class T>
std::vector<float> to_torch_layout(const ParameterInfo& info, const T* values) {
  const T* v = values + info.offset;
  std::vector<float> out(static_cast<std::size_t>(info.size));
  if (info.layout == Layout::same) {
    for (index_t i = 0; i < info.size; ++i)
      out[std::size_t(i)] = float(v[i]);
    return out;
  }
  // conv_ohwi: internal [Co, KH, KW, Ci] -> PyTorch [Co, Ci, KH, KW].
  const auto co = info.torch_shape[0], ci = info.torch_shape[1], kh = info.torch_shape[2],
             kw = info.torch_shape[3];
  for (std::int64_t o = 0; o < co; ++o)
    for (std::int64_t y = 0; y < kh; ++y)
      for (std::int64_t x = 0; x < kw; ++x)
        for (std::int64_t c = 0; c < ci; ++c)
          out[std::size_t(((o * ci + c) * kh + y) * kw + x)] =
              float(v[((o * kh + y) * kw + x) * ci + c]);
  return out;
}

// Writes `torch` (PyTorch layout, info.size elements) into the parameter's internal layout.
template <class T>
void from_torch_layout(const ParameterInfo& info, const float* torch, T* values) {
  T* v = values + info.offset;
  if (info.layout == Layout::same) {
    for (index_t i = 0; i < info.size; ++i)
      v[i] = T(torch[i]);
    return;
  }
  const auto co = info.torch_shape[0], ci = info.torch_shape[1], kh = info.torch_shape[2],
             kw = info.torch_shape[3];
  for (std::int64_t o = 0; o < co; ++o)
    for (std::int64_t y = 0; y < kh; ++y)
      for (std::int64_t x = 0; x < kw; ++x)
        for (std::int64_t c = 0; c < ci; ++c)
          v[((o * kh + y) * kw + x) * ci + c] = T(torch[((o * ci + c) * kh + y) * kw + x]);
}

}  // namespace ldm::nn
