#include <doctest/doctest.h>

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include "support/errors.hpp"
#include "support/temp_folder.hpp"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ldm/core/dtype.hpp"
#include "ldm/core/error.hpp"
#include "ldm/io/safetensors.hpp"

using namespace ldm;
using namespace ldm::io;
namespace fs = std::filesystem;

namespace {

template <class T>
void append(std::vector<std::byte>& out, const T& value) {
  out.resize(out.size() + sizeof(T));
  std::memcpy(out.data() + out.size() - sizeof(T), &value, sizeof(T));
}

// A file with this header text, verbatim, and `data_size` zero bytes of data.
std::vector<std::byte> file_with(std::string_view header, std::size_t data_size = 0) {
  std::vector<std::byte> bytes;
  append(bytes, std::uint64_t(header.size()));
  for (char c : header)
    bytes.push_back(std::byte(c));
  bytes.resize(bytes.size() + data_size);
  return bytes;
}

using test::check_message;
using test::error_of;

// parse() of a file with this header must fail with a message containing every part.
void check_rejected(std::string_view header, std::size_t data_size,
                    std::initializer_list<std::string_view> parts) {
  INFO("header: ", header);
  check_message(
      error_of([&] { SafetensorsFile::parse(file_with(header, data_size), "bad.safetensors"); }),
      parts);
}

std::uint32_t bits_of(float x) {
  return std::bit_cast<std::uint32_t>(x);
}

}  // namespace

TEST_CASE("safetensors: F32 and BF16 round trip with metadata") {
  const float inf = std::numeric_limits<float>::infinity();
  // BF16 cases: exact, ties to even (down and up), rounding up, subnormal, NaN, infinity.
  const std::vector<float> values = {0.0f,     -0.0f,  1.0f / 3.0f,   1.00390625f, 1.01171875f,
                                     -3.3e38f, 1e-40f, std::nanf(""), -inf};
  const std::vector<float> weights = {0.5f, -1.25f, 3.0e-7f, 1e30f, -0.0f, 42.0f};
  ldm::test::TempFolder dir;
  const fs::path path = dir.path / "model.safetensors";

  SafetensorsWriter writer;
  writer.add("scale", values, {9}, DType::BF16);
  writer.add("conv.weight", weights, {2, 3});
  writer.add("empty", {}, {0, 4});
  writer.add("step", std::vector<float>{7.5f}, {});
  writer.set_metadata("format", "pt");
  writer.set_metadata("note", "h\xc3\xa9llo \"quoted\"");
  writer.write(path);

  SafetensorsFile file = SafetensorsFile::open(path);
  CHECK(file.metadata() ==
        std::map<std::string, std::string>{{"format", "pt"}, {"note", "h\xc3\xa9llo \"quoted\""}});
  CHECK(file.names() == std::vector<std::string>{"conv.weight", "empty", "scale", "step"});
  CHECK(file.entry("scale").dtype == DType::BF16);
  CHECK(file.entry("conv.weight").dtype == DType::F32);
  CHECK(file.entry("conv.weight").shape == std::vector<std::int64_t>{2, 3});
  CHECK(file.entry("step").shape.empty());
  // F32 tensors come first, so every tensor is aligned to its element size.
  CHECK(file.entry("conv.weight").begin == 0);
  CHECK(file.entry("scale").begin % 2 == 0);

  std::vector<float> got(6);
  file.read<float>("conv.weight", got, std::vector<std::int64_t>{2, 3});
  for (std::size_t i = 0; i < got.size(); ++i)
    CHECK(bits_of(got[i]) == bits_of(weights[i]));
  std::vector<double> wide(6);
  file.read<double>("conv.weight", wide, std::vector<std::int64_t>{2, 3});
  for (std::size_t i = 0; i < wide.size(); ++i)
    CHECK(wide[i] == double(weights[i]));

  std::vector<float> rounded(values.size());
  file.read<float>("scale", rounded, std::vector<std::int64_t>{9});
  for (std::size_t i = 0; i < values.size(); ++i) {
    INFO("element ", i, ": ", values[i]);
    CHECK(bits_of(rounded[i]) == bits_of(float(bf16(values[i]))));
  }
  CHECK(rounded[3] == 1.0f);       // 1 + 2^-8 is a tie: to even, down
  CHECK(rounded[4] == 1.015625f);  // 1 + 3 * 2^-8 is a tie: to even, up
  CHECK(std::isnan(rounded[7]));

  std::vector<float> none;
  file.read<float>("empty", none, std::vector<std::int64_t>{0, 4});
  std::vector<float> step(1);
  file.read<float>("step", step, std::vector<std::int64_t>{});
  CHECK(step[0] == 7.5f);

  // The header is padded with spaces so that the data buffer starts 8-byte aligned.
  std::vector<std::byte> bytes = read_file(path);
  std::uint64_t header_size;
  std::memcpy(&header_size, bytes.data(), 8);
  CHECK(header_size % 8 == 0);
  CHECK(bytes.size() == 8 + header_size + 6 * 4 + 1 * 4 + 9 * 2);
}

