// Mutated safetensors files must be either accepted, with every tensor then readable, or rejected
// with an ldm::Error naming the file; never a crash, a read out of bounds or another exception.
// Deterministic (fixed seed); run under AddressSanitizer and UBSan by the asan preset.

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/io/json.hpp"
#include "ldm/io/safetensors.hpp"

using namespace ldm;
using namespace ldm::io;

namespace {

constexpr std::string_view kName = "fuzz.safetensors";

// Several dtypes, an empty tensor, a scalar and metadata, so that mutations reach every check.
std::vector<std::byte> valid_file() {
  SafetensorsWriter writer;
  std::vector<float> values(72);
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = 0.37f * float(i) - 11.0f;
  writer.add("conv.weight", values, {4, 3, 3, 2});
  writer.add("conv.bias", std::span(values).first(4), {4});
  writer.add("norm.scale", std::span(values).first(8), {8}, DType::BF16);
  writer.add("embedding", std::span(values).first(15), {3, 5}, DType::BF16);
  writer.add("empty", {}, {0, 5});
  writer.add("step", std::span(values).first(1), {});
  writer.set_metadata("format", "pt");
  writer.set_metadata("epoch", "12");
  writer.set_metadata("note", "fuzz seed");
  auto path = std::filesystem::temp_directory_path() /
              ("ldm_test_io_fuzz_" + std::to_string(::getpid()) + ".safetensors");
  writer.write(path);
  std::vector<std::byte> bytes = read_file(path);
  std::filesystem::remove(path);
  return bytes;
}

struct Outcomes {
  int accepted = 0, rejected = 0, wrong = 0;
  std::string first_wrong;

  void note_wrong(std::string what) {
    if (wrong++ == 0) first_wrong = std::move(what);
  }

  // Parses, and if that succeeds reads every tensor: the float ones must read, the others must
  // be refused with an ldm::Error.
  void check(const std::vector<std::byte>& bytes) {
    try {
      SafetensorsFile file = SafetensorsFile::parse(bytes, std::string(kName));
      for (const std::string& name : file.names()) {
        const TensorEntry& e = file.entry(name);
        std::vector<double> out((e.end - e.begin) / byte_size(e.dtype));
        bool is_float = e.dtype == DType::F32 || e.dtype == DType::F16 || e.dtype == DType::BF16 ||
                        e.dtype == DType::F64;
        try {
          file.read<double>(name, out, e.shape);
          if (!is_float) note_wrong("read of a " + std::string(to_string(e.dtype)) + " tensor");
        } catch (const Error& error) {
          if (is_float) note_wrong(std::string("read failed: ") + error.what());
        }
      }
      ++accepted;
    } catch (const Error& error) {
      if (std::string_view(error.what()).starts_with(kName))
        ++rejected;
      else
        note_wrong(std::string("message without the file name: ") + error.what());
    } catch (const std::exception& error) {
      note_wrong(std::string("not an ldm::Error: ") + error.what());
    } catch (...) {
      note_wrong("not a std::exception");
    }
  }
};

std::uint64_t header_size_of(const std::vector<std::byte>& bytes) {
  std::uint64_t size = 0;
  if (bytes.size() >= 8) std::memcpy(&size, bytes.data(), 8);
  return size;
}

void set_header_size(std::vector<std::byte>& bytes, std::uint64_t size) {
  if (bytes.size() >= 8) std::memcpy(bytes.data(), &size, 8);
}

// Random edits, most of them in the header, where the parser and the validation are.
class Mutator {
 public:
  explicit Mutator(std::uint64_t seed) : rng_(seed) {}

