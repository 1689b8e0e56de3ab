// IDX reading (the Fashion-MNIST format), plain and gzip'd, and its refusal of bad files.
#include <doctest/doctest.h>

#include <zlib.h>

#include <filesystem>
#include <ldm/io/idx.hpp>
#include <vector>

#include "support/errors.hpp"

using namespace ldm;
using test::check_message;
using test::error_of;

namespace {
std::vector<std::byte> idx_bytes(std::vector<std::uint32_t> extents, std::size_t data_size,
                                 std::uint8_t type = 0x08) {
  std::vector<std::byte> out = {std::byte{0}, std::byte{0}, std::byte{type},
                                std::byte(extents.size())};
  for (auto e : extents)
    for (int shift : {24, 16, 8, 0})
      out.push_back(std::byte((e >> shift) & 0xff));
  for (std::size_t i = 0; i < data_size; ++i)
    out.push_back(std::byte(i * 7 % 251));
  return out;
}

std::vector<std::byte> gzip(const std::vector<std::byte>& plain) {
  z_stream stream{};
  REQUIRE(deflateInit2(&stream, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::vector<std::byte> out(deflateBound(&stream, uLong(plain.size())) + 32);
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(plain.data()));
  stream.avail_in = uInt(plain.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = uInt(out.size());
  REQUIRE(deflate(&stream, Z_FINISH) == Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}
}  // namespace

TEST_CASE("IDX: plain and gzip'd files give the same array") {
  const auto plain = idx_bytes({3, 4, 5}, 60);
  for (const auto& bytes : {plain, gzip(plain)}) {
    const auto array = io::parse_idx(bytes, "images.idx");
    CHECK(array.extents == std::vector<std::uint32_t>{3, 4, 5});
    REQUIRE(array.data.size() == 60);
    for (std::size_t i = 0; i < 60; ++i)
      REQUIRE(array.data[i] == std::uint8_t(i * 7 % 251));
  }
}

TEST_CASE("IDX: every malformed file is an ldm::Error naming the file and the problem") {
  const auto good = idx_bytes({2, 3}, 6);
  SUBCASE("too short") {
    check_message(error_of([] {
                    io::parse_idx({std::byte{0}, std::byte{0}}, "a.idx");
                  }),
                  {"a.idx", "header", "at least 4 bytes"});
  }
  SUBCASE("bad magic") {
    auto bad = good;
    bad[0] = std::byte{1};
    check_message(error_of([&] { io::parse_idx(bad, "b.idx"); }), {"b.idx", "magic number"});
  }
  SUBCASE("a type other than unsigned bytes") {
    check_message(error_of([] { io::parse_idx(idx_bytes({2}, 8, 0x0d), "c.idx"); }),
                  {"c.idx", "magic number", "found 0 0 13"});
  }
  SUBCASE("no dimensions") {
    check_message(error_of([] { io::parse_idx(idx_bytes({}, 0), "d.idx"); }),
                  {"d.idx", "number of dimensions"});
  }
  SUBCASE("header cut inside the extents") {
    auto cut = good;
    cut.resize(6);
    check_message(error_of([&] { io::parse_idx(cut, "e.idx"); }),
                  {"e.idx", "header", "expected 12 bytes", "found 6"});
  }
  SUBCASE("wrong counts: data shorter or longer than the extents say") {
    check_message(error_of([] {
                    io::parse_idx(idx_bytes({2, 3}, 5), "f.idx");
                  }),
                  {"f.idx", "expected 6 bytes after the header", "found 5 bytes"});
    check_message(error_of([] {
                    io::parse_idx(idx_bytes({2, 3}, 7), "g.idx");
                  }),
                  {"g.idx", "found 7 bytes"});
  }
  SUBCASE("extents too large to be real") {
    check_message(error_of([] {
                    io::parse_idx(idx_bytes({65536, 65536, 65536}, 0), "h.idx");
                  }),
                  {"h.idx", "more than 2^40"});
  }
  SUBCASE("truncated gzip") {
    auto compressed = gzip(good);
    compressed.resize(compressed.size() / 2);
    check_message(error_of([&] { io::parse_idx(compressed, "i.idx.gz"); }),
                  {"i.idx.gz", "not a valid gzip stream"});
  }
  SUBCASE("corrupt gzip (checksum)") {
    auto compressed = gzip(idx_bytes({40, 40}, 1600));
    compressed[compressed.size() - 6] ^= std::byte{0xff};  // inside the CRC-32 trailer
    check_message(error_of([&] { io::parse_idx(compressed, "j.idx.gz"); }),
                  {"j.idx.gz", "not a valid gzip stream"});
  }
  SUBCASE("missing file") {
    check_message(error_of([] { io::read_idx("/nonexistent/train-images-idx3-ubyte.gz"); }),
                  {"/nonexistent/train-images-idx3-ubyte.gz", "No such file"});
  }
}

TEST_CASE("IDX: Fashion-MNIST from the Debian package, when installed") {
  const std::filesystem::path folder = "/usr/share/datasets/fashion-mnist";
  if (!std::filesystem::exists(folder / "t10k-labels-idx1-ubyte.gz")) {
    MESSAGE("dataset-fashion-mnist is not installed; skipped");
    return;
  }
  const auto labels = io::read_idx(folder / "t10k-labels-idx1-ubyte.gz");
  CHECK(labels.extents == std::vector<std::uint32_t>{10000});
  for (auto label : labels.data)
    REQUIRE(label < 10);
  const auto images = io::read_idx(folder / "t10k-images-idx3-ubyte.gz");
  CHECK(images.extents == std::vector<std::uint32_t>{10000, 28, 28});
}
