#pragma once
/// @file
/// load_image_folder_cached(): an image folder's decoded, cropped and resized pixels kept in one
/// cache file, so that a later run with the same folder skips decoding.
///
/// The cache is a safetensors file holding the tensor "pixels" (float32, count x Resolution x
/// Resolution x Channels, in the folder's order) and three metadata strings:
/// - "ldm.image_folder.key": the key, JSON text of an object with "version" (the preprocessing's
///   version, image_folder_cache_version), "resolution", "channels", "unreadable" ("skip" or
///   "reject") and "files": for every image file of the folder in the loader's order, [its path
///   relative to the folder, its size in bytes, its modification time in nanoseconds];
/// - "ldm.image_folder.skipped": JSON [[relative path, message], ...], the files left out;
/// - "ldm.image_folder.checksum": the pixels' FNV-1a checksum (64-bit, over their 32-bit
///   words), in decimal.
/// Paths and messages are stored with every byte outside printable ASCII, and '%', written as
/// %XX, since file names need not be UTF-8 and JSON holds only UTF-8.
///
/// The cache is used only when its key equals the folder's key now: any file added, removed,
/// renamed, resized or touched, another resolution, channel count or policy, or a new version of
/// the preprocessing makes a new cache. It is a cache, never the data: one that is missing,
/// stale, truncated or corrupt is rebuilt from the files (and the report says why); only a cache
/// that cannot be written is an error.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/data/image_folder.hpp"
#include "ldm/io/json.hpp"
#include "ldm/io/safetensors.hpp"

namespace ldm::data {

/// The version of load_image_folder()'s preprocessing (crop, resize, scaling) in the cache's
/// key: raised whenever that preprocessing changes the pixels it gives, so that old caches are
/// rebuilt rather than used.
inline constexpr int image_folder_cache_version = 1;

namespace detail {

inline std::string escape_bytes(const std::string& text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7F && byte != '%') {
      out += c;
    } else {
      out += '%';
      out += hex[byte >> 4];
      out += hex[byte & 0xF];
    }
  }
  return out;
}

// The inverse of escape_bytes; `where` names the cache in errors.
inline std::string unescape_bytes(const std::string& text, const std::string& where) {
  auto digit = [&](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    fail_expected(where + ": escaped text", "%XX with hexadecimal digits", text);
  };
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size())
      fail_expected(where + ": escaped text", "%XX with hexadecimal digits", text);
    out += char(digit(text[i + 1]) * 16 + digit(text[i + 2]));
    i += 2;
  }
  return out;
}

inline std::uint64_t pixel_checksum(std::span<const float> pixels) {
  std::uint64_t hash = 0xCBF29CE484222325u;
  for (const float value : pixels) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    hash = (hash ^ bits) * 0x100000001B3u;
  }
  return hash;
}

// The cache key of the folder as it is now (see the top of this file).
template <index_t Resolution, index_t Channels>
std::string image_folder_key(const std::filesystem::path& folder,
                             const std::vector<std::filesystem::path>& files, Unreadable policy) {
  io::Json listed = io::Json::array();
  for (const std::filesystem::path& file : files) {
    // A file that cannot be examined is listed as such: the loader will leave it out too.
    std::error_code code;
    const std::uintmax_t size = std::filesystem::file_size(file, code);
    const auto modified = std::filesystem::last_write_time(file, code);
    const std::int64_t nanoseconds =
        std::chrono::duration_cast<std::chrono::nanoseconds>(modified.time_since_epoch()).count();
    listed.push_back({escape_bytes(file.lexically_relative(folder).string()),
                      code ? -1 : std::int64_t(size), code ? 0 : nanoseconds});
  }
  return io::Json{{"version", image_folder_cache_version},
                  {"resolution", Resolution},
                  {"channels", Channels},
                  {"unreadable", policy == Unreadable::skip ? "skip" : "reject"},
                  {"files", listed}}
      .dump();
}