  void mutate(std::vector<std::byte>& bytes) {
    switch (below(8)) {
      case 0:
        bytes.resize(below(bytes.size() + 1));
        break;
      case 1:
        if (!bytes.empty()) bytes[below(bytes.size())] ^= std::byte(1u << below(8));
        break;
      case 2: {  // a structural character in the header
        constexpr std::string_view chars = "0123456789-+.eE\"{}[],: \\nulFBI_\x01\x7f\x80\xff";
        if (auto [first, last] = header(bytes); first < last)
          bytes[first + below(last - first)] = std::byte(chars[below(chars.size())]);
        break;
      }
      case 3: {  // another header size field
        std::uint64_t current = header_size_of(bytes);
        const std::array<std::uint64_t, 5> choices = {rng_(), current + below(33) - 16,
                                                      below(bytes.size() + 1), 100'000'001,
                                                      std::uint64_t(1) << below(64)};
        set_header_size(bytes, choices[below(choices.size())]);
        break;
      }
      case 4: {  // another number, in valid JSON: shapes and offsets go wrong, not the syntax
        constexpr std::array<std::string_view, 10> numbers = {"0",
                                                              "1",
                                                              "7",
                                                              "-1",
                                                              "24",
                                                              "2.0",
                                                              "1e3",
                                                              "4294967296",
                                                              "18446744073709551615",
                                                              "99999999999999999999999"};
        replace_run(bytes, "0123456789", numbers[below(numbers.size())]);
        break;
      }
      case 5: {  // another dtype name
        constexpr std::array<std::string_view, 8> dtypes = {"F32", "F16", "BF16", "F64",
                                                            "I64", "U8",  "BOOL", "F4"};
        replace_run(bytes, "ABDFILOU0123456789_", dtypes[below(dtypes.size())]);
        break;
      }
      case 6: {  // a slice of the header repeated or removed, the size field kept consistent
        auto [first, last] = header(bytes);
        if (first >= last) break;
        std::size_t begin = first + below(last - first);
        std::size_t length = below(std::min<std::size_t>(last - begin, 24) + 1);
        std::vector<std::byte> slice(bytes.begin() + begin, bytes.begin() + begin + length);
        if (below(2))
          splice(bytes, begin, length, {});
        else
          splice(bytes, begin, 0, slice);
        break;
      }
      case 7:
        edit_json(bytes);
        break;
    }
  }

 private:
  std::size_t below(std::size_t n) {
    return n == 0 ? 0 : std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_);
  }

  // The header's byte range as the size field claims it, clipped to the file.
  static std::pair<std::size_t, std::size_t> header(const std::vector<std::byte>& bytes) {
    if (bytes.size() < 8) return {0, 0};
    return {8, 8 + std::min<std::uint64_t>(header_size_of(bytes), bytes.size() - 8)};
  }

  // Edits through a JSON parser, which byte edits rarely get past: a tensor's data moved by a
  // few bytes (gaps, overlaps), or a field or metadata value replaced by one of another type.
  void edit_json(std::vector<std::byte>& bytes) {
    using ldm::io::Json;
    auto [first, last] = header(bytes);
    const char* text = reinterpret_cast<const char*>(bytes.data());
    Json root;
    try {
      root = Json::parse(std::string_view(text + first, text + last));
    } catch (const ldm::io::JsonError&) {
      return;
    }
    if (!root.is_object() || root.empty()) return;
    Json& entry = std::next(root.items().begin(), std::ptrdiff_t(below(root.size())))->second;
    const std::array<Json, 10> values = {0,
                                         -1,
                                         3.5,
                                         "F32",
                                         nullptr,
                                         true,
                                         Json::array(),
                                         Json::array({0, 4}),
                                         Json::object({{"k", 1}}),
                                         std::numeric_limits<std::uint64_t>::max()};
    Json* offsets = entry.contains("data_offsets") ? &entry.at("data_offsets") : nullptr;
    bool movable = offsets && offsets->is_array() && offsets->size() == 2 &&
                   (*offsets)[0].is_number_unsigned() && (*offsets)[1].is_number_unsigned();
    if (!entry.is_object() || entry.empty()) {
      entry = values[below(values.size())];
    } else if (movable && below(2)) {
      std::int64_t shift = std::int64_t(below(17)) - 8;
      for (Json& offset : *offsets)
        offset = offset.get<std::int64_t>() + shift;
    } else {
      std::next(entry.items().begin(), std::ptrdiff_t(below(entry.size())))->second =
          values[below(values.size())];
    }
    std::string edited = root.dump();
    splice(bytes, first, last - first, std::as_bytes(std::span(edited)));
  }

