#pragma once
/// @file
/// Images as one PNG grid, for looking at samples and reconstructions: NHWC floats in [-1, 1],
/// `columns` images per row, a gap of background between them, each pixel repeated `zoom` times
/// each way so that 32x32 images are big enough to see.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/io/image_file.hpp"

namespace ldm::io {

/// How write_image_grid() lays images out.
struct GridLayout {
  /// @{
  /// The size of one image (channels 1 or 3).
  index_t height, width, channels;  // of one image
  /// @}
  index_t columns = 8;            ///< Images per row (fewer when there are fewer images).
  int zoom = 2;                   ///< Each pixel is repeated zoom x zoom times.
  int gap = 2;                    ///< pixels between images, before zooming
  std::uint8_t background = 255;  ///< The gaps' grey level.
};

/// Writes NHWC images with values in [-1, 1] (clamped; NaN shows as black) as one PNG grid.
/// @param path the PNG file, replaced atomically
/// @param images a whole number of images of layout's size, one after the other
/// @param layout the images' size and the grid's shape
/// @throws ldm::Error when `images` is empty or not a whole number of images, the channels are
///         not 1 or 3, or the file cannot be written
inline void write_image_grid(const std::filesystem::path& path, std::span<const float> images,
                             const GridLayout& layout) {
  const std::size_t image_size = std::size_t(layout.height * layout.width * layout.channels);
  if (image_size == 0 || images.size() % image_size != 0 || images.empty())
    fail_expected(path.string() + ": image grid data",
                  "a whole number of images of " + std::to_string(image_size) + " values",
                  images.size());
  if (layout.channels != 1 && layout.channels != 3)
    fail_expected(path.string() + ": image grid channels", "1 or 3", layout.channels);
  const auto count = index_t(images.size() / image_size);
  const index_t columns = std::min(layout.columns, count);
  const index_t rows = (count + columns - 1) / columns;
  const index_t cell_h = layout.height + layout.gap, cell_w = layout.width + layout.gap;
  const index_t out_h = (rows * cell_h + layout.gap) * layout.zoom;
  const index_t out_w = (columns * cell_w + layout.gap) * layout.zoom;
  const index_t c = layout.channels;
  std::vector<std::uint8_t> pixels(std::size_t(out_h * out_w * c), layout.background);
  for (index_t n = 0; n < count; ++n) {
    const index_t top = layout.gap + (n / columns) * cell_h,
                  left = layout.gap + (n % columns) * cell_w;
    for (index_t h = 0; h < layout.height * layout.zoom; ++h)
      for (index_t w = 0; w < layout.width * layout.zoom; ++w)
        for (index_t k = 0; k < c; ++k) {
          const float v =
              images[std::size_t(n) * image_size +
                     std::size_t(((h / layout.zoom) * layout.width + w / layout.zoom) * c + k)];
          // NaN (a diverged model) shows as black rather than as undefined behaviour.
          const float byte = std::isnan(v) ? 0.0f : std::clamp((v + 1.0f) * 127.5f, 0.0f, 255.0f);
          pixels[std::size_t(((top * layout.zoom + h) * out_w + left * layout.zoom + w) * c + k)] =
              std::uint8_t(std::lround(byte));
        }
  }
  write_png(path, int(out_w), int(out_h), int(c), pixels);
}

}  // namespace ldm::io