TEST_CASE("safetensors: F16 is widened exactly, subnormals, infinities and NaN included") {
  const std::vector<std::uint16_t> halves = {0x3C00, 0xC000, 0x3555, 0x0001, 0x03FF, 0x0400,
                                             0x7BFF, 0x8000, 0x7C00, 0xFC00, 0x7E00};
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> expected = {1.0f,
                                       -2.0f,
                                       0.333251953125f,
                                       0x1p-24f,
                                       1023 * 0x1p-24f,
                                       0x1p-14f,
                                       65504.0f,
                                       -0.0f,
                                       inf,
                                       -inf,
                                       std::numeric_limits<float>::quiet_NaN()};
  std::vector<std::byte> bytes =
      file_with(R"({"h":{"dtype":"F16","shape":[11],"data_offsets":[0,22]}})");
  for (std::uint16_t h : halves)
    append(bytes, h);
  SafetensorsFile file = SafetensorsFile::parse(bytes, "half.safetensors");
  std::vector<float> got(11);
  file.read<float>("h", got, std::vector<std::int64_t>{11});
  for (std::size_t i = 0; i < got.size(); ++i) {
    INFO("half 0x", std::hex, halves[i]);
    CHECK(bits_of(got[i]) == bits_of(expected[i]));
  }
  std::vector<double> wide(11);
  file.read<double>("h", wide, std::vector<std::int64_t>{11});
  CHECK(wide[3] == 0x1p-24);
  CHECK(std::isnan(wide[10]));
}

TEST_CASE("safetensors: reads the file the Python package wrote") {
  SafetensorsFile file =
      SafetensorsFile::open(fs::path(LDM_TEST_DATA_DIR) / "golden/safetensors_python.safetensors");
  CHECK(file.metadata().at("script") == "tools/golden/make_safetensors_sample.py");
  CHECK(file.names() == std::vector<std::string>{"bf16", "f16", "f32", "f64", "i64", "scalar"});
  CHECK(file.entry("i64").dtype == DType::I64);

  std::vector<float> f32(6);
  file.read<float>("f32", f32, std::vector<std::int64_t>{2, 3});
  CHECK(f32 == std::vector<float>{-0.5f, -0.25f, 0.0f, 0.25f, 0.5f, 0.75f});

  std::vector<float> f16(7);
  file.read<float>("f16", f16, std::vector<std::int64_t>{7});
  CHECK(f16 == std::vector<float>{1.0f, -2.0f, 0x1p-14f, 0x1p-24f, 65504.0f,
                                  std::numeric_limits<float>::infinity(), -0.0f});
  CHECK(std::signbit(f16[6]));

  std::vector<float> b16(4);
  file.read<float>("bf16", b16, std::vector<std::int64_t>{2, 2});
  CHECK(b16 == std::vector<float>{1.0f, -0.5f, 3.140625f, 256.0f});

  std::vector<double> f64(3);
  file.read<double>("f64", f64, std::vector<std::int64_t>{3});
  CHECK(f64 == std::vector<double>{0.1, -1e300, 2.5});
  std::vector<float> f64_narrowed(3);
  file.read<float>("f64", f64_narrowed, std::vector<std::int64_t>{3});
  CHECK(f64_narrowed[0] == 0.1f);
  CHECK(f64_narrowed[1] == -std::numeric_limits<float>::infinity());

  std::vector<float> scalar(1);
  file.read<float>("scalar", scalar, std::vector<std::int64_t>{});
  CHECK(scalar[0] == 7.25f);
}

