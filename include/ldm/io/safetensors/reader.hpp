#pragma once
/// @file
/// SafetensorsFile: a safetensors file read into memory and validated as a whole before anything
/// is handed out, so that every later read is in bounds by construction.

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "ldm/core/dtype.hpp"
#include "ldm/core/error.hpp"
#include "ldm/io/file.hpp"
#include "ldm/io/json.hpp"
#include "ldm/io/safetensors/dtype.hpp"

namespace ldm::io {

static_assert(sizeof(std::size_t) == 8, "ldm::io: safetensors offsets are 64-bit");

/// One tensor of a safetensors header, validated.
struct TensorEntry {
  std::string name;                 ///< Its name.
  DType dtype = DType::F32;         ///< Its element type.
  std::vector<std::int64_t> shape;  ///< Its extents.
  /// @{
  /// bytes, relative to the start of the data buffer
  std::size_t begin = 0, end = 0;
  /// @}
};

namespace detail {
using json = Json;

// A JSON value as a message shows it: its text, cut short.
inline std::string describe(const json& value) {
  return printable(value.dump());
}

inline std::optional<std::uint64_t> as_count(const json& value) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(value.get<std::int64_t>());
  return std::nullopt;
}

inline std::optional<std::uint64_t> checked_mul(std::uint64_t a, std::uint64_t b) {
  std::uint64_t product;
  if (__builtin_mul_overflow(a, b, &product)) return std::nullopt;
  return product;
}

// A header needs 3 levels (header, entry, shape). Deeper nesting is refused while parsing, well
// before Json's own limit: nothing in a header needs it, and the key sets below grow with it.
inline constexpr int kMaxNesting = 16;

// Json::parse keeps the last of duplicate keys without a word, and a file whose two "weight"
// entries disagree must not load as whichever came last. The listener sees every key in order;
// one key set per open object finds repeats at any depth.
inline json parse_header(std::string_view text, const std::string& file) {
  struct OpenObject {
    std::set<std::string, std::less<>> keys;
    std::string last_key;
  };
  std::vector<OpenObject> open;
  auto check_keys = [&](JsonEvent event, int depth, const std::string& key) {
    if ((event == JsonEvent::object_start || event == JsonEvent::array_start) &&
        depth >= kMaxNesting)
      fail_expected(file + ": header",
                    "arrays and objects nested at most " + std::to_string(kMaxNesting) + " deep",
                    "deeper nesting");
    if (event == JsonEvent::object_start) {
      open.emplace_back();
    } else if (event == JsonEvent::object_end) {
      open.pop_back();
    } else if (event == JsonEvent::key) {
      if (!open.back().keys.insert(key).second) {
        std::string inside =
            open.size() == 1 ? "the header" : quote(open[open.size() - 2].last_key);
        fail_expected(file + ": header", "unique keys", quote(key) + " twice in " + inside);
      }
      open.back().last_key = key;
    }
  };
  try {
    return json::parse(text, check_keys);
  } catch (const JsonError& e) {
    fail_expected(file + ": header", "valid JSON", printable(e.what(), true));
  }
}

inline float half_to_float(std::uint16_t half) {
  std::uint32_t sign = std::uint32_t(half & 0x8000u) << 16;
  std::uint32_t exponent = (half >> 10) & 0x1Fu, mantissa = half & 0x3FFu;
  if (exponent == 0x1F) return std::bit_cast<float>(sign | 0x7F800000u | (mantissa << 13));
  if (exponent == 0) {
    float magnitude = float(mantissa) * 0x1p-24f;  // zero or subnormal: exact in float
    return sign ? -magnitude : magnitude;
  }
  return std::bit_cast<float>(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

template <class Stored, class T, class Convert>
void convert_elements(const std::byte* source, std::span<T> out, Convert convert) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    Stored raw;
    std::memcpy(&raw, source + i * sizeof(Stored), sizeof(Stored));
    out[i] = static_cast<T>(convert(raw));
  }
}
}  // namespace detail

/// A safetensors file read into memory and validated as a whole when opened: the header is
/// JSON without duplicate keys, every entry has a known dtype, a shape and offsets that match
/// it, and the tensors tile the data buffer without gaps or overlaps.
class SafetensorsFile {
 public:
  /// The reference implementation's limit: a larger header is a corrupt or hostile file.
  static constexpr std::uint64_t kMaxHeaderSize = 100'000'000;

  /// Reads and validates the file at `path`.
  /// @throws ldm::Error when the file cannot be read or is not a valid safetensors file (naming
  ///         the file, the field and what was wrong)
  static SafetensorsFile open(const std::filesystem::path& path) {
    return parse(read_file(path), path.string());
  }

  /// Validates a file's bytes; `name_for_errors` stands for the file in messages.
  /// @throws ldm::Error when the bytes are not a valid safetensors file
  static SafetensorsFile parse(std::vector<std::byte> bytes, std::string name_for_errors) {
    SafetensorsFile file;
    file.file_ = std::move(name_for_errors);
    file.bytes_ = std::move(bytes);
    file.validate();
    return file;
  }

