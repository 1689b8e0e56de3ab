// The image-folder cache: a second load comes from the cache, bit-identical and with the same
// report; any change to the files or the settings, and any damage to the cache, rebuilds it; a
// cache that cannot be written is an error naming it.
#include <doctest/doctest.h>

#include <bit>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ldm/data/image_folder_cache.hpp>
#include <ldm/io/image_file.hpp>
#include <string>
#include <vector>

#include "support/errors.hpp"
#include "support/temp_folder.hpp"

using namespace ldm;
using test::check_message;
using test::error_of;
namespace fs = std::filesystem;

namespace {

void write_pattern(const fs::path& path, int size, int seed) {
  fs::create_directories(path.parent_path());
  std::vector<std::uint8_t> rgb(std::size_t(size * size * 3));
  for (std::size_t i = 0; i < rgb.size(); ++i)
    rgb[i] = std::uint8_t((i * 37 + std::size_t(seed) * 101) % 256);
  io::write_png(path, size, size, 3, rgb);
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// A folder of three readable images of different sizes (one in a subfolder, one with a name
// that is not UTF-8) and an unreadable one.
struct Folder {
  test::TempFolder temp{"ldm_cache_test"};
  fs::path images = temp / "images", cache = temp / "set.safetensors";
  Folder() {
    write_pattern(images / "a.png", 6, 1);
    write_pattern(images / "sub" / "b.png", 3, 2);
    write_pattern(images / "caf\xe9 100%.png", 5, 3);
    write_bytes(images / "d_corrupt \xe9%.png", "\x89PNG and then nothing an image needs");
  }
};

template <index_t R, index_t C>
data::ImageSet<R, C> cached(const Folder& f, data::ImageFolderReport& report,
                            data::Unreadable policy = data::Unreadable::skip) {
  return data::load_image_folder_cached<R, C>(f.images, f.cache, policy, &report);
}

void require_same(const data::ImageFolderReport& a, const data::ImageFolderReport& b) {
  REQUIRE(a.loaded == b.loaded);
  REQUIRE(a.skipped == b.skipped);
}

}  // namespace

TEST_CASE("image folder cache: the second load is from the cache, bit for bit") {
  Folder f;
  data::ImageFolderReport direct_report, first, second;
  const auto direct =
      data::load_image_folder<4, 3>(f.images, data::Unreadable::skip, &direct_report);
  REQUIRE(direct.size() == 3);
  REQUIRE(direct_report.skipped.size() == 1);

  const auto built = cached<4, 3>(f, first);
  CHECK_FALSE(first.from_cache);
  check_message(first.cache_note, {f.cache.string(), "no cache yet"});
  CHECK(built.pixels == direct.pixels);
  require_same(first, direct_report);
  CHECK(fs::exists(f.cache));
  CHECK_FALSE(f.temp.has_temporary_files());

  const auto again = cached<4, 3>(f, second);
  CHECK(second.from_cache);
  CHECK(second.cache_note.empty());
  CHECK(again.labels.empty());
  REQUIRE(again.pixels.size() == direct.pixels.size());
  for (std::size_t i = 0; i < direct.pixels.size(); ++i)
    REQUIRE(std::bit_cast<std::uint32_t>(again.pixels[i]) ==
            std::bit_cast<std::uint32_t>(direct.pixels[i]));
  require_same(second, direct_report);  // the skipped file, its path and its message
}

TEST_CASE("image folder cache: a cache in use decodes nothing") {
  Folder f;
  data::ImageFolderReport report;
  const auto built = cached<4, 3>(f, report);
  // Garbage of the same size and time in place of a.png: only a cache can still give its pixels.
  const fs::path a = f.images / "a.png";
  const auto time = fs::last_write_time(a);
  write_bytes(a, std::string(fs::file_size(a), 'x'));
  fs::last_write_time(a, time);
  const auto again = cached<4, 3>(f, report);
  CHECK(report.from_cache);
  CHECK(again.pixels == built.pixels);
}

TEST_CASE("image folder cache: changed files or settings rebuild it") {
  Folder f;
  data::ImageFolderReport report;
  cached<4, 3>(f, report);
  auto require_rebuilt = [&](auto load) {
    const auto set = load();
    CHECK_FALSE(report.from_cache);
    check_message(report.cache_note, {f.cache.string(), "made from other files or settings"});
    const auto again = load();
    CHECK(report.from_cache);  // and the rebuilt cache serves the next load
    CHECK(again.pixels == set.pixels);
    return set.size();
  };
  auto load = [&] { return cached<4, 3>(f, report); };

  SUBCASE("a file touched") {
    const fs::path b = f.images / "sub" / "b.png";
    fs::last_write_time(b, fs::last_write_time(b) + std::chrono::seconds(5));
    CHECK(require_rebuilt(load) == 3);
  }
  SUBCASE("a file rewritten with other pixels, its time kept") {
    const auto time = fs::last_write_time(f.images / "a.png");
    write_pattern(f.images / "a.png", 8, 9);
    fs::last_write_time(f.images / "a.png", time);
    const auto set = cached<4, 3>(f, report);
    CHECK_FALSE(report.from_cache);
    CHECK(set.pixels == data::load_image_folder<4, 3>(f.images).pixels);
  }
  SUBCASE("a file added") {
    write_pattern(f.images / "sub" / "e.png", 4, 5);
    CHECK(require_rebuilt(load) == 4);
  }
  SUBCASE("a file removed") {
    fs::remove(f.images / "a.png");
    CHECK(require_rebuilt(load) == 2);
  }
  SUBCASE("an unreadable file removed") {
    fs::remove(f.images / "d_corrupt \xe9%.png");
    CHECK(require_rebuilt(load) == 3);
    CHECK(report.skipped.empty());
  }
  SUBCASE("a file renamed") {
    fs::rename(f.images / "a.png", f.images / "z.png");
    CHECK(require_rebuilt(load) == 3);
  }
  SUBCASE("another resolution") {
    CHECK(require_rebuilt([&] { return cached<5, 3>(f, report); }) == 3);
  }
  SUBCASE("another channel count") {
    CHECK(require_rebuilt([&] { return cached<4, 1>(f, report); }) == 3);
  }
  SUBCASE("another policy") {
    fs::remove(f.images / "d_corrupt \xe9%.png");
    cached<4, 3>(f, report);
    CHECK(report.from_cache == false);
    CHECK(require_rebuilt([&] { return cached<4, 3>(f, report, data::Unreadable::reject); }) == 3);
  }
}

TEST_CASE("image folder cache: a damaged cache is rebuilt, and the report says why") {
  Folder f;
  data::ImageFolderReport report;
  const auto built = cached<4, 3>(f, report);
  const std::string good = read_bytes(f.cache);
  auto require_rebuilt = [&](std::initializer_list<std::string_view> why) {
    const auto set = cached<4, 3>(f, report);
    CHECK_FALSE(report.from_cache);
    check_message(report.cache_note, why);
    CHECK(set.pixels == built.pixels);
    CHECK(read_bytes(f.cache) == good);  // written again
    cached<4, 3>(f, report);
    CHECK(report.from_cache);
  };

  SUBCASE("truncated") {
    write_bytes(f.cache, good.substr(0, good.size() - 7));
    require_rebuilt({f.cache.string(), "cannot be read"});
  }
  SUBCASE("a pixel changed") {
    std::string bad = good;
    bad[bad.size() - 2] = char(bad[bad.size() - 2] ^ 0x10);
    write_bytes(f.cache, bad);
    require_rebuilt({f.cache.string(), "cannot be read", "checksum"});
  }
  SUBCASE("not a safetensors file") {
    write_bytes(f.cache, "these are not the pixels you are looking for");
    require_rebuilt({f.cache.string(), "cannot be read"});
  }
  SUBCASE("empty") {
    write_bytes(f.cache, "");
    require_rebuilt({f.cache.string(), "cannot be read"});
  }
  SUBCASE("a safetensors file without the cache's metadata") {
    io::SafetensorsWriter other;
    other.add("pixels", built.pixels, {3, 4, 4, 3});
    other.write(f.cache);
    require_rebuilt({f.cache.string(), "cannot be read", "ldm.image_folder.key"});
  }
}

TEST_CASE("image folder cache: errors") {
  Folder f;
  data::ImageFolderReport report;
  SUBCASE("a cache that cannot be written is an error naming it") {
    const fs::path cache = f.images / "a.png" / "set.safetensors";  // under a file
    check_message(error_of([&] { data::load_image_folder_cached<4, 3>(f.images, cache); }),
                  {cache.string(), "cannot write the image folder cache"});
  }
  SUBCASE("rejecting an unreadable file fails as load_image_folder does, and writes nothing") {
    check_message(error_of([&] { cached<4, 3>(f, report, data::Unreadable::reject); }),
                  {"d_corrupt \xe9%.png", "cannot decode the image"});
    CHECK_FALSE(fs::exists(f.cache));
  }
  SUBCASE("a missing folder") {
    check_message(
        error_of([&] { data::load_image_folder_cached<4, 3>(f.temp / "missing", f.cache); }),
        {"missing", "no such folder"});
  }
}
