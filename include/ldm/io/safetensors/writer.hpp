#pragma once
/// @file
/// SafetensorsWriter: collects tensors (converted to their stored dtype when added) and metadata,
/// and writes them as one safetensors file, atomically.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ldm/core/dtype.hpp"
#include "ldm/core/error.hpp"
#include "ldm/io/file.hpp"
#include "ldm/io/json.hpp"
#include "ldm/io/safetensors/dtype.hpp"

namespace ldm::io {

/// Collects tensors and metadata in memory, then writes them as one safetensors file.
class SafetensorsWriter {
 public:
  /// Stores `data` as F32, or as BF16 rounded to nearest even (ldm::bf16).
  /// @param name the tensor's name: UTF-8, unique, not "__metadata__"
  /// @param data the elements, row-major
  /// @param shape the extents: non-negative, with a product equal to data's size
  /// @param stored F32 or BF16
  /// @throws ldm::Error when any of the above does not hold
  void add(std::string name, std::span<const float> data, std::vector<std::int64_t> shape,
           DType stored = DType::F32) {
    const std::string at = "safetensors writer: tensor " + detail::quote(name);
    if (stored != DType::F32 && stored != DType::BF16)
      fail_expected(at + ": dtype", "F32 or BF16", to_string(stored));
    require_utf8(at, name);
    if (name == "__metadata__") fail_expected(at, "a tensor name", "the metadata key");
    if (std::ranges::any_of(tensors_, [&](const Stored& t) { return t.name == name; }))
      fail_expected(at, "a name not added before", "a second tensor of that name");
    std::uint64_t count = 1;
    for (std::int64_t extent : shape) {
      if (extent < 0 || __builtin_mul_overflow(count, std::uint64_t(extent), &count))
        fail_expected(at + ": shape", "non-negative extents with a product below 2^64",
                      detail::format_shape(shape));
    }
    if (count != data.size())
      fail_expected(at,
                    std::to_string(count) + " elements for shape " + detail::format_shape(shape),
                    std::to_string(data.size()) + " elements");

    std::vector<std::byte> bytes(data.size() * byte_size(stored));
    if (stored == DType::F32) {
      std::ranges::copy(std::as_bytes(data), bytes.begin());
    } else {
      for (std::size_t i = 0; i < data.size(); ++i) {
        std::uint16_t bits = bf16(data[i]).bits;
        std::memcpy(bytes.data() + 2 * i, &bits, 2);
      }
    }
    tensors_.push_back({std::move(name), stored, std::move(shape), std::move(bytes)});
  }

  /// A string in the header's `__metadata__`. A later value for the same key replaces the
  /// earlier one.
  /// @throws ldm::Error when the key or value is not valid UTF-8
  void set_metadata(std::string key, std::string value) {
    require_utf8("safetensors writer: metadata key", key);
    require_utf8("safetensors writer: metadata " + detail::quote(key), value);
    metadata_[std::move(key)] = std::move(value);
  }

  /// Replaces `path` atomically (see AtomicFileWriter): on failure the previous file is intact.
  /// @throws ldm::Error when the file cannot be written
  void write(const std::filesystem::path& path) const {
    // Larger elements first, as the reference writer does: with the header padded to 8 bytes,
    // every tensor then starts at a multiple of its element size and can be mapped in place.
    std::vector<const Stored*> order;
    for (const Stored& t : tensors_)
      order.push_back(&t);
    std::ranges::stable_sort(order, std::greater<>{},
                             [](const Stored* t) { return byte_size(t->dtype); });

    Json header = Json::object();
    std::uint64_t offset = 0;
    for (const Stored* t : order) {
      header[t->name] = {{"dtype", std::string(to_string(t->dtype))},
                         {"shape", t->shape},
                         {"data_offsets", {offset, offset + t->bytes.size()}}};
      offset += t->bytes.size();
    }
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    std::uint64_t header_size = text.size();

    AtomicFileWriter file(path);
    file.write(std::as_bytes(std::span(&header_size, 1)));
    file.write(std::as_bytes(std::span(text)));
    for (const Stored* t : order)
      file.write(t->bytes);
    file.commit();
  }

 private:
  struct Stored {
    std::string name;
    DType dtype;
    std::vector<std::int64_t> shape;
    std::vector<std::byte> bytes;
  };

  // The header is JSON, which holds only UTF-8; checked here so that write() cannot fail on it.
  static void require_utf8(const std::string& at, const std::string& text) {
    if (!detail::is_utf8(text)) fail_expected(at, "UTF-8 text", "invalid UTF-8");
  }

  std::vector<Stored> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace ldm::io
