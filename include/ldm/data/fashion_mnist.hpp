#pragma once
/// @file
/// Fashion-MNIST from its IDX files (Debian's dataset-fashion-mnist puts them under
/// /usr/share/datasets/fashion-mnist): 28x28 grey images, padded with background (-1) to the
/// configured resolution, scaled from [0, 255] to [-1, 1], labels 0-9 kept.

#include <filesystem>
#include <string>

#include "ldm/data/image_set.hpp"
#include "ldm/io/idx.hpp"

namespace ldm::data {

/// Where Debian's dataset-fashion-mnist installs the IDX files.
inline const std::filesystem::path fashion_mnist_folder = "/usr/share/datasets/fashion-mnist";

/// Which half of Fashion-MNIST.
enum class Split {
  train,  ///< the 60,000 training images (train-*-idx*-ubyte.gz)
  test    ///< the 10,000 test images (t10k-*-idx*-ubyte.gz)
};

/// One split of Fashion-MNIST, labelled 0-9, each 28x28 image centred in Resolution x Resolution
/// with background (-1) padding and scaled to [-1, 1].
/// @tparam Resolution 28 plus an even padding (a compile error otherwise)
/// @throws ldm::Error when a file is missing or not valid IDX, the images are not 28x28, the
///         label count differs from the image count, or a label is not 0-9
template <index_t Resolution = 32>
ImageSet<Resolution, 1> load_fashion_mnist(
    Split split, const std::filesystem::path& folder = fashion_mnist_folder) {
  static_assert(Resolution >= 28 && (Resolution - 28) % 2 == 0,
                "ldm::data::load_fashion_mnist: the resolution must be 28 plus an even padding");
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const auto image_path = folder / (prefix + "-images-idx3-ubyte.gz");
  const auto label_path = folder / (prefix + "-labels-idx1-ubyte.gz");
  const io::IdxArray images = io::read_idx(image_path);
  const io::IdxArray labels = io::read_idx(label_path);
  if (images.extents.size() != 3 || images.extents[1] != 28 || images.extents[2] != 28)
    fail_expected(image_path.string() + ": extents", "[count, 28, 28]",
                  std::to_string(images.extents.size()) + " dimensions");
  if (labels.extents.size() != 1 || labels.extents[0] != images.extents[0])
    fail_expected(label_path.string() + ": label count",
                  std::to_string(images.extents[0]) + " (one per image in " +
                      image_path.filename().string() + ")",
                  labels.extents.empty() ? 0 : labels.extents[0]);

  constexpr index_t pad = (Resolution - 28) / 2;
  ImageSet<Resolution, 1> set;
  const std::size_t count = images.extents[0];
  set.pixels.assign(count * std::size_t(Resolution * Resolution), -1.0f);
  set.labels.resize(count);
  for (std::size_t n = 0; n < count; ++n) {
    const std::uint8_t label = labels.data[n];
    if (label > 9)
      fail_expected(label_path.string() + ": label " + std::to_string(n), "0-9", int(label));
    set.labels[n] = label;
    for (index_t h = 0; h < 28; ++h)
      for (index_t w = 0; w < 28; ++w)
        set.pixels[n * Resolution * Resolution + std::size_t((h + pad) * Resolution + w + pad)] =
            float(images.data[n * 784 + std::size_t(h * 28 + w)]) / 127.5f - 1.0f;
  }
  return set;
}

}  // namespace ldm::data