TEST_CASE("safetensors: a malformed file is an ldm::Error naming the file and the defect") {
  // The valid entry the cases below break one field at a time: 2x3 F32, 24 bytes.
  SUBCASE("shorter than the header size field") {
    check_message(
        error_of([] { SafetensorsFile::parse(std::vector<std::byte>(5), "bad.safetensors"); }),
        {"bad.safetensors", "at least 8 bytes", "found 5 bytes"});
  }
  SUBCASE("header size larger than the file") {
    auto bytes = file_with(R"({})");
    bytes[0] = std::byte(100);
    check_message(error_of([&] { SafetensorsFile::parse(bytes, "bad.safetensors"); }),
                  {"bad.safetensors", "header size", "at most 2", "found 100"});
  }
  SUBCASE("header size absurdly large") {
    auto bytes = file_with(R"({})");
    std::uint64_t huge = std::uint64_t(1) << 62;
    std::memcpy(bytes.data(), &huge, 8);
    check_message(error_of([&] { SafetensorsFile::parse(bytes, "bad.safetensors"); }),
                  {"bad.safetensors", "header size", "at most 100000000", "4611686018427387904"});
  }
  SUBCASE("header not JSON") {
    check_rejected(R"({"a": {"dtype": "F32",)", 0, {"bad.safetensors", "header", "valid JSON"});
    check_rejected("{} trailing", 0, {"bad.safetensors", "valid JSON"});
    check_rejected("{\"a\xff\": 1}", 0, {"bad.safetensors", "valid JSON", "UTF-8"});
    check_rejected("", 0, {"bad.safetensors", "valid JSON"});
  }
  SUBCASE("header nested too deeply") {
    // A million levels would overflow the stack of a recursive printer or destructor.
    std::string deep =
        R"({"a": )" + std::string(1'000'000, '[') + std::string(1'000'000, ']') + "}";
    check_rejected(deep, 0, {"bad.safetensors", "header", "nested at most 16 deep"});
    std::string fine = R"({"a": )" + std::string(15, '[') + std::string(15, ']') + "}";
    check_rejected(fine, 0, {"bad.safetensors", "tensor 'a'", "an object"});
  }
  SUBCASE("header not an object") {
    check_rejected("[1, 2]", 0, {"bad.safetensors", "header", "a JSON object", "[1,2]"});
  }
  SUBCASE("entry not an object") {
    check_rejected(R"({"a": [1]})", 0, {"bad.safetensors", "tensor 'a'", "an object"});
  }
  SUBCASE("entry without dtype, shape or data_offsets") {
    check_rejected(R"({"a": {"shape": [2, 3], "data_offsets": [0, 24]}})", 24,
                   {"bad.safetensors", "tensor 'a'", "\"dtype\"", "found none"});
    check_rejected(R"({"a": {"dtype": "F32", "data_offsets": [0, 24]}})", 24,
                   {"bad.safetensors", "tensor 'a'", "\"shape\"", "found none"});
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2, 3]}})", 24,
                   {"bad.safetensors", "tensor 'a'", "\"data_offsets\"", "found none"});
  }
  SUBCASE("unknown dtype") {
    check_rejected(R"({"a": {"dtype": "F33", "shape": [2, 3], "data_offsets": [0, 24]}})", 24,
                   {"bad.safetensors", "tensor 'a': dtype", "one of BOOL", "F33"});
    check_rejected(R"({"a": {"dtype": 32, "shape": [2, 3], "data_offsets": [0, 24]}})", 24,
                   {"bad.safetensors", "tensor 'a': dtype", "found 32"});
    check_rejected(R"({"a": {"dtype": "f32", "shape": [2, 3], "data_offsets": [0, 24]}})", 24,
                   {"bad.safetensors", "tensor 'a': dtype", "f32"});
  }
  SUBCASE("shape not an array of non-negative integers") {
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2, -3], "data_offsets": [0, 24]}})", 24,
                   {"bad.safetensors", "tensor 'a': shape", "integers in [0, 2^63)", "[2,-3]"});
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2, 3.0], "data_offsets": [0, 24]}})", 24,
                   {"bad.safetensors", "tensor 'a': shape", "[2,3.0]"});
    check_rejected(R"({"a": {"dtype": "F32", "shape": ["2", 3], "data_offsets": [0, 24]}})", 24,
                   {"bad.safetensors", "tensor 'a': shape", "[\"2\",3]"});
    check_rejected(R"({"a": {"dtype": "F32", "shape": 6, "data_offsets": [0, 24]}})", 24,
                   {"bad.safetensors", "tensor 'a': shape", "found 6"});
    check_rejected(
        R"({"a": {"dtype": "F32", "shape": [9223372036854775808], "data_offsets": [0, 24]}})", 24,
        {"bad.safetensors", "tensor 'a': shape", "9223372036854775808"});
  }
  SUBCASE("element count overflows") {
    check_rejected(
        R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296, 0], "data_offsets": [0, 0]}})",
        0, {"bad.safetensors", "tensor 'a': shape", "element count below 2^64"});
    check_rejected(
        R"({"a": {"dtype": "F64", "shape": [4611686018427387904], "data_offsets": [0, 0]}})", 0,
        {"bad.safetensors", "tensor 'a'", "size below 2^64 bytes", "[4611686018427387904] F64"});
  }
  SUBCASE("data_offsets not two non-negative integers") {
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24, 48]}})", 24,
                   {"bad.safetensors", "tensor 'a': data_offsets", "two integers", "[0,24,48]"});
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [-8, 16]}})", 24,
                   {"bad.safetensors", "tensor 'a': data_offsets", "two integers", "[-8,16]"});
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 2.4e1]}})", 24,
                   {"bad.safetensors", "tensor 'a': data_offsets", "two integers"});
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": {"0": 24}}})", 24,
                   {"bad.safetensors", "tensor 'a': data_offsets", "two integers"});
  }
  SUBCASE("begin after end") {
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [24, 0]}})", 24,
                   {"bad.safetensors", "tensor 'a': data_offsets", "begin <= end", "[24,0]"});
  }
  SUBCASE("end past the data buffer") {
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}})", 20,
                   {"bad.safetensors", "tensor 'a': data_offsets", "end <= 20", "[0,24]"});
    check_rejected(
        R"({"a": {"dtype": "U8", "shape": [2], "data_offsets": [18446744073709551614, 18446744073709551615]}})",
        24, {"bad.safetensors", "tensor 'a': data_offsets", "end <= 24"});
  }
  SUBCASE("byte count is not the element count times the dtype size") {
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 12]}})", 12,
                   {"bad.safetensors", "tensor 'a': data_offsets", "24 bytes for [2, 3] F32",
                    "[0,12], 12 bytes"});
    check_rejected(R"({"a": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [0, 24]}})", 24,
                   {"bad.safetensors", "tensor 'a'", "12 bytes for [2, 3] BF16", "24 bytes"});
  }
  SUBCASE("overlapping tensors") {
    check_rejected(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                       "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]}})",
                   24, {"bad.safetensors", "tensor 'b'", "overlaps tensor 'a'", "begin >= 16"});
    check_rejected(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                       "b": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                   16, {"bad.safetensors", "overlaps tensor 'a'"});
    check_rejected(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
                       "z": {"dtype": "F32", "shape": [0], "data_offsets": [8, 8]}})",
                   16, {"bad.safetensors", "tensor 'z'", "overlaps tensor 'a'"});
  }
  SUBCASE("gaps in the data buffer") {
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                       "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})",
                   20,
                   {"bad.safetensors", "tensor 'b'", "begin 8 (the end of tensor 'a')",
                    "without gaps", "[12, 20]"});
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})", 12,
                   {"bad.safetensors", "tensor 'a'", "begin 0 (the start of the data buffer)"});
    check_rejected(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 10,
                   {"bad.safetensors", "data buffer", "8 bytes (the end of the last tensor)",
                    "found 10 bytes"});
    check_rejected(R"({})", 3, {"bad.safetensors", "data buffer", "expected 0 bytes"});
  }
  SUBCASE("metadata not an object of strings") {
    check_rejected(R"({"__metadata__": ["pt"]})", 0,
                   {"bad.safetensors", "__metadata__", "an object of strings", "[\"pt\"]"});
    check_rejected(R"({"__metadata__": {"epoch": 3}})", 0,
                   {"bad.safetensors", "__metadata__ 'epoch'", "a string", "found 3"});
    check_rejected(R"({"__metadata__": null})", 0, {"bad.safetensors", "__metadata__", "null"});
  }
  SUBCASE("duplicate keys") {
    check_rejected(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                       "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                   8, {"bad.safetensors", "unique keys", "'a' twice in the header"});
    check_rejected(
        R"({"a": {"dtype": "F32", "shape": [1], "dtype": "F64", "data_offsets": [0, 4]}})", 4,
        {"bad.safetensors", "unique keys", "'dtype' twice in 'a'"});
    check_rejected(R"({"__metadata__": {"k": "1", "k": "2"}})", 0,
                   {"bad.safetensors", "'k' twice in '__metadata__'"});
  }
  SUBCASE("a hostile name is quoted, escaped and cut short") {
    std::string header = R"({"evil\n)" + std::string(500, 'x') + R"(": 1})";
    std::string message =
        error_of([&] { SafetensorsFile::parse(file_with(header), "bad.safetensors"); });
    check_message(message, {"bad.safetensors", "tensor 'evil\\x0a", "x...'"});
    CHECK(message.size() < 400);
  }
}

