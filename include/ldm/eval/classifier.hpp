#pragma once
// The Fashion-MNIST classifier whose penultimate activations are the features of ldm's Fréchet
// distance (frechet.hpp): FID needs a network that knows the data set, and Inception knows
// ImageNet's colour photographs rather than 32x32 grey clothing, so the project trains its own
// (examples/train_classifier.cpp) and ships the weights.
//
// On Resolution x Resolution x 1 images in [-1, 1], NHWC:
//   conv1 3x3 (1 -> W) + ReLU, max-pool 2      conv2 3x3 (W -> 2W) + ReLU, max-pool 2
//   conv3 3x3 (2W -> 4W) + ReLU, max-pool 2    fc1 (flattened -> F) + ReLU: the features
//   fc2 (F -> 10): the logits
// with W = 32 and F = 128 by default. fc1 reads the pooled map flattened in NHWC order (h, w, c),
// so its weight is not the one a PyTorch nn.Flatten over NCHW would want; the file is ldm's own.
//
// The classifier owns its parameters and their gradients in two flat buffers, named conv1..3 and
// fc1..2 (.weight, .bias) in files, with PyTorch's shapes and layouts as every ldm checkpoint.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/io/safetensors.hpp"
#include "ldm/nn/conv2d.hpp"
#include "ldm/nn/finite.hpp"
#include "ldm/nn/linear.hpp"
#include "ldm/nn/parameters.hpp"
#include "ldm/nn/state_dict.hpp"
#include "ldm/ops/pool.hpp"
#include "ldm/version.hpp"

namespace ldm::eval {

template <index_t Resolution, class T = float, index_t Width = 32, index_t FeatureDim = 128>
class FashionClassifier {
  static_assert(Resolution >= 8 && Resolution % 8 == 0,
                "ldm::eval::FashionClassifier: three 2x2 pools need a resolution divisible by 8");

  static constexpr index_t r1 = Resolution, r2 = r1 / 2, r3 = r2 / 2, r4 = r3 / 2;
  static constexpr index_t c1 = Width, c2 = 2 * Width, c3 = 4 * Width;
  static constexpr index_t flat = r4 * r4 * c3;
  static constexpr index_t kClasses = 10;  // Fashion-MNIST's labels
  using Conv1 = nn::Conv2d<T, host, r1, r1, 1, c1>;
  using Conv2 = nn::Conv2d<T, host, r2, r2, c1, c2>;
  using Conv3 = nn::Conv2d<T, host, r3, r3, c2, c3>;
  using Fc1 = nn::Linear<T, host, flat, FeatureDim>;
  using Fc2 = nn::Linear<T, host, FeatureDim, kClasses>;

 public:
  using value_type = T;
  static constexpr index_t resolution = Resolution, width = Width, feature_dim = FeatureDim;
  static constexpr index_t classes = kClasses;
  static constexpr index_t parameter_count = Conv1::parameter_count + Conv2::parameter_count +
                                             Conv3::parameter_count + Fc1::parameter_count +
                                             Fc2::parameter_count;
  template <index_t N>
  using images = Shape<N, Resolution, Resolution, 1>;
  template <index_t N>
  using logits = Shape<N, classes>;
  template <index_t N>
  using features_shape = Shape<N, FeatureDim>;

  // Every activation backward reads: each ReLU's output (also the next pool's input, where the
  // pool finds its winners again) and each pool's output (the next layer's input).
  template <index_t N>
  struct Saved {
    Tensor<T, Shape<N, r1, r1, c1>> relu1;
    Tensor<T, Shape<N, r2, r2, c1>> pool1;
    Tensor<T, Shape<N, r2, r2, c2>> relu2;
    Tensor<T, Shape<N, r3, r3, c2>> pool2;
    Tensor<T, Shape<N, r3, r3, c3>> relu3;
    Tensor<T, Shape<N, r4, r4, c3>> pool3;
    Tensor<T, features_shape<N>> features;
  };

  // PyTorch's default initialisation, drawn from the Philox streams of `seed`.
  explicit FashionClassifier(std::uint64_t seed = 0)
      : store_{values_.data(), grads_.data(), parameter_count, 0, {}},
        conv1_(binder().scope("conv1")),
        conv2_(binder().scope("conv2")),
        conv3_(binder().scope("conv3")),
        fc1_(binder().scope("fc1")),
        fc2_(binder().scope("fc2")) {
    if (store_.cursor != parameter_count)
      fail("ldm::FashionClassifier: parameter_count is ", parameter_count, " but the layers bind ",
           store_.cursor);
    nn::initialise(store_.infos, values_.data(), seed);
  }

  FashionClassifier(const FashionClassifier&) = delete;  // the layers hold views of the buffers
  FashionClassifier& operator=(const FashionClassifier&) = delete;

  View<T, Shape<parameter_count>> values() { return values_.view(); }
  View<const T, Shape<parameter_count>> values() const { return values_.view(); }
  View<T, Shape<parameter_count>> grads() { return grads_.view(); }
  const std::vector<nn::ParameterInfo>& infos() const { return store_.infos; }

