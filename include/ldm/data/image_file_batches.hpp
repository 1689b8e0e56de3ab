#pragma once
/// @file
/// ImageFileBatches: ShuffledBatches over a folder of images that stays on disk, for folders too
/// large for memory. Each batch is decoded from its files when taken (on BackgroundLoader's
/// thread, when one runs it), fitted as load_image_folder() fits them, in the same order and with
/// the same flips as ShuffledBatches over load_image_folder()'s set of that folder.

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/data/image_folder.hpp"
#include "ldm/data/image_set.hpp"
#include "ldm/io/image_file.hpp"

namespace ldm::data {

/// Seeded shuffled batches of the images under a folder, decoded when taken: the batches of
/// ShuffledBatches(load_image_folder<Resolution, Channels>(folder), seed, flip_horizontally)
/// without the set in memory. The files are listed once, when constructed; a file that cannot be
/// decoded when its turn comes is an error (as Unreadable::reject), since leaving it out would
/// change every later batch. The images have no labels.
template <index_t Resolution, index_t Channels>
class ImageFileBatches {
 public:
  /// Lists the image files under `folder` (as load_image_folder() does) and starts at epoch 0,
  /// position 0.
  /// @param flip_horizontally as ShuffledBatches' argument of that name
  /// @throws ldm::Error when the folder is missing, cannot be listed or has no image files
  ImageFileBatches(const std::filesystem::path& folder, std::uint64_t seed,
                   bool flip_horizontally = false)
      : files_(detail::nonempty_image_files(folder)),
        order_("ldm::data::ImageFileBatches", files_.size(), seed, flip_horizontally) {}

  /// Decodes the next N images; starts a new epoch when fewer than N are left in this one.
  /// Labels are left as they are (there are none).
  /// @throws ldm::Error when N is larger than the number of files, or naming a file that cannot
  ///         be read or decoded
  template <index_t N>
  void next(View<float, Shape<N, Resolution, Resolution, Channels>> images,
            View<std::int32_t, Shape<N>> = View<std::int32_t, Shape<N>>(nullptr)) {
    constexpr std::size_t size = std::size_t(ImageSet<Resolution, Channels>::image_size);
    order_.take(std::size_t(N), [&](std::size_t n, std::size_t i, bool flip) {
      const std::vector<float> fitted =
          fit_image<Resolution, Channels>(io::read_image(files_[i], int(Channels)));
      detail::copy_image<Resolution, Channels>(fitted.data(), images.data() + n * size, flip);
    });
  }

  std::uint64_t epoch() const { return order_.epoch(); }      ///< The current epoch, from 0.
  std::size_t position() const { return order_.position(); }  ///< Images taken in this epoch.
  /// Continues a run: the same (epoch, position) as a saved one gives the same next batches.
  /// @throws ldm::Error when position is larger than the number of files (nothing changes then)
  void seek(std::uint64_t epoch, std::size_t position) { order_.seek(epoch, position); }
  /// Whether the image at `position` of `epoch` is mirrored: always false with flips off.
  bool flips(std::uint64_t epoch, std::size_t position) const {
    return order_.flips(epoch, position);
  }
  /// Always false: a folder's images have no labels.
  bool has_labels() const { return false; }
  /// The image files, in the order load_image_folder() reads them.
  const std::vector<std::filesystem::path>& files() const { return files_; }

 private:
  std::vector<std::filesystem::path> files_;
  detail::EpochOrder order_;
};

}  // namespace ldm::data
