#pragma once
/// @file
/// Image files through stb: any format stb_image decodes (PNG, JPEG, BMP, TGA, GIF's first
/// frame, ...) in, PNG out. The implementations come compiled from the system's libstb (linked by
/// ldm::ldm), so this header only declares; defining STB_*_IMPLEMENTATION here would clash with it.
/// Files are untrusted input: every failure is an ldm::Error naming the file.

#include <stb_image.h>
#include <stb_image_write.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/io/file.hpp"

namespace ldm::io {

/// 8-bit pixels, height x width x channels, row-major (the layout stb reads and writes).
struct Image8 {
  /// @{
  /// The image's size.
  int width = 0, height = 0, channels = 0;
  /// @}
  std::vector<std::uint8_t> pixels;  ///< height x width x channels bytes.
};

/// Decodes an image into `channels` channels (1 or 3), converting as stb does: colour to grey is
/// stb's integer luma (77 R + 150 G + 29 B) / 256 (a colour JPEG gives its Y plane), grey to colour
/// repeats the grey value, and alpha is dropped, not composited. 16-bit files come out as 8 bits.
/// @throws ldm::Error when channels is not 1 or 3, the file cannot be read or is over 2 GiB, or
///         stb cannot decode it (with stb's reason)
inline Image8 read_image(const std::filesystem::path& path, int channels) {
  const std::string name = path.string();
  if (channels != 1 && channels != 3) fail_expected(name + ": channels", "1 or 3", channels);
  const std::vector<std::byte> bytes = read_file(path);
  // stb takes the length as an int.
  if (bytes.size() > std::size_t(INT_MAX))
    fail_expected(name + ": size", "at most " + std::to_string(INT_MAX) + " bytes", bytes.size());
  int width = 0, height = 0, channels_in_file = 0;
  std::unique_ptr<stbi_uc, void (*)(void*)> decoded(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), int(bytes.size()),
                            &width, &height, &channels_in_file, channels),
      stbi_image_free);
  if (!decoded) {
    const char* reason = stbi_failure_reason();
    fail(name, ": cannot decode the image: ", reason ? reason : "unknown reason");
  }
  Image8 image{width, height, channels, {}};
  const std::size_t size = std::size_t(width) * std::size_t(height) * std::size_t(channels);
  image.pixels.assign(decoded.get(), decoded.get() + size);
  return image;
}

/// Writes an 8-bit PNG (channels 1 grey, 3 RGB, 4 RGBA; pixels height x width x channels). The
/// file is encoded in memory first and then written through AtomicFileWriter, so a failure or a
/// crash leaves the previous file (or none), never a truncated PNG.
/// @throws ldm::Error when channels is not 1, 3 or 4, the size is not positive or too wide for
///         stb, `pixels` does not hold width x height x channels bytes, or the file cannot be
///         written
inline void write_png(const std::filesystem::path& path, int width, int height, int channels,
                      std::span<const std::uint8_t> pixels) {
  const std::string name = path.string();
  if (channels != 1 && channels != 3 && channels != 4)
    fail_expected(name + ": channels", "1, 3 or 4", channels);
  if (width <= 0 || height <= 0)
    fail_expected(name + ": size", "a positive width and height",
                  std::to_string(width) + "x" + std::to_string(height));
  // stb takes the row stride as an int.
  if (std::int64_t(width) * channels > INT_MAX)
    fail_expected(name + ": width", "at most " + std::to_string(INT_MAX / channels), width);
  const std::size_t expected = std::size_t(width) * std::size_t(height) * std::size_t(channels);
  if (pixels.size() != expected)
    fail_expected(name + ": pixels",
                  std::to_string(expected) + " bytes (" + std::to_string(width) + "x" +
                      std::to_string(height) + "x" + std::to_string(channels) + ")",
                  pixels.size());

  struct Sink {
    std::vector<std::byte> bytes;
    bool out_of_memory = false;
  } sink;
  // An exception must not unwind through stb's C frames, so the callback only records failure.
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<Sink*>(context);
    const auto* first = static_cast<const std::byte*>(data);
    try {
      out->bytes.insert(out->bytes.end(), first, first + size);
    } catch (...) {
      out->out_of_memory = true;
    }
  };
  if (!stbi_write_png_to_func(append, &sink, width, height, channels, pixels.data(),
                              width * channels) ||
      sink.out_of_memory)
    fail(name, ": cannot encode the PNG (out of memory)");

  AtomicFileWriter file(path);
  file.write(sink.bytes);
  file.commit();
}

}  // namespace ldm::io
