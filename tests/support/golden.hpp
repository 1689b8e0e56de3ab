#pragma once
// Reading golden files (tests/golden/*.safetensors, written by tools/golden/make_golden.py from
// PyTorch and diffusers) into ldm's layouts, and comparing results with them.
//
// Golden tensors are in PyTorch's layouts: activations NCHW, conv weights OIHW. Errors are
// reported as max_i |actual_i - expected_i| / max_i |expected_i|: each element's error against
// the scale of the whole tensor.

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "ldm/io/safetensors.hpp"
#include "ldm/nn/state_dict.hpp"

namespace ldm::test {

inline io::SafetensorsFile open_golden(const std::string& name) {
  return io::SafetensorsFile::open(std::string(LDM_TEST_DATA_DIR) + "/golden/" + name +
                                   ".safetensors");
}

inline std::vector<float> read_all(const io::SafetensorsFile& file, const std::string& name) {
  const auto& shape = file.entry(name).shape;
  std::int64_t count = 1;
  for (auto e : shape)
    count *= e;
  std::vector<float> values(static_cast<std::size_t>(count));
  file.read<float>(name, values, shape);
  return values;
}

// Loads every parameter described by `infos` from `prefix + info.name`, converting layouts.
template <class T>
void load_parameters(const io::SafetensorsFile& file, const std::vector<nn::ParameterInfo>& infos,
                     T* values, const std::string& prefix = "") {
  for (const auto& info : infos) {
    std::vector<float> torch(static_cast<std::size_t>(info.size));
    file.read<float>(prefix + info.name, torch, info.torch_shape);
    nn::from_torch_layout(info, torch.data(), values);
  }
}

// NCHW from the file into an NHWC view (or any other shape, read as is, when not rank 4).
template <class T, ShapeType S>
void read_activation(const io::SafetensorsFile& file, const std::string& name, View<T, S> out) {
  auto values = read_all(file, name);
  REQUIRE(values.size() == std::size_t(S::size));
  if constexpr (S::rank == 4) {
    constexpr index_t N = S::extents[0], H = S::extents[1], W = S::extents[2], C = S::extents[3];
    for (index_t n = 0; n < N; ++n)
      for (index_t c = 0; c < C; ++c)
        for (index_t h = 0; h < H; ++h)
          for (index_t w = 0; w < W; ++w)
            out(n, h, w, c) = T(values[std::size_t(((n * C + c) * H + h) * W + w)]);
  } else {
    for (index_t i = 0; i < S::size; ++i)
      out[i] = T(values[std::size_t(i)]);
  }
}

inline double largest_magnitude(const std::vector<float>& values) {
  double scale = 0;
  for (float v : values)
    scale = std::max(scale, std::abs(double(v)));
  return scale;
}

// `floor` keeps a tensor that is zero in exact arithmetic (and so only rounding noise in the
// file) from turning float rounding into a huge relative error.
inline double relative_error(const std::vector<float>& actual, const std::vector<float>& expected,
                             double floor = 0) {
  double worst = 0;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const double error = std::abs(double(actual[i]) - double(expected[i]));
    if (!(error <= worst)) worst = error;  // written so that NaN wins
  }
  const double scale = std::max(largest_magnitude(expected), floor);
  return scale == 0 ? worst : worst / scale;
}

// The error of an NHWC result against the file's NCHW tensor.
template <class T, ShapeType S>
double activation_error(const io::SafetensorsFile& file, const std::string& name,
                        View<const T, S> actual) {
  Tensor<float, S> expected;
  read_activation(file, name, expected.view());
  std::vector<float> a(actual.data(), actual.data() + S::size),
      e(expected.data(), expected.data() + S::size);
  for (index_t i = 0; i < S::size; ++i)
    a[std::size_t(i)] = float(actual[i]);
  return relative_error(a, e);
}

// The largest error over every parameter gradient ("grad." + name), and which one it was.
// Each tensor is measured against its own largest magnitude, floored at 1e-3 of the largest
// gradient of the module: some gradients are zero in exact arithmetic (a key bias cannot change
// a softmax), and their files hold only rounding noise.
struct WorstGradient {
  double error = 0;
  std::string name;
};
template <class T>
WorstGradient parameter_gradient_error(const io::SafetensorsFile& file,
                                       const std::vector<nn::ParameterInfo>& infos, const T* grads,
                                       const std::string& prefix = "grad.") {
  std::vector<std::vector<float>> expected;
  double module_scale = 0;
  for (const auto& info : infos) {
    expected.push_back(read_all(file, prefix + info.name));
    module_scale = std::max(module_scale, largest_magnitude(expected.back()));
  }
  WorstGradient worst;
  for (std::size_t k = 0; k < infos.size(); ++k) {
    const double e =
        relative_error(nn::to_torch_layout(infos[k], grads), expected[k], 1e-3 * module_scale);
    if (e >= worst.error) worst = {e, infos[k].name};
  }
  return worst;
}

}  // namespace ldm::test