  // Replaces the run of `alphabet` characters at a random place in the header with `text`.
  void replace_run(std::vector<std::byte>& bytes, std::string_view alphabet,
                   std::string_view text) {
    auto [first, last] = header(bytes);
    if (first >= last) return;
    auto in_alphabet = [&](std::size_t i) {
      return alphabet.find(char(bytes[i])) != std::string_view::npos;
    };
    std::size_t begin = first + below(last - first);
    while (begin < last && !in_alphabet(begin))
      ++begin;
    if (begin == last) return;
    std::size_t end = begin;
    while (end < last && in_alphabet(end))
      ++end;
    splice(bytes, begin, end - begin, std::as_bytes(std::span(text)));
  }

  // Replaces `count` bytes at `at` with `insert`, and moves the size field by the change in
  // length, so that a well-formed header stays one.
  static void splice(std::vector<std::byte>& bytes, std::size_t at, std::size_t count,
                     std::span<const std::byte> insert) {
    std::vector<std::byte> out(bytes.begin(), bytes.begin() + at);
    out.resize(bytes.size() - count + insert.size());
    auto rest = std::ranges::copy(insert, out.begin() + at).out;
    std::ranges::copy(bytes.begin() + at + count, bytes.end(), rest);
    set_header_size(out, header_size_of(out) - count + insert.size());
    bytes = std::move(out);
  }

  std::mt19937_64 rng_;
};

}  // namespace

TEST_CASE("safetensors fuzz: every truncation of a valid file is rejected") {
  const std::vector<std::byte> bytes = valid_file();
  Outcomes outcomes;
  outcomes.check(bytes);
  REQUIRE(outcomes.accepted == 1);
  for (std::size_t length = 0; length < bytes.size(); ++length)
    outcomes.check(std::vector<std::byte>(bytes.begin(), bytes.begin() + length));
  INFO("first wrong outcome: ", outcomes.first_wrong);
  CHECK(outcomes.wrong == 0);
  CHECK(outcomes.rejected == int(bytes.size()));
}

TEST_CASE("safetensors fuzz: every single bit flip is accepted or rejected cleanly") {
  const std::vector<std::byte> bytes = valid_file();
  Outcomes outcomes;
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<std::byte> flipped = bytes;
      flipped[i] ^= std::byte(1u << bit);
      outcomes.check(flipped);
    }
  }
  INFO("first wrong outcome: ", outcomes.first_wrong);
  CHECK(outcomes.wrong == 0);
  // Flips in the data buffer keep the file valid; most flips in the header do not.
  CHECK(outcomes.accepted > 0);
  CHECK(outcomes.rejected > 0);
}

TEST_CASE("safetensors fuzz: random mutations are accepted or rejected cleanly") {
  constexpr int kIterations = 10000;
  const std::vector<std::byte> bytes = valid_file();
  Mutator mutator(0x5afe7e45ull);
  std::mt19937 count_rng(7);
  Outcomes outcomes;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kIterations; ++i) {
    std::vector<std::byte> mutated = bytes;
    for (int m = 0, n = 1 + int(count_rng() % 3); m < n; ++m)
      mutator.mutate(mutated);
    outcomes.check(mutated);
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  MESSAGE(kIterations, " mutated files in ", seconds, " s: ", outcomes.accepted, " accepted, ",
          outcomes.rejected, " rejected");
  INFO("first wrong outcome: ", outcomes.first_wrong);
  CHECK(outcomes.wrong == 0);
  CHECK(outcomes.accepted + outcomes.rejected == kIterations);
  // Both outcomes must be common, or the mutations do not exercise the validation.
  CHECK(outcomes.accepted > kIterations / 50);
  CHECK(outcomes.rejected > kIterations / 2);
}
