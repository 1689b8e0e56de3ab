#pragma once
/// @file
/// A folder of the user's own images as an unlabelled ImageSet: every .png .jpg .jpeg .bmp .tga
/// .gif file (extension in any case) in the folder and its subfolders, in sorted path order so
/// that a folder always gives the same set in the same order (and the same shuffled batches).
/// Other files are ignored; symbolic links to folders are not followed (no cycles).
///
/// Each image is centre-cropped to a square (the larger side loses floor((w - h) / 2) pixels at its
/// start and the rest at its end) and resized to Resolution x Resolution:
/// - shrinking averages areas (a box filter: each output pixel is the mean of the source area it
///   covers, fractional pixels weighted by their overlap), so fine detail averages out instead of
///   aliasing as point sampling would;
/// - enlarging is bilinear between pixel centres (PyTorch's align_corners=False, edges clamped);
///   a box filter would only repeat pixels;
/// - a square image at the resolution already is copied exactly.
/// Channels are 1 (stb's integer luma of colour images) or 3 (grey repeated), alpha is dropped,
/// and values are scaled from [0, 255] to [-1, 1] as for Fashion-MNIST: x / 127.5 - 1.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/data/image_set.hpp"
#include "ldm/io/image_file.hpp"

namespace ldm::data {

/// What load_image_folder does with a file that has an image extension but cannot be read or
/// decoded: leave it out (and list it in the report), or fail.
enum class Unreadable {
  skip,   ///< leave it out and list it in ImageFolderReport::skipped
  reject  ///< fail with an ldm::Error naming it
};

/// What load_image_folder() (or load_image_folder_cached()) read and left out.
struct ImageFolderReport {
  std::size_t loaded = 0;  ///< Images in the set.
  /// Each left-out file with the error message that says why.
  std::vector<std::pair<std::filesystem::path, std::string>> skipped;
  /// Whether the pixels came from load_image_folder_cached()'s cache rather than the files.
  bool from_cache = false;
  /// Why load_image_folder_cached() decoded the files instead (no cache yet, one made from
  /// other files or settings, one that could not be read); empty when the cache was used.
  std::string cache_note;
};

namespace detail {

inline bool has_image_extension(const std::filesystem::path& path) {
  std::string extension = path.extension().string();
  for (char& c : extension)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  for (const char* known : {".png", ".jpg", ".jpeg", ".bmp", ".tga", ".gif"})
    if (extension == known) return true;
  return false;
}

inline std::vector<std::filesystem::path> image_files(const std::filesystem::path& folder) {
  namespace fs = std::filesystem;
  const std::string name = folder.string();
  std::error_code code;
  const fs::file_status status = fs::status(folder, code);
  if (status.type() == fs::file_type::not_found) fail(name, ": no such folder");
  if (code) fail(name, ": cannot access the folder: ", code.message());
  if (!fs::is_directory(status)) fail_expected(name, "a folder of images", "a file");

  // Folder by folder rather than with recursive_directory_iterator, whose errors do not say
  // which folder could not be listed (libstdc++ leaves the path empty).
  std::vector<fs::path> files, pending{folder};
  while (!pending.empty()) {
    const fs::path current = std::move(pending.back());
    pending.pop_back();
    auto cannot_list = [&] {
      fail(current.string(), ": cannot list the folder: ", code.message());
    };
    fs::directory_iterator it(current, code), end;
    if (code) cannot_list();
    for (; it != end; it.increment(code)) {
      const fs::directory_entry& entry = *it;
      // A symbolic link to a folder is not followed (no cycles); is_regular_file follows a link
      // to a file, and a broken link is simply not a file.
      std::error_code unknown;
      if (entry.is_directory(unknown) && !entry.is_symlink(unknown))
        pending.push_back(entry.path());
      else if (entry.is_regular_file(unknown) && has_image_extension(entry.path()))
        files.push_back(entry.path());
    }
    if (code) cannot_list();
  }
  // The file system's listing order is arbitrary (it differs between file systems and copies).
  std::sort(files.begin(), files.end());
  return files;
}

// image_files(folder), which must not be empty: an empty folder is an error, not an empty run.
inline std::vector<std::filesystem::path> nonempty_image_files(
    const std::filesystem::path& folder) {
  std::vector<std::filesystem::path> files = image_files(folder);
  if (files.empty())
    fail(folder.string(),
         ": no image files (.png .jpg .jpeg .bmp .tga .gif) in it or its subfolders; an empty "
         "folder is an error, not an empty training run");
  return files;
}

// One output pixel along one axis: the source pixels it reads and their weights (summing to 1).
struct Taps {
  index_t first = 0;
  std::vector<double> weights;
};

// From `source` pixels to `target` pixels along one axis, box-filtered when shrinking (or equal)
// and bilinear when enlarging.
inline std::vector<Taps> resample_taps(index_t source, index_t target) {
  std::vector<Taps> taps(std::size_t(target), Taps{});
  for (index_t o = 0; o < target; ++o) {
    Taps& t = taps[std::size_t(o)];
    if (source >= target) {
      // In units of 1/target of a source pixel, output o covers [o * source, (o + 1) * source)
      // and source pixel j covers [j * target, (j + 1) * target): integers, so the weights of an
      // integer ratio are exact.
      const index_t begin = o * source, end = (o + 1) * source;
      t.first = begin / target;
      for (index_t j = t.first; j * target < end; ++j) {
        const index_t overlap = std::min(end, (j + 1) * target) - std::max(begin, j * target);
        t.weights.push_back(double(overlap) / double(source));
      }
    } else {
      const double centre = std::clamp((double(o) + 0.5) * double(source) / double(target) - 0.5,
                                       0.0, double(source - 1));
      t.first = index_t(std::floor(centre));
      const double fraction = centre - double(t.first);
      t.weights.push_back(1.0 - fraction);
      if (t.first + 1 < source) t.weights.push_back(fraction);
    }
  }
  return taps;
}

// Crops `image` to its centre square and resizes it into out (Resolution x Resolution x
// Channels, in [-1, 1]).
template <index_t Resolution, index_t Channels>
void crop_and_resize(const io::Image8& image, float* out) {
  const index_t width = image.width, height = image.height;
  const index_t side = std::min(width, height);
  const index_t x0 = (width - side) / 2, y0 = (height - side) / 2;
  const std::vector<Taps> taps = resample_taps(side, Resolution);
  constexpr index_t C = Channels;

  // Rows first, into side x Resolution x C; then columns.
  std::vector<double> rows(std::size_t(side * Resolution * C), 0.0);
  for (index_t y = 0; y < side; ++y) {
    const std::uint8_t* in = image.pixels.data() + ((y0 + y) * width + x0) * C;
    double* row = rows.data() + y * Resolution * C;
    for (index_t x = 0; x < Resolution; ++x) {
      const Taps& t = taps[std::size_t(x)];
      for (std::size_t k = 0; k < t.weights.size(); ++k)
        for (index_t c = 0; c < C; ++c)
          row[x * C + c] += t.weights[k] * double(in[(t.first + index_t(k)) * C + c]);
    }
  }
  for (index_t y = 0; y < Resolution; ++y) {
    const Taps& t = taps[std::size_t(y)];
    for (index_t i = 0; i < Resolution * C; ++i) {
      double value = 0.0;
      for (std::size_t k = 0; k < t.weights.size(); ++k)
        value += t.weights[k] * rows[std::size_t((t.first + index_t(k)) * Resolution * C + i)];
      out[y * Resolution * C + i] = float(value / 127.5 - 1.0);
    }
  }
}

}  // namespace detail

/// One decoded image as load_image_folder() makes each file: centre-cropped to a square,
/// resized to Resolution x Resolution, scaled to [-1, 1] (Resolution * Resolution * Channels
/// values, HWC).
/// @param image pixels with Channels channels, as io::read_image(path, Channels) gives them
/// @throws ldm::Error when the image does not have Channels channels or has no pixels
template <index_t Resolution, index_t Channels>
std::vector<float> fit_image(const io::Image8& image) {
  if (image.channels != int(Channels))
    fail_expected("fit_image: channels", Channels, image.channels);
  if (image.width < 1 || image.height < 1 ||
      image.pixels.size() != std::size_t(image.width) * std::size_t(image.height) * Channels)
    fail_expected("fit_image: pixels", "a non-empty image of width x height x channels bytes",
                  image.pixels.size());
  std::vector<float> out(std::size_t(Resolution * Resolution * Channels));
  detail::crop_and_resize<Resolution, Channels>(image, out.data());
  return out;
}

/// Loads every image under `folder` (see the top of this file). A missing folder, a folder without
/// image files and a folder none of whose images can be read are errors: an empty folder is an
/// error, not an empty training run. With Unreadable::reject the first unreadable image is an
/// error naming it; with Unreadable::skip it is left out and listed in report->skipped. The report,
/// when given, is filled even when the call fails.
/// @tparam Channels 1 (grey) or 3 (RGB)
/// @throws ldm::Error in the cases above
template <index_t Resolution, index_t Channels>
ImageSet<Resolution, Channels> load_image_folder(const std::filesystem::path& folder,
                                                 Unreadable policy = Unreadable::skip,
                                                 ImageFolderReport* report = nullptr) {
  static_assert(Channels == 1 || Channels == 3,
                "ldm::data::load_image_folder: Channels must be 1 (grey) or 3 (RGB)");
  static_assert(Resolution >= 1, "ldm::data::load_image_folder: Resolution must be positive");
  ImageFolderReport local;
  ImageFolderReport& result = report ? *report : local;
  result = ImageFolderReport{};

  const std::vector<std::filesystem::path> files = detail::nonempty_image_files(folder);

  using Set = ImageSet<Resolution, Channels>;
  Set set;
  // Reserving for every file avoids the vector's doubling, which would need up to twice the set.
  set.pixels.reserve(files.size() * std::size_t(Set::image_size));
  for (const std::filesystem::path& file : files) {
    io::Image8 image;
    try {
      image = io::read_image(file, int(Channels));
    } catch (const Error& e) {
      if (policy == Unreadable::reject) throw;
      result.skipped.emplace_back(file, e.what());
      continue;
    }
    const std::size_t offset = set.pixels.size();
    set.pixels.resize(offset + std::size_t(Set::image_size));
    detail::crop_and_resize<Resolution, Channels>(image, set.pixels.data() + offset);
    ++result.loaded;
  }
  if (result.loaded == 0)
    fail(folder.string(), ": none of its ", files.size(),
         " image files could be read (the first: ", result.skipped.front().second,
         "); an empty folder is an error, not an empty training run");
  return set;
}

}  // namespace ldm::data