  template <index_t N>
  void forward(View<const T, images<N>> x, Saved<N>& s, View<T, logits<N>> y) const {
    conv1_.forward(x, {}, s.relu1.view());
    ops::relu_forward(s.relu1, s.relu1.view());
    ops::max_pool2x2_forward(s.relu1, s.pool1.view());
    conv2_.forward(s.pool1, {}, s.relu2.view());
    ops::relu_forward(s.relu2, s.relu2.view());
    ops::max_pool2x2_forward(s.relu2, s.pool2.view());
    conv3_.forward(s.pool2, {}, s.relu3.view());
    ops::relu_forward(s.relu3, s.relu3.view());
    ops::max_pool2x2_forward(s.relu3, s.pool3.view());
    fc1_.forward(s.pool3.template reshape<Shape<N, flat>>(), {}, s.features.view());
    ops::relu_forward(s.features, s.features.view());
    fc2_.forward(s.features, {}, y);
  }

  // Accumulates every parameter's gradient from dy, the gradient at the logits. The images get
  // none: nothing upstream of the classifier trains.
  template <index_t N>
  void backward(View<const T, images<N>> x, const Saved<N>& s, View<const T, logits<N>> dy) {
    Tensor<T, features_shape<N>> dfeatures;
    fc2_.backward(s.features, {}, dy, dfeatures.view());
    ops::relu_backward(s.features, dfeatures, dfeatures.view());
    Tensor<T, Shape<N, r4, r4, c3>> dpool3;
    fc1_.backward(s.pool3.template reshape<Shape<N, flat>>(), {}, dfeatures,
                  dpool3.template reshape<Shape<N, flat>>());
    Tensor<T, Shape<N, r3, r3, c3>> drelu3;
    ops::max_pool2x2_backward(s.relu3, dpool3, drelu3.view());
    ops::relu_backward(s.relu3, drelu3, drelu3.view());
    Tensor<T, Shape<N, r3, r3, c2>> dpool2;
    conv3_.backward(s.pool2, {}, drelu3, dpool2.view());
    Tensor<T, Shape<N, r2, r2, c2>> drelu2;
    ops::max_pool2x2_backward(s.relu2, dpool2, drelu2.view());
    ops::relu_backward(s.relu2, drelu2, drelu2.view());
    Tensor<T, Shape<N, r2, r2, c1>> dpool1;
    conv2_.backward(s.pool1, {}, drelu2, dpool1.view());
    Tensor<T, Shape<N, r1, r1, c1>> drelu1;
    ops::max_pool2x2_backward(s.relu1, dpool1, drelu1.view());
    ops::relu_backward(s.relu1, drelu1, drelu1.view());
    conv1_.backward_params(x, drelu1);
  }

  // The FeatureDim features of each image (fc1's output after its ReLU), for FeatureStatistics.
  template <index_t N>
  void features(View<const T, images<N>> x, View<T, features_shape<N>> out) const {
    Saved<N> s;
    Tensor<T, logits<N>> unused;
    forward(x, s, unused.view());
    out = s.features;
  }

  // Writes every parameter as float32 in PyTorch's layout, with `metadata` plus the
  // architecture's description, atomically.
  void save(const std::filesystem::path& path,
            const std::map<std::string, std::string>& metadata = {}) const {
    io::SafetensorsWriter writer;
    for (const auto& [key, value] : metadata)
      writer.set_metadata(key, value);
    writer.set_metadata("architecture", "ldm::eval::FashionClassifier");
    writer.set_metadata("ldm_version", version.string);
    writer.set_metadata("resolution", std::to_string(Resolution));
    writer.set_metadata("width", std::to_string(Width));
    writer.set_metadata("features", std::to_string(FeatureDim));
    for (const auto& info : infos())
      writer.add(info.name, nn::to_torch_layout(info, values_.data()), info.torch_shape);
    writer.write(path);
  }

  // Replaces every parameter with the file's and returns its metadata. The file must hold
  // exactly these tensors with these shapes, all finite; otherwise an ldm::Error names the first
  // offending tensor and the parameters are left as they were.
  std::map<std::string, std::string> load(const std::filesystem::path& path) {
    const io::SafetensorsFile file = io::SafetensorsFile::open(path);
    std::set<std::string> names;
    for (const auto& info : infos())
      names.insert(info.name);
    file.require_only(names);
    Tensor<T, Shape<parameter_count>> staged;
    std::vector<float> torch;
    for (const auto& info : infos()) {
      torch.resize(std::size_t(info.size));
      file.read<float>(info.name, std::span<float>(torch),
                       std::span<const std::int64_t>(info.torch_shape));
      nn::from_torch_layout(info, torch.data(), staged.data());
    }
    nn::require_finite_parameters(path.string(), infos(), staged.data(),
                                  std::size_t(parameter_count));
    values_ = staged;
    return file.metadata();
  }

 private:
  nn::ParameterBinder<T, host> binder() { return nn::ParameterBinder<T, host>(store_); }

  Tensor<T, Shape<parameter_count>> values_, grads_;
  nn::ParameterStore<T> store_;
  Conv1 conv1_;
  Conv2 conv2_;
  Conv3 conv3_;
  Fc1 fc1_;
  Fc2 fc2_;
};

}  // namespace ldm::eval
