#pragma once
/// @file
/// safetensors element types, their names in the header and their sizes, and the helpers the
/// reader and writer share for messages.

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <sstream>
#include <string>
#include <string_view>

namespace ldm::io {

static_assert(std::endian::native == std::endian::little,
              "ldm::io: safetensors data is little-endian and is copied without byte swaps");

/// Every dtype of the format with a whole number of bytes per element; the reader accepts all of
/// them (a checkpoint may hold integer buffers next to the weights) and converts the float ones.
/// The enumerators are named as the format's header names them.
enum class DType {
  BOOL,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  F64,
  I64,
  U64
};

namespace detail {
struct DTypeInfo {
  DType dtype;
  std::string_view name;
  std::size_t size;
};
inline constexpr std::array<DTypeInfo, 15> kDTypes{{
    {DType::BOOL, "BOOL", 1},
    {DType::U8, "U8", 1},
    {DType::I8, "I8", 1},
    {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::F8_E4M3, "F8_E4M3", 1},
    {DType::I16, "I16", 2},
    {DType::U16, "U16", 2},
    {DType::F16, "F16", 2},
    {DType::BF16, "BF16", 2},
    {DType::I32, "I32", 4},
    {DType::U32, "U32", 4},
    {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},
    {DType::I64, "I64", 8},
    {DType::U64, "U64", 8},
}};
constexpr const DTypeInfo& info(DType dtype) {
  return *std::ranges::find(kDTypes, dtype, &DTypeInfo::dtype);
}

// "[4, 3]"
inline std::string format_shape(std::span<const std::int64_t> shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t i = 0; i < shape.size(); ++i)
    out << (i ? ", " : "") << shape[i];
  out << ']';
  return out.str();
}

// Text from a file, made fit for a message: control bytes (and, for text that may not be UTF-8,
// every non-ASCII byte) escaped, and cut short, so that hostile input cannot flood or garble it.
inline std::string printable(std::string_view text, bool escape_non_ascii = false) {
  constexpr std::size_t kLimit = 160;
  std::string out;
  for (unsigned char c : text) {
    bool continuation = (c & 0xC0) == 0x80;
    // Cut at a character boundary: never inside a UTF-8 sequence that is kept as it is.
    if (out.size() >= kLimit && (escape_non_ascii || !continuation)) {
      out += "...";
      break;
    }
    if (c < 0x20 || c == 0x7F || (escape_non_ascii && c >= 0x80)) {
      constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// A name from a parsed header (so valid UTF-8), as messages show it: 'conv.weight'.
inline std::string quote(std::string_view name) {
  std::string out = "'";
  out += printable(name);
  out += '\'';
  return out;
}
}  // namespace detail

/// The dtype's name in a safetensors header ("F32", "BF16", ...).
constexpr std::string_view to_string(DType dtype) {
  return detail::info(dtype).name;
}
/// Bytes per element.
constexpr std::size_t byte_size(DType dtype) {
  return detail::info(dtype).size;
}
/// The dtype a header names, or nullopt for a name the format does not have.
constexpr std::optional<DType> parse_dtype(std::string_view name) {
  auto it = std::ranges::find(detail::kDTypes, name, &detail::DTypeInfo::name);
  if (it == detail::kDTypes.end()) return std::nullopt;
  return it->dtype;
}

}  // namespace ldm::io