TEST_CASE("safetensors: reading the wrong tensor, shape, dtype or buffer is an ldm::Error") {
  std::vector<std::byte> bytes =
      file_with(R"({"conv.weight": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]},
                    "ids": {"dtype": "I64", "shape": [2], "data_offsets": [48, 64]}})",
                64);
  SafetensorsFile file = SafetensorsFile::parse(bytes, "weights.safetensors");
  std::vector<float> out(12);

  CHECK(error_of([&] {
          file.read<float>("conv.weight", out, std::vector<std::int64_t>{4, 3});
        }) == "weights.safetensors: tensor 'conv.weight': shape: expected [4, 3], found [3, 4]");
  check_message(error_of([&] { file.read<float>("conv.bias", out, std::vector<std::int64_t>{4}); }),
                {"weights.safetensors", "tensor 'conv.bias'", "none among the file's 2 tensors"});
  CHECK_FALSE(file.contains("conv.bias"));
  check_message(error_of([&] { (void)file.entry("conv.bias"); }),
                {"weights.safetensors", "tensor 'conv.bias'"});
  std::vector<float> two(2);
  check_message(error_of([&] { file.read<float>("ids", two, std::vector<std::int64_t>{2}); }),
                {"weights.safetensors", "tensor 'ids': dtype", "F32, F16, BF16 or F64", "I64"});
  std::vector<float> short_out(11);
  check_message(error_of([&] {
                  file.read<float>("conv.weight", short_out, std::vector<std::int64_t>{3, 4});
                }),
                {"weights.safetensors", "tensor 'conv.weight': destination", "12 elements",
                 "found 11 elements"});

  file.require_only({"conv.weight", "ids", "unused"});
  check_message(
      error_of([&] { file.require_only({"conv.weight"}); }),
      {"weights.safetensors", "no tensors other than the 1 expected", "found 'ids' (1 in all)"});
}

