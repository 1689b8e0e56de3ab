#pragma once
/// @file
/// A data set of images in memory, NHWC floats in [-1, 1] with integer labels, and seeded
/// shuffled batches over it: the same seed gives the same batches, whatever the batch size
/// of other runs. Epoch e visits the images in a Fisher-Yates permutation drawn from the Philox
/// stream (seed, e); a final partial batch is dropped (the batch is a compile-time extent).
/// Optional random horizontal flips come from a stream of their own, (seed, 2^63 + e), element p
/// deciding the image at position p of epoch e, so they too depend only on (epoch, position).

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/core/random.hpp"
#include "ldm/core/tensor.hpp"

namespace ldm::data {

/// Square images of Resolution x Resolution x Channels in memory, with optional labels.
template <index_t Resolution, index_t Channels>
struct ImageSet {
  /// @{
  /// The images' height (= width) and channels.
  static constexpr index_t resolution = Resolution, channels = Channels;
  /// @}
  static constexpr index_t image_size = Resolution * Resolution * Channels;  ///< Floats per image.
  std::vector<float> pixels;         ///< count * image_size, NHWC, in [-1, 1]
  std::vector<std::int32_t> labels;  ///< count, or empty for unlabelled sets
  /// The number of images.
  std::size_t size() const { return pixels.size() / std::size_t(image_size); }
};

namespace detail {

// The order in which ShuffledBatches (and ImageFileBatches) visit `count` items, and which of them
// are flipped: see ShuffledBatches. `owner` names the class in errors.
class EpochOrder {
 public:
  EpochOrder(const char* owner, std::size_t count, std::uint64_t seed, bool flip)
      : owner_(owner), seed_(seed), flip_(flip), order_(count) {
    if (count == 0) fail(owner_, ": the data set is empty");
    shuffle();
  }

  // Calls visit(n, item, flipped) for the n = 0..count-1 items of the next batch, starting a new
  // epoch when fewer than `count` are left in this one.
  template <class Visit>
  void take(std::size_t count, const Visit& visit) {
    if (count > order_.size())
      fail_expected(std::string(owner_) + ": batch size",
                    "at most the data set's " + std::to_string(order_.size()), count);
    if (position_ + count > order_.size()) {
      ++epoch_;
      shuffle();
    }
    for (std::size_t n = 0; n < count; ++n)
      visit(n, order_[position_ + n], flips(epoch_, position_ + n));
    position_ += count;
  }

  void seek(std::uint64_t epoch, std::size_t position) {
    if (position > order_.size())
      fail_expected(std::string(owner_) + ": position", "at most " + std::to_string(order_.size()),
                    position);
    epoch_ = epoch;
    shuffle();
    position_ = position;
  }

  bool flips(std::uint64_t epoch, std::size_t position) const {
    constexpr std::uint64_t flip_streams = std::uint64_t(1) << 63;
    return flip_ && uniform(seed_, flip_streams + epoch, position) < 0.5f;
  }

  std::uint64_t epoch() const { return epoch_; }
  std::size_t position() const { return position_; }

 private:
  void shuffle() {
    std::iota(order_.begin(), order_.end(), std::size_t(0));
    for (std::size_t i = order_.size() - 1; i > 0; --i) {
      const auto j = std::size_t(uniform(seed_, epoch_, i) * double(i + 1));
      std::swap(order_[i], order_[std::min(j, i)]);
    }
    position_ = 0;
  }

  const char* owner_;
  std::uint64_t seed_;
  bool flip_;
  std::uint64_t epoch_ = 0;
  std::size_t position_ = 0;
  std::vector<std::size_t> order_;
};

// Copies one Resolution x Resolution x Channels image, mirrored left to right when `flip`: column
// w of each row becomes column Resolution - 1 - w, a pixel's channels staying together.
template <index_t Resolution, index_t Channels>
void copy_image(const float* from, float* to, bool flip) {
  if (!flip) {
    std::copy_n(from, Resolution * Resolution * Channels, to);
    return;
  }
  for (index_t y = 0; y < Resolution; ++y)
    for (index_t x = 0; x < Resolution; ++x)
      std::copy_n(from + (y * Resolution + Resolution - 1 - x) * Channels, Channels,
                  to + (y * Resolution + x) * Channels);
}

}  // namespace detail

/// Seeded shuffled batches over an ImageSet: epoch e visits the images in a Fisher-Yates order
/// drawn from the Philox stream (seed, e), so the batches depend only on the seed and the
/// position (epoch(), position()), not on where a run was interrupted. A final partial batch of
/// an epoch is dropped.
///
/// With flips on (a constructor argument), the image at position p of epoch e is mirrored left
/// to right when element p of the Philox stream (seed, 2^63 + e) is below 1/2: about half of the
/// images, and the same ones again after seek() to a saved position. The flip streams are apart
/// from the shuffle's (seed, e) for every epoch below 2^63.
template <index_t Resolution, index_t Channels>
class ShuffledBatches {
 public:
  /// Starts at epoch 0, position 0. The set must outlive this object.
  /// @param flip_horizontally mirror about half of the images at random (see above); off gives
  ///        the images as they are in the set
  /// @throws ldm::Error when the set is empty
  ShuffledBatches(const ImageSet<Resolution, Channels>& set, std::uint64_t seed,
                  bool flip_horizontally = false)
      : set_(&set), order_("ldm::data::ShuffledBatches", set.size(), seed, flip_horizontally) {}

  /// Fills the next N images (and labels, when the set has them); starts a new epoch when fewer
  /// than N images are left in this one.
  /// @throws ldm::Error when N is larger than the set
  template <index_t N>
  void next(View<float, Shape<N, Resolution, Resolution, Channels>> images,
            View<std::int32_t, Shape<N>> labels = View<std::int32_t, Shape<N>>(nullptr)) {
    constexpr index_t size = ImageSet<Resolution, Channels>::image_size;
    order_.take(std::size_t(N), [&](std::size_t n, std::size_t i, bool flip) {
      detail::copy_image<Resolution, Channels>(set_->pixels.data() + i * std::size_t(size),
                                               images.data() + n * std::size_t(size), flip);
      if (labels.data() && has_labels()) labels[index_t(n)] = set_->labels[i];
    });
  }

  std::uint64_t epoch() const { return order_.epoch(); }      ///< The current epoch, from 0.
  std::size_t position() const { return order_.position(); }  ///< Images taken in this epoch.
  /// Continues a run: the same (epoch, position) as a saved one gives the same next batches.
  /// @throws ldm::Error when position is larger than the set (nothing changes then)
  void seek(std::uint64_t epoch, std::size_t position) { order_.seek(epoch, position); }

  /// Whether the image at `position` of `epoch` is mirrored: always false with flips off.
  bool flips(std::uint64_t epoch, std::size_t position) const {
    return order_.flips(epoch, position);
  }
  /// Whether next() gives labels: whether the set has them.
  bool has_labels() const { return !set_->labels.empty(); }

 private:
  const ImageSet<Resolution, Channels>* set_;
  detail::EpochOrder order_;
};

}  // namespace ldm::data
