#pragma once
/// @file
/// A training run's images: the set it trains on and held-out images for reconstruction grids
/// and validation. A folder (--data) is decoded once into a cache file and reused while it is
/// unchanged; a program may supply its own data instead (Fashion-MNIST for `fashion`).

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "ldm/data/image_folder.hpp"
#include "ldm/data/image_folder_cache.hpp"
#include "ldm/data/image_set.hpp"

namespace ldm::train {

/// The images of a run.
template <index_t Resolution, index_t Channels>
struct TrainingData {
  data::ImageSet<Resolution, Channels> train;  ///< What the steps draw their batches from.
  /// Images the steps never see (reconstruction grids, validation); when a folder is too small
  /// to spare some, its first training images, and held_out_is_training says so.
  data::ImageSet<Resolution, Channels> held_out;
  bool held_out_is_training = false;  ///< held_out are training images.
  /// What the data is, kept in checkpoints so that a resume on other data is refused.
  std::string description;
};

/// How many images a folder run holds out for validation and reconstruction grids.
inline constexpr std::size_t held_out_images = 64;

/// Where --data-cache puts a folder's cache by default: $XDG_CACHE_HOME/ldm/datasets (or
/// ~/.cache/ldm/datasets), one file per folder, size and channel count. Empty when neither
/// variable is set.
inline std::filesystem::path default_data_cache(const std::filesystem::path& folder,
                                                index_t resolution, index_t channels) {
  namespace fs = std::filesystem;
  fs::path root;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    root = xdg;
  else if (const char* home = std::getenv("HOME"); home && *home)
    root = fs::path(home) / ".cache";
  else
    return {};
  fs::path absolute = fs::absolute(folder).lexically_normal();
  if (!absolute.has_filename()) absolute = absolute.parent_path();  // "images/" names "images"
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a: a short stable name per folder
  for (const unsigned char c : absolute.string())
    hash = (hash ^ c) * 1099511628211ull;
  char name[64];
  std::snprintf(name, sizeof name, "-%016llx-%lldx%lldx%lld.safetensors", (unsigned long long)hash,
                (long long)resolution, (long long)resolution, (long long)channels);
  return root / "ldm" / "datasets" / (absolute.filename().string() + name);
}

/// A folder's images: decoded (or read from `cache`, unless it is "none"), then every
/// size / held_out_images-th image held out when the folder has at least 4 * held_out_images
/// (so the held-out images spread over the folder's sorted order), else none.
/// @throws ldm::Error as data::load_image_folder_cached(), or when the folder has fewer images than
///         `at_least`
template <index_t Resolution, index_t Channels>
TrainingData<Resolution, Channels> load_folder_data(const std::filesystem::path& folder,
                                                    data::Unreadable policy,
                                                    const std::string& cache,
                                                    std::size_t at_least) {
  namespace fs = std::filesystem;
  data::ImageFolderReport report;
  data::ImageSet<Resolution, Channels> all;
  if (cache == "none") {
    all = data::load_image_folder<Resolution, Channels>(folder, policy, &report);
  } else {
    const fs::path where =
        cache.empty() ? default_data_cache(folder, Resolution, Channels) : fs::path(cache);
    if (where.empty()) {
      std::printf("data cache: none (neither XDG_CACHE_HOME nor HOME is set)\n");
      all = data::load_image_folder<Resolution, Channels>(folder, policy, &report);
    } else {
      all = data::load_image_folder_cached<Resolution, Channels>(folder, where, policy, &report);
      std::printf("data cache: %s (%s)\n", where.c_str(), report.from_cache ? "read" : "written");
    }
  }
  for (const auto& [file, why] : report.skipped)
    std::printf("skipped %s: %s\n", file.string().c_str(), why.c_str());

  TrainingData<Resolution, Channels> result;
  result.description = "folder:" + fs::absolute(folder).lexically_normal().string();
  constexpr std::size_t image = std::size_t(Resolution * Resolution * Channels);
  const std::size_t count = all.size();
  if (count >= 4 * held_out_images) {
    const std::size_t stride = count / held_out_images;
    for (std::size_t i = 0; i < count; ++i) {
      auto& to = (i % stride == stride - 1 && result.held_out.size() < held_out_images)
                     ? result.held_out
                     : result.train;
      to.pixels.insert(to.pixels.end(), all.pixels.begin() + std::ptrdiff_t(i * image),
                       all.pixels.begin() + std::ptrdiff_t((i + 1) * image));
    }
  } else {
    result.train = std::move(all);
    const std::size_t shown = std::min(count, held_out_images);
    result.held_out.pixels.assign(result.train.pixels.begin(),
                                  result.train.pixels.begin() + std::ptrdiff_t(shown * image));
    result.held_out_is_training = true;
  }
  if (result.train.size() < at_least)
    fail_expected(folder.string() + ": readable images", "at least " + std::to_string(at_least),
                  result.train.size());
  return result;
}

}  // namespace ldm::train