TEST_CASE("safetensors: a file that cannot be read names the path and the OS error") {
  ldm::test::TempFolder dir;
  check_message(error_of([&] { SafetensorsFile::open(dir.path / "missing.safetensors"); }),
                {"missing.safetensors", "cannot open", "No such file or directory"});
  check_message(error_of([&] { SafetensorsFile::open(dir.path); }),
                {dir.path.string(), "expected a regular file, found a folder"});
}

TEST_CASE("safetensors: a FIFO or a device is refused at once, naming the path (issue 13 row 11)") {
  ldm::test::TempFolder dir;
  const fs::path fifo = dir.path / "weights.safetensors";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Opening a FIFO for reading waits for a writer: should the check regress, SIGALRM ends the
  // program (a failure) instead of hanging the test run.
  ::alarm(10);
  check_message(error_of([&] { SafetensorsFile::open(fifo); }),
                {fifo.string(), "expected a regular file, found a FIFO"});
  check_message(error_of([&] { SafetensorsFile::open("/dev/zero"); }),
                {"/dev/zero", "expected a regular file, found a device"});
  const fs::path link = dir.path / "link.safetensors";
  fs::create_symlink(fifo, link);
  check_message(error_of([&] { SafetensorsFile::open(link); }),
                {link.string(), "expected a regular file, found a FIFO"});
  ::alarm(0);
}

