#pragma once
/// @file
/// IDX files (the MNIST / Fashion-MNIST format), plain or gzip-compressed: a big-endian header
/// (two zero bytes, a type code, the number of dimensions, then each extent as a u32) followed by
/// the data. Files are untrusted input: every inconsistency is an ldm::Error naming the file.

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/io/file.hpp"

namespace ldm::io {

/// An IDX file of unsigned bytes (type code 0x08), the only type the datasets use.
struct IdxArray {
  std::vector<std::uint32_t> extents;  ///< One per dimension, outermost first.
  std::vector<std::uint8_t> data;      ///< The product of the extents, row-major.
};

namespace detail {

inline bool is_gzip(const std::vector<std::byte>& bytes) {
  return bytes.size() >= 2 && bytes[0] == std::byte{0x1f} && bytes[1] == std::byte{0x8b};
}

// The whole decompressed stream; a corrupt or truncated stream is an error, not a short read.
inline std::vector<std::uint8_t> gunzip(const std::vector<std::byte>& compressed,
                                        const std::string& name) {
  z_stream stream{};
  // 16 + MAX_WBITS: expect a gzip header and trailer (and check its CRC).
  if (inflateInit2(&stream, 16 + MAX_WBITS) != Z_OK) fail(name, ": cannot start zlib");
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(compressed.data()));
  stream.avail_in = static_cast<uInt>(compressed.size());
  std::vector<std::uint8_t> out;
  std::uint8_t buffer[1 << 16];
  int status = Z_OK;
  while (status == Z_OK) {
    stream.next_out = buffer;
    stream.avail_out = sizeof(buffer);
    status = inflate(&stream, Z_NO_FLUSH);
    if (status != Z_OK && status != Z_STREAM_END) break;
    out.insert(out.end(), buffer, buffer + (sizeof(buffer) - stream.avail_out));
    if (status == Z_OK && stream.avail_in == 0 && stream.avail_out != 0) {
      status = Z_BUF_ERROR;  // input ended inside the stream
      break;
    }
  }
  const std::string message = stream.msg ? stream.msg : "the stream ends before its end marker";
  inflateEnd(&stream);
  if (status != Z_STREAM_END) fail(name, ": not a valid gzip stream (", message, ")");
  return out;
}

inline std::uint32_t big_endian_u32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) |
         std::uint32_t(p[3]);
}

}  // namespace detail

/// Parses an IDX file's bytes (gzip-compressed or not); `name` is used in error messages.
/// @throws ldm::Error when the gzip stream is corrupt or truncated, the type is not unsigned
///         bytes, the header is short or has no dimensions, the extents describe more than 2^40
///         bytes, or the data is not exactly as long as they say
inline IdxArray parse_idx(const std::vector<std::byte>& file_bytes, const std::string& name) {
  const std::vector<std::uint8_t> bytes =
      detail::is_gzip(file_bytes)
          ? detail::gunzip(file_bytes, name)
          : std::vector<std::uint8_t>(
                reinterpret_cast<const std::uint8_t*>(file_bytes.data()),
                reinterpret_cast<const std::uint8_t*>(file_bytes.data()) + file_bytes.size());
  if (bytes.size() < 4) fail_expected(name + ": header", "at least 4 bytes", bytes.size());
  if (bytes[0] != 0 || bytes[1] != 0 || bytes[2] != 0x08)
    fail(name, ": magic number: expected 00 00 08 (unsigned bytes), found ", int(bytes[0]), " ",
         int(bytes[1]), " ", int(bytes[2]));
  const std::size_t rank = bytes[3];
  if (rank == 0) fail_expected(name + ": number of dimensions", "at least 1", 0);
  const std::size_t header = 4 + 4 * rank;
  if (bytes.size() < header)
    fail_expected(name + ": header", std::to_string(header) + " bytes", bytes.size());
  IdxArray array;
  std::uint64_t count = 1;
  for (std::size_t d = 0; d < rank; ++d) {
    array.extents.push_back(detail::big_endian_u32(bytes.data() + 4 + 4 * d));
    count *= array.extents.back();
    if (count > (std::uint64_t(1) << 40)) fail(name, ": the extents describe more than 2^40 bytes");
  }
  if (bytes.size() - header != count)
    fail_expected(name + ": data", std::to_string(count) + " bytes after the header",
                  std::to_string(bytes.size() - header) + " bytes");
  array.data.assign(bytes.begin() + std::ptrdiff_t(header), bytes.end());
  return array;
}

/// Reads and parses an IDX file (gzip-compressed or not).
/// @throws ldm::Error when the file cannot be read or parse_idx() refuses it
inline IdxArray read_idx(const std::filesystem::path& path) {
  return parse_idx(read_file(path), path.string());
}

}  // namespace ldm::io
