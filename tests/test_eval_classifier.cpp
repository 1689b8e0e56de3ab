// The evaluation classifier: its whole backward pass (through cross-entropy) against central
// differences in double at a tiny width, its features, and its safetensors files.
#include <doctest/doctest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <ldm/eval/classifier.hpp>
#include <ldm/ldm.hpp>
#include <ldm/ops/loss.hpp>
#include <limits>
#include <string>

#include "support/errors.hpp"
#include "support/gradcheck.hpp"
#include "support/temp_folder.hpp"

using namespace ldm;
namespace fs = std::filesystem;

namespace {

// 16x16 pools to 2x2, so fc1 reads a flattened map of several pixels, not one.
using Tiny = eval::FashionClassifier<16, double, 2, 6>;
using Small = eval::FashionClassifier<16, float, 4, 8>;

}  // namespace

TEST_CASE("FashionClassifier: parameters, names and the default architecture's size") {
  using Default = eval::FashionClassifier<32>;
  static_assert(Default::feature_dim == 128 && Default::classes == 10);
  // Small enough to commit: 4 bytes per parameter under 2 MB.
  static_assert(Default::parameter_count == 320 + 18496 + 73856 + (2048 * 128 + 128) + 1290);
  Tiny model(1);
  std::string names;
  for (const auto& info : model.infos())
    names += info.name + " ";
  CHECK(names ==
        "conv1.weight conv1.bias conv2.weight conv2.bias conv3.weight conv3.bias fc1.weight "
        "fc1.bias fc2.weight fc2.bias ");
  CHECK(model.infos()[6].torch_shape == std::vector<std::int64_t>{6, 2 * 2 * 8});
}

TEST_CASE("FashionClassifier backward: every parameter gradient against central differences") {
  constexpr index_t N = 3;
  Tiny model(2);
  Tensor<double, Tiny::images<N>> x;
  x = randn<Tiny::images<N>>(3);
  Tensor<std::int32_t, Shape<N>> labels;
  labels[0] = 4, labels[1] = 9, labels[2] = 0;
  Tiny::Saved<N> saved;
  Tensor<double, Tiny::logits<N>> logits, dlogits;

  auto loss = [&] {
    model.forward(x, saved, logits.view());
    return ops::cross_entropy_forward(logits, labels);
  };
  loss();
  ops::cross_entropy_backward(logits, labels, 1.0, dlogits.view());
  model.grads() = 0.0;
  model.backward(x, saved, dlogits);
  Tensor<double, Shape<Tiny::parameter_count>> analytic;
  analytic = model.grads();

  // Per parameter tensor, so that a wrong layer shows by name.
  for (const auto& info : model.infos()) {
    const auto numeric =
        test::numerical_gradient(loss, model.values().data() + info.offset, std::size_t(info.size));
    const double error = test::max_relative_error(analytic.data() + info.offset, numeric);
    double largest = 0;
    for (double g : numeric)
      largest = std::max(largest, std::abs(g));
    MESSAGE(info.name << ": largest relative error " << error << ", largest gradient " << largest);
    CHECK(largest > 1e-4);  // a layer whose ReLUs all died would pass the comparison vacuously
    CHECK(error < 1e-6);
  }
}

TEST_CASE("FashionClassifier features: fc1's output after its ReLU, as forward saves it") {
  constexpr index_t N = 2;
  Small model(4);
  Tensor<float, Small::images<N>> x;
  x = randn<Small::images<N>>(5);
  Small::Saved<N> saved;
  Tensor<float, Small::logits<N>> logits;
  model.forward(x, saved, logits.view());
  Tensor<float, Small::features_shape<N>> features;
  model.features(x, features.view());
  bool some_positive = false;
  for (index_t i = 0; i < features.size; ++i) {
    CHECK(features[i] == saved.features[i]);
    CHECK(features[i] >= 0);
    some_positive = some_positive || features[i] > 0;
  }
  CHECK(some_positive);
}

TEST_CASE("FashionClassifier save/load: a round trip, metadata, and mismatched files rejected") {
  ldm::test::TempFolder dir;
  const fs::path path = dir.path / "classifier.safetensors";
  Small saved_model(6);
  saved_model.save(path, {{"test_accuracy", "0.5"}});

  Small loaded(7);
  const auto metadata = loaded.load(path);
  for (index_t i = 0; i < Small::parameter_count; ++i)
    REQUIRE(loaded.values()[i] == saved_model.values()[i]);
  CHECK(metadata.at("test_accuracy") == "0.5");
  CHECK(metadata.at("architecture") == "ldm::eval::FashionClassifier");
  CHECK(metadata.at("width") == "4");

  // A different width: the same names, other shapes.
  eval::FashionClassifier<16, float, 2, 8> narrow(8);
  const auto before = narrow.values()[0];
  test::check_message(
      test::error_of([&] { (void)narrow.load(path); }),
      {"classifier.safetensors", "'conv1.weight'", "shape", "[2, 1, 3, 3]", "[4, 1, 3, 3]"});
  CHECK(narrow.values()[0] == before);

  // A tensor missing, and one the classifier does not have.
  const fs::path partial = dir.path / "partial.safetensors";
  io::SafetensorsWriter writer;
  for (const auto& info : saved_model.infos())
    if (info.name != "fc2.bias")
      writer.add(info.name, nn::to_torch_layout(info, saved_model.values().data()),
                 info.torch_shape);
  writer.write(partial);
  test::check_message(test::error_of([&] { (void)loaded.load(partial); }), {"'fc2.bias'"});
  writer.add("fc3.weight", std::vector<float>(2, 0.0f), {2});
  writer.write(partial);
  test::check_message(test::error_of([&] { (void)loaded.load(partial); }), {"'fc3.weight'"});

  // A weight that is not finite: named, and nothing replaced.
  Small broken(9);
  broken.values()[broken.infos()[2].offset + 1] = std::numeric_limits<float>::quiet_NaN();
  const fs::path nan_file = dir.path / "nan.safetensors";
  broken.save(nan_file, {});
  test::check_message(test::error_of([&] { (void)loaded.load(nan_file); }),
                      {"nan.safetensors", "'" + broken.infos()[2].name + "'", "holds NaN"});
  CHECK(loaded.values()[0] == saved_model.values()[0]);
}
