// Batches decoded from a folder when taken: the same batches, positions and flips as
// ShuffledBatches over load_image_folder()'s set, directly and through BackgroundLoader, and a
// file that cannot be decoded an error naming it.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <ldm/data/background_loader.hpp>
#include <ldm/data/image_file_batches.hpp>
#include <ldm/io/image_file.hpp>
#include <vector>

#include "support/errors.hpp"
#include "support/temp_folder.hpp"

using namespace ldm;
using test::check_message;
using test::error_of;
namespace fs = std::filesystem;

namespace {

// Eight RGB images of sizes 3 to 10 (shrunk, enlarged, cropped), two in a subfolder.
void write_images(const fs::path& folder) {
  for (int k = 0; k < 8; ++k) {
    const int width = 3 + k, height = 3 + (k * 5) % 8;
    std::vector<std::uint8_t> rgb(std::size_t(width * height * 3));
    for (std::size_t i = 0; i < rgb.size(); ++i)
      rgb[i] = std::uint8_t((i * 29 + std::size_t(k) * 71) % 256);
    const fs::path path =
        (k < 2 ? folder / "sub" : folder) / ("image" + std::to_string(k) + ".png");
    fs::create_directories(path.parent_path());
    io::write_png(path, width, height, 3, rgb);
  }
}

template <class Source>
void require_same(data::ShuffledBatches<4, 3>& direct, Source& from_files, int count) {
  Tensor<float, Shape<3, 4, 4, 3>> x, y;
  for (int k = 0; k < count; ++k) {
    direct.next<3>(x);
    if constexpr (requires { from_files.template next<3>(y.view()); })
      from_files.template next<3>(y.view());
    else
      from_files.next(y.view());
    for (index_t i = 0; i < x.size; ++i)
      REQUIRE(x.data()[i] == y.data()[i]);
    REQUIRE(from_files.epoch() == direct.epoch());
    REQUIRE(from_files.position() == direct.position());
  }
}

}  // namespace

TEST_CASE("image file batches: the batches of ShuffledBatches over the loaded folder") {
  test::TempFolder folder;
  write_images(folder.path);
  const auto set = data::load_image_folder<4, 3>(folder.path);
  REQUIRE(set.size() == 8);
  for (const bool flips : {false, true}) {
    CAPTURE(flips);
    data::ShuffledBatches<4, 3> direct(set, 21, flips);
    data::ImageFileBatches<4, 3> from_files(folder.path, 21, flips);
    CHECK(from_files.files().size() == 8);
    CHECK_FALSE(from_files.has_labels());
    require_same(direct, from_files, 7);  // three epochs and a bit
    direct.seek(5, 2);
    from_files.seek(5, 2);
    require_same(direct, from_files, 4);
    for (std::size_t p = 0; p < 8; ++p)
      REQUIRE(from_files.flips(5, p) == direct.flips(5, p));
  }
}

TEST_CASE("image file batches: decoded on the background loader's thread") {
  test::TempFolder folder;
  write_images(folder.path);
  const auto set = data::load_image_folder<4, 3>(folder.path);
  data::ShuffledBatches<4, 3> direct(set, 4, true);
  data::BackgroundLoader<4, 3, 3, data::ImageFileBatches<4, 3>> loader(
      data::ImageFileBatches<4, 3>(folder.path, 4, true), 3);
  require_same(direct, loader, 6);
  direct.seek(2, 5);
  loader.seek(2, 5);
  require_same(direct, loader, 6);
}

TEST_CASE("image file batches: errors") {
  test::TempFolder folder;
  SUBCASE("a file that cannot be decoded, named by next() on the loader's thread") {
    write_images(folder.path);
    std::ofstream(folder / "broken.png", std::ios::binary) << "\x89PNG, in name only";
    data::BackgroundLoader<4, 3, 3, data::ImageFileBatches<4, 3>> loader(
        data::ImageFileBatches<4, 3>(folder.path, 4));
    Tensor<float, Shape<3, 4, 4, 3>> x;
    // Epoch 0 takes 9 of the 9 files, the broken one among them.
    check_message(error_of([&] {
                    for (int k = 0; k < 3; ++k)
                      loader.next(x);
                  }),
                  {(folder / "broken.png").string(), "cannot decode the image"});
  }
  SUBCASE("an empty folder") {
    check_message(error_of([&] { data::ImageFileBatches<4, 3>(folder.path, 1); }),
                  {folder.path.string(), "no image files"});
  }
  SUBCASE("a batch larger than the folder") {
    write_images(folder.path);
    data::ImageFileBatches<4, 3> from_files(folder.path, 1);
    Tensor<float, Shape<9, 4, 4, 3>> x;
    check_message(error_of([&] { from_files.next<9>(x); }),
                  {"ImageFileBatches", "batch size", "at most the data set's 8", "found 9"});
  }
}