// The set in `cache` when it was made with `key`; otherwise nothing, with the reason in `note`.
template <index_t Resolution, index_t Channels>
std::optional<ImageSet<Resolution, Channels>> read_image_folder_cache(
    const std::filesystem::path& folder, const std::filesystem::path& cache, const std::string& key,
    ImageFolderReport& report) {
  const std::string name = cache.string();
  std::error_code code;
  if (!std::filesystem::exists(std::filesystem::symlink_status(cache, code))) {
    report.cache_note = name + ": no cache yet";
    return std::nullopt;
  }
  try {
    const io::SafetensorsFile file = io::SafetensorsFile::open(cache);
    const auto& metadata = file.metadata();
    auto field = [&](const std::string& field_name) -> const std::string& {
      const auto it = metadata.find(field_name);
      if (it == metadata.end()) fail(name, ": no metadata ", field_name);
      return it->second;
    };
    if (field("ldm.image_folder.key") != key) {
      report.cache_note = name + ": made from other files or settings";
      return std::nullopt;
    }
    const std::vector<std::int64_t>& shape = file.entry("pixels").shape;
    if (shape.size() != 4 || shape[0] < 1 || shape[1] != Resolution || shape[2] != Resolution ||
        shape[3] != Channels)
      fail_expected(name + ": pixels shape",
                    "[count, " + std::to_string(Resolution) + ", " + std::to_string(Resolution) +
                        ", " + std::to_string(Channels) + "]",
                    io::Json(shape).dump());
    ImageSet<Resolution, Channels> set;
    set.pixels.resize(std::size_t(shape[0]) * std::size_t(set.image_size));
    file.read<float>("pixels", set.pixels, shape);
    if (field("ldm.image_folder.checksum") != std::to_string(pixel_checksum(set.pixels)))
      fail(name, ": the pixels do not match their checksum");

    ImageFolderReport cached;
    try {
      for (const io::Json& entry : io::Json::parse(field("ldm.image_folder.skipped")))
        cached.skipped.emplace_back(folder / unescape_bytes(entry.at(0).get<std::string>(), name),
                                    unescape_bytes(entry.at(1).get<std::string>(), name));
    } catch (const Error& e) {
      fail("ldm.image_folder.skipped: ", e.what());
    }
    cached.loaded = set.size();
    cached.from_cache = true;
    report = std::move(cached);
    return set;
  } catch (const Error& e) {
    report.cache_note = name + ": cannot be read (" + e.what() + ")";
  }
  return std::nullopt;
}

}  // namespace detail

/// load_image_folder() through a cache file (see the top of this file): when `cache` was made
/// from the folder as it is now, with the same Resolution, Channels and policy, the pixels and
/// the report's skipped files come from it without decoding an image; otherwise the folder is
/// loaded and `cache` is replaced atomically. report->from_cache says which; report->cache_note
/// says why the cache was not used.
/// @param cache the cache file; its folder must exist
/// @throws ldm::Error as load_image_folder(), and naming `cache` when it cannot be written
template <index_t Resolution, index_t Channels>
ImageSet<Resolution, Channels> load_image_folder_cached(const std::filesystem::path& folder,
                                                        const std::filesystem::path& cache,
                                                        Unreadable policy = Unreadable::skip,
                                                        ImageFolderReport* report = nullptr) {
  ImageFolderReport local;
  ImageFolderReport& result = report ? *report : local;
  result = ImageFolderReport{};
  // The key is taken before decoding: a file changed meanwhile makes the next run's key differ.
  const std::string key =
      detail::image_folder_key<Resolution, Channels>(folder, detail::image_files(folder), policy);
  if (auto cached =
          detail::read_image_folder_cache<Resolution, Channels>(folder, cache, key, result))
    return std::move(*cached);

  const std::string note = std::move(result.cache_note);
  ImageSet<Resolution, Channels> set =
      load_image_folder<Resolution, Channels>(folder, policy, &result);
  result.cache_note = note;

  io::Json skipped = io::Json::array();
  for (const auto& [file, message] : result.skipped)
    skipped.push_back({detail::escape_bytes(file.lexically_relative(folder).string()),
                       detail::escape_bytes(message)});
  try {
    io::SafetensorsWriter writer;
    writer.add("pixels", set.pixels, {std::int64_t(set.size()), Resolution, Resolution, Channels});
    writer.set_metadata("ldm.image_folder.key", key);
    writer.set_metadata("ldm.image_folder.skipped", skipped.dump());
    writer.set_metadata("ldm.image_folder.checksum",
                        std::to_string(detail::pixel_checksum(set.pixels)));
    writer.write(cache);
  } catch (const Error& e) {
    fail(cache.string(), ": cannot write the image folder cache: ", e.what());
  }
  return set;
}

}  // namespace ldm::data