  const std::string& file_name() const { return file_; }  ///< The name used in messages.
  /// The header's `__metadata__` (string to string; empty without one).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  /// The tensors' names, sorted by name.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, entry] : entries_)
      out.push_back(name);
    return out;
  }
  /// Whether the file holds a tensor of this name.
  bool contains(std::string_view name) const { return entries_.contains(name); }
  /// The tensor of this name.
  /// @throws ldm::Error when there is none
  const TensorEntry& entry(std::string_view name) const {
    auto it = entries_.find(name);
    if (it == entries_.end())
      fail_expected(where(name), "a tensor of this name",
                    "none among the file's " + std::to_string(entries_.size()) + " tensors");
    return it->second;
  }

  /// Converts F32, F16, BF16 or F64 to T (float or double). The file's shape must be
  /// expected_shape and `out` must hold exactly its elements.
  /// @throws ldm::Error when there is no such tensor, its shape is not expected_shape, `out` has
  ///         another size, or its dtype is not one of the four
  template <class T>
  void read(std::string_view name, std::span<T> out,
            std::span<const std::int64_t> expected_shape) const {
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                  "SafetensorsFile::read: T must be float or double");
    const TensorEntry& e = entry(name);
    if (!std::ranges::equal(e.shape, expected_shape))
      fail_expected(where(name) + ": shape", detail::format_shape(expected_shape),
                    detail::format_shape(e.shape));
    // Checked even though it is the caller's mistake: with asserts compiled out it would be a
    // write past `out`.
    std::size_t count = (e.end - e.begin) / byte_size(e.dtype);
    if (out.size() != count)
      fail_expected(where(name) + ": destination", std::to_string(count) + " elements",
                    std::to_string(out.size()) + " elements");
    const std::byte* source = bytes_.data() + data_start_ + e.begin;
    auto same = [](auto value) { return value; };
    switch (e.dtype) {
      case DType::F32:
        return detail::convert_elements<float>(source, out, same);
      case DType::F64:
        return detail::convert_elements<double>(source, out, same);
      case DType::BF16:
        return detail::convert_elements<std::uint16_t>(
            source, out, [](std::uint16_t bits) { return float(bf16::from_bits(bits)); });
      case DType::F16:
        return detail::convert_elements<std::uint16_t>(source, out, detail::half_to_float);
      default:
        fail_expected(where(name) + ": dtype", "F32, F16, BF16 or F64", to_string(e.dtype));
    }
  }

  /// Refuses tensors outside `expected`: a checkpoint of another model (or another version of
  /// it) holds tensors this one does not.
  /// @throws ldm::Error when the file holds a tensor not in `expected`, naming a few of them
  void require_only(const std::set<std::string>& expected) const {
    std::vector<std::string_view> extra;
    for (const auto& [name, entry] : entries_)
      if (!expected.contains(name)) extra.push_back(name);
    if (extra.empty()) return;
    std::string listed;
    constexpr std::size_t kShown = 5;
    for (std::size_t i = 0; i < std::min(extra.size(), kShown); ++i)
      listed += (i ? ", " : "") + detail::quote(extra[i]);
    if (extra.size() > kShown) listed += " and " + std::to_string(extra.size() - kShown) + " more";
    fail_expected(file_,
                  "no tensors other than the " + std::to_string(expected.size()) + " expected",
                  listed + " (" + std::to_string(extra.size()) + " in all)");
  }

 private:
  SafetensorsFile() = default;

  std::string where(std::string_view tensor) const {
    return file_ + ": tensor " + detail::quote(tensor);
  }

  void validate() {
    using detail::json;
    if (bytes_.size() < 8)
      fail_expected(file_ + ": size", "at least 8 bytes (the header size)",
                    std::to_string(bytes_.size()) + " bytes");
    std::uint64_t header_size;
    std::memcpy(&header_size, bytes_.data(), 8);
    if (header_size > kMaxHeaderSize)
      fail_expected(file_ + ": header size", "at most " + std::to_string(kMaxHeaderSize),
                    header_size);
    if (header_size > bytes_.size() - 8)
      fail_expected(file_ + ": header size",
                    "at most " + std::to_string(bytes_.size() - 8) + " (the bytes after it)",
                    header_size);
    data_start_ = 8 + header_size;
    const std::uint64_t data_size = bytes_.size() - data_start_;

    json header = detail::parse_header(
        {reinterpret_cast<const char*>(bytes_.data()) + 8, header_size}, file_);
    if (!header.is_object())
      fail_expected(file_ + ": header", "a JSON object", detail::describe(header));
    for (const auto& [key, value] : header.items()) {
      if (key == "__metadata__")
        read_metadata(value);
      else
        entries_.emplace(key, read_entry(key, value, data_size));
    }
    check_coverage(data_size);
  }

  void read_metadata(const detail::json& value) {
    const std::string where_metadata = file_ + ": __metadata__";
    if (!value.is_object())
      fail_expected(where_metadata, "an object of strings", detail::describe(value));
    for (const auto& [key, text] : value.items()) {
      if (!text.is_string())
        fail_expected(where_metadata + " " + detail::quote(key), "a string",
                      detail::describe(text));
      metadata_.emplace(key, text.get<std::string>());
    }
  }

  TensorEntry read_entry(const std::string& name, const detail::json& value,
                         std::uint64_t data_size) const {
    using detail::describe;
    const std::string at = where(name);
    if (!value.is_object())
      fail_expected(at, "an object with dtype, shape and data_offsets", describe(value));
    auto field = [&](const char* key) -> const detail::json& {
      const detail::json* found = value.find(key);
      if (!found) fail_expected(at, std::string("a field \"") + key + "\"", "none");
      return *found;
    };
    TensorEntry e;
    e.name = name;

    const auto& dtype = field("dtype");
    auto parsed = dtype.is_string() ? parse_dtype(dtype.get<std::string>()) : std::nullopt;
    if (!parsed) {
      std::string known;
      for (const auto& info : detail::kDTypes)
        known += (known.empty() ? "" : ", ") + std::string(info.name);
      fail_expected(at + ": dtype", "one of " + known, describe(dtype));
    }
    e.dtype = *parsed;

    const auto& shape = field("shape");
    const char* shape_expected = "an array of integers in [0, 2^63)";
    if (!shape.is_array()) fail_expected(at + ": shape", shape_expected, describe(shape));
    std::uint64_t count = 1;
    for (const auto& extent : shape) {
      auto n = detail::as_count(extent);
      if (!n || *n > std::uint64_t(std::numeric_limits<std::int64_t>::max()))
        fail_expected(at + ": shape", shape_expected, describe(shape));
      e.shape.push_back(static_cast<std::int64_t>(*n));
      auto product = detail::checked_mul(count, *n);
      if (!product) fail_expected(at + ": shape", "an element count below 2^64", describe(shape));
      count = *product;
    }

    const auto& offsets = field("data_offsets");
    const char* offsets_expected = "two integers [begin, end] in [0, 2^64)";
    if (!offsets.is_array() || offsets.size() != 2)
      fail_expected(at + ": data_offsets", offsets_expected, describe(offsets));
    auto begin = detail::as_count(offsets[0]), end = detail::as_count(offsets[1]);
    if (!begin || !end) fail_expected(at + ": data_offsets", offsets_expected, describe(offsets));
    if (*begin > *end) fail_expected(at + ": data_offsets", "begin <= end", describe(offsets));
    if (*end > data_size)
      fail_expected(at + ": data_offsets",
                    "end <= " + std::to_string(data_size) + " (the size of the data buffer)",
                    describe(offsets));
    e.begin = *begin;
    e.end = *end;

    auto bytes = detail::checked_mul(count, byte_size(e.dtype));
    std::string layout = detail::format_shape(e.shape) + " " + std::string(to_string(e.dtype));
    if (!bytes) fail_expected(at, "a size below 2^64 bytes", layout);
    if (*bytes != e.end - e.begin)
      fail_expected(at + ": data_offsets",
                    "end - begin = " + std::to_string(*bytes) + " bytes for " + layout,
                    describe(offsets) + ", " + std::to_string(e.end - e.begin) + " bytes");
    return e;
  }

  // The reference reader accepts only a data buffer covered exactly once: bytes that belong to
  // no tensor or to two tensors mean a corrupt or crafted file.
  void check_coverage(std::uint64_t data_size) const {
    std::vector<const TensorEntry*> order;
    for (const auto& [name, entry] : entries_)
      order.push_back(&entry);
    std::ranges::sort(order, {}, [](const TensorEntry* e) { return std::pair(e->begin, e->end); });
    std::uint64_t covered = 0;
    const TensorEntry* last = nullptr;  // the tensor that ends at `covered`
    for (const TensorEntry* e : order) {
      auto range = [e] {
        std::ostringstream text;
        text << '[' << e->begin << ", " << e->end << ']';
        return text.str();
      };
      if (e->begin < covered)
        fail_expected(where(e->name) + ": data_offsets",
                      "begin >= " + std::to_string(covered) + " (the end of tensor " +
                          detail::quote(last->name) + ")",
                      range() + ", which overlaps tensor " + detail::quote(last->name));
      if (e->begin > covered)
        fail_expected(where(e->name) + ": data_offsets",
                      "begin " + std::to_string(covered) +
                          (last ? " (the end of tensor " + detail::quote(last->name) + ")"
                                : std::string(" (the start of the data buffer)")) +
                          ": tensors must cover the data buffer without gaps",
                      range());
      if (!last || e->end > covered) last = e;
      covered = e->end;
    }
    if (covered != data_size)
      fail_expected(file_ + ": data buffer",
                    std::to_string(covered) + " bytes (the end of the last tensor)",
                    std::to_string(data_size) + " bytes");
  }

  std::string file_;
  std::vector<std::byte> bytes_;
  std::size_t data_start_ = 0;
  std::map<std::string, TensorEntry, std::less<>> entries_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace ldm::io