TEST_CASE("safetensors writer: bad arguments are ldm::Errors naming the tensor") {
  SafetensorsWriter writer;
  std::vector<float> six(6);
  writer.add("a", six, {2, 3});
  check_message(error_of([&] { writer.add("a", six, {6}); }),
                {"tensor 'a'", "a second tensor of that name"});
  check_message(error_of([&] {
                  writer.add("b", six, {4, 2});
                }),
                {"tensor 'b'", "expected 8 elements for shape [4, 2]", "found 6 elements"});
  check_message(error_of([&] {
                  writer.add("c", six, {-2, -3});
                }),
                {"tensor 'c': shape", "non-negative", "[-2, -3]"});
  check_message(error_of([&] { writer.add("d", six, {6}, DType::F16); }),
                {"tensor 'd': dtype", "F32 or BF16", "found F16"});
  check_message(error_of([&] { writer.add("__metadata__", six, {6}); }), {"the metadata key"});
  check_message(error_of([&] { writer.add("bad\xff", six, {6}); }), {"UTF-8"});
  check_message(error_of([&] { writer.set_metadata("k", "\xc3"); }), {"metadata 'k'", "UTF-8"});
}

TEST_CASE("atomic write: a reader sees the old file or the new one, never a mix") {
  ldm::test::TempFolder dir;
  const fs::path path = dir.path / "model.safetensors";
  auto write_filled = [&](float value) {
    SafetensorsWriter writer;
    writer.add("x", std::vector<float>(1 << 16, value), {1 << 16});
    writer.write(path);
  };
  write_filled(1.0f);

  std::atomic<bool> done = false;
  int reads = 0, bad_reads = 0;
  std::string first_error;
  std::thread reader([&] {
    std::vector<float> got(1 << 16);
    while (!done) {
      std::string message = error_of([&] {
        SafetensorsFile::open(path).read<float>("x", got, std::vector<std::int64_t>{1 << 16});
      });
      bool uniform = std::all_of(got.begin(), got.end(), [&](float v) { return v == got[0]; });
      if (message != "no exception" || !uniform || (got[0] != 1.0f && got[0] != 2.0f)) {
        if (bad_reads++ == 0) first_error = message;
      }
      ++reads;
    }
  });
  for (int i = 0; i < 60; ++i)
    write_filled(i % 2 ? 1.0f : 2.0f);
  done = true;
  reader.join();
  INFO("first error: ", first_error);
  CHECK(bad_reads == 0);
  CHECK(reads > 0);
  CHECK_FALSE(dir.has_temporary_files());
}

TEST_CASE("atomic write: a failed write throws, keeps the old file and leaves no temporary") {
  ldm::test::TempFolder dir;
  const fs::path path = dir.path / "model.safetensors";
  SafetensorsWriter old_writer;
  old_writer.add("x", std::vector<float>{1, 2, 3}, {3});
  old_writer.write(path);
  const std::vector<std::byte> old_bytes = read_file(path);

  SafetensorsWriter big;
  big.add("x", std::vector<float>(1 << 16, 5.0f), {1 << 16});

  SUBCASE("the folder does not exist") {
    check_message(error_of([&] { big.write(dir.path / "missing" / "model.safetensors"); }),
                  {"missing/model.safetensors.tmp-", "cannot create", "No such file or directory"});
  }
  SUBCASE("the disk fills up mid-write") {
    // A file size limit makes write() fail with EFBIG part way, as a full disk would; it works
    // where a read-only folder would not (tests may run as root).
    rlimit saved{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
    rlimit limited = saved;
    limited.rlim_cur = 4096;
    auto saved_handler = std::signal(SIGXFSZ, SIG_IGN);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
    std::string message = error_of([&] { big.write(path); });
    ::setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, saved_handler);
    check_message(message, {"model.safetensors.tmp-", "cannot write", "File too large"});
  }
  SUBCASE("the target is a folder") {
    const fs::path folder = dir.path / "folder.safetensors";
    fs::create_directories(folder / "inside");
    check_message(error_of([&] { big.write(folder); }),
                  {"folder.safetensors", "cannot rename the temporary file over it"});
    CHECK(fs::is_directory(folder / "inside"));
  }
  CHECK(read_file(path) == old_bytes);
  CHECK_FALSE(dir.has_temporary_files());
}
