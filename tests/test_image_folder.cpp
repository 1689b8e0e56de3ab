// Image files (stb through the system's libstb) and the image-folder data set: cropping, resizing
// and scaling of known patterns, file order, and the refusal of empty folders and bad files.
#include <doctest/doctest.h>
#include <stb_image_write.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <ldm/data/image_folder.hpp>
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

// What the loader should give for a source byte value.
float scaled(double value) {
  return float(value / 127.5 - 1.0);
}

void write_grey(const fs::path& path, int width, int height, const std::vector<std::uint8_t>& v) {
  fs::create_directories(path.parent_path());
  io::write_png(path, width, height, 1, v);
}

void write_constant(const fs::path& path, int size, std::uint8_t value) {
  write_grey(path, size, size, std::vector<std::uint8_t>(std::size_t(size * size), value));
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

std::vector<std::string> folder_listing(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder))
    names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("image files: write_png and read_image round trip, grey and RGB") {
  ldm::test::TempFolder folder;
  std::vector<std::uint8_t> rgb(5 * 3 * 3);
  for (std::size_t i = 0; i < rgb.size(); ++i)
    rgb[i] = std::uint8_t(i * 37 % 256);
  io::write_png(folder / "rgb.png", 5, 3, 3, rgb);
  const io::Image8 image = io::read_image(folder / "rgb.png", 3);
  CHECK(image.width == 5);
  CHECK(image.height == 3);
  CHECK(image.channels == 3);
  CHECK(image.pixels == rgb);

  // RGBA read as RGB drops alpha; colour read as grey is stb's luma (77 R + 150 G + 29 B) >> 8.
  io::write_png(folder / "rgba.png", 1, 1, 4, std::vector<std::uint8_t>{200, 100, 50, 7});
  CHECK(io::read_image(folder / "rgba.png", 3).pixels == std::vector<std::uint8_t>{200, 100, 50});
  CHECK(io::read_image(folder / "rgba.png", 1).pixels ==
        std::vector<std::uint8_t>{(200 * 77 + 100 * 150 + 50 * 29) >> 8});

  check_message(error_of([&] { io::read_image(folder / "rgb.png", 4); }),
                {"rgb.png", "channels", "expected 1 or 3", "found 4"});
}

TEST_CASE("image files: write_png checks its arguments and leaves no temporary file") {
  ldm::test::TempFolder folder;
  const std::vector<std::uint8_t> twelve(12, 9);
  SUBCASE("pixel count") {
    check_message(error_of([&] { io::write_png(folder / "a.png", 2, 2, 1, twelve); }),
                  {"a.png", "pixels", "expected 4 bytes (2x2x1)", "found 12"});
    check_message(error_of([&] { io::write_png(folder / "a.png", 3, 2, 3, twelve); }),
                  {"a.png", "expected 18 bytes", "found 12"});
    CHECK(folder_listing(folder.path).empty());
  }
  SUBCASE("channels and sizes") {
    check_message(error_of([&] { io::write_png(folder / "b.png", 3, 2, 2, twelve); }),
                  {"b.png", "channels", "expected 1, 3 or 4", "found 2"});
    check_message(error_of([&] { io::write_png(folder / "b.png", 0, 2, 3, {}); }),
                  {"b.png", "a positive width and height", "0x2"});
    CHECK(folder_listing(folder.path).empty());
  }
  SUBCASE("a write, then an overwrite, leave only the PNG") {
    io::write_png(folder / "c.png", 2, 2, 3, twelve);
    io::write_png(folder / "c.png", 4, 3, 1, twelve);
    CHECK(folder_listing(folder.path) == std::vector<std::string>{"c.png"});
    const io::Image8 image = io::read_image(folder / "c.png", 1);
    CHECK(image.width == 4);
    CHECK(image.pixels == twelve);
  }
  SUBCASE("an unwritable place is an error naming it") {
    check_message(error_of([&] { io::write_png(folder / "missing" / "d.png", 2, 2, 3, twelve); }),
                  {"missing/d.png", "cannot create", "No such file"});
  }
}

TEST_CASE("image folder: an image at the resolution keeps its exact values") {
  ldm::test::TempFolder folder;
  std::vector<std::uint8_t> rgb(4 * 4 * 3);
  for (std::size_t i = 0; i < rgb.size(); ++i)
    rgb[i] = std::uint8_t(i * 23 % 256);
  rgb[0] = 0;
  rgb[1] = 255;
  io::write_png(folder / "image.png", 4, 4, 3, rgb);
  const auto set = data::load_image_folder<4, 3>(folder.path);
  REQUIRE(set.size() == 1);
  CHECK(set.labels.empty());
  for (std::size_t i = 0; i < rgb.size(); ++i)
    REQUIRE(set.pixels[i] == scaled(rgb[i]));
  CHECK(set.pixels[0] == -1.0f);
  CHECK(set.pixels[1] == 1.0f);
}

TEST_CASE("image folder: a non-square image is cropped to its centre square") {
  ldm::test::TempFolder folder;
  SUBCASE("wide: 6x4 keeps columns 1-4") {
    std::vector<std::uint8_t> grey(6 * 4);
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 6; ++x)
        grey[std::size_t(y * 6 + x)] = std::uint8_t(40 * x + y);
    write_grey(folder / "wide.png", 6, 4, grey);
    const auto set = data::load_image_folder<4, 1>(folder.path);
    for (int y = 0; y < 4; ++y)
      for (int x = 0; x < 4; ++x)
        REQUIRE(set.pixels[std::size_t(y * 4 + x)] == scaled(40 * (x + 1) + y));
  }
  SUBCASE("tall: 3x6 keeps rows 1-3 (the odd pixel goes from the end)") {
    std::vector<std::uint8_t> grey(3 * 6);
    for (int y = 0; y < 6; ++y)
      for (int x = 0; x < 3; ++x)
        grey[std::size_t(y * 3 + x)] = std::uint8_t(30 * y + x);
    write_grey(folder / "tall.png", 3, 6, grey);
    const auto set = data::load_image_folder<3, 1>(folder.path);
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x)
        REQUIRE(set.pixels[std::size_t(y * 3 + x)] == scaled(30 * (y + 1) + x));
  }
}

TEST_CASE("image folder: shrinking averages areas (box filter)") {
  ldm::test::TempFolder folder;
  SUBCASE("64x64 checkerboard of 2x2 blocks -> 32x32 block means") {
    // Each 2x2 block holds four different values around its checkerboard base: point sampling
    // would give one of them, the box filter their mean (base + 6).
    std::vector<std::uint8_t> grey(64 * 64);
    for (int y = 0; y < 64; ++y)
      for (int x = 0; x < 64; ++x) {
        const int base = (x / 2 + y / 2) % 2 ? 200 : 40;
        grey[std::size_t(y * 64 + x)] = std::uint8_t(base + 4 * (x % 2) + 8 * (y % 2));
      }
    write_grey(folder / "checker.png", 64, 64, grey);
    const auto set = data::load_image_folder<32, 1>(folder.path);
    REQUIRE(set.size() == 1);
    for (int y = 0; y < 32; ++y)
      for (int x = 0; x < 32; ++x) {
        const int mean = ((x + y) % 2 ? 200 : 40) + 6;
        REQUIRE(set.pixels[std::size_t(y * 32 + x)] == doctest::Approx(scaled(mean)).epsilon(1e-6));
      }
  }
  SUBCASE("3x3 -> 2x2: the middle pixel is shared by overlap (weights 2/3, 1/3)") {
    const std::vector<std::uint8_t> grey = {0, 30, 60, 90, 120, 150, 180, 210, 240};
    write_grey(folder / "three.png", 3, 3, grey);
    const auto set = data::load_image_folder<2, 1>(folder.path);
    const double w[2][3] = {{2.0 / 3, 1.0 / 3, 0}, {0, 1.0 / 3, 2.0 / 3}};
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 2; ++x) {
        double expected = 0;
        for (int i = 0; i < 3; ++i)
          for (int j = 0; j < 3; ++j)
            expected += w[y][i] * w[x][j] * grey[std::size_t(i * 3 + j)];
        CHECK(set.pixels[std::size_t(y * 2 + x)] ==
              doctest::Approx(scaled(expected)).epsilon(1e-6));
      }
  }
}

TEST_CASE("image folder: enlarging is bilinear between pixel centres") {
  ldm::test::TempFolder folder;
  const std::vector<std::uint8_t> grey = {0, 100, 200, 40};
  write_grey(folder / "small.png", 2, 2, grey);
  const auto set = data::load_image_folder<4, 1>(folder.path);
  // Output centres at source positions -0.25, 0.25, 0.75, 1.25, clamped to [0, 1].
  const double w[4][2] = {{1, 0}, {0.75, 0.25}, {0.25, 0.75}, {0, 1}};
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 4; ++x) {
      double expected = 0;
      for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 2; ++j)
          expected += w[y][i] * w[x][j] * grey[std::size_t(i * 2 + j)];
      CHECK(set.pixels[std::size_t(y * 4 + x)] == doctest::Approx(scaled(expected)).epsilon(1e-6));
    }
}

TEST_CASE("image folder: grey and RGB sets from the same files") {
  ldm::test::TempFolder folder;
  io::write_png(folder / "colour.png", 1, 1, 3, std::vector<std::uint8_t>{200, 100, 50});
  io::write_png(folder / "grey.png", 1, 1, 1, std::vector<std::uint8_t>{77});
  const auto grey = data::load_image_folder<1, 1>(folder.path);
  REQUIRE(grey.size() == 2);
  CHECK(grey.pixels[0] == scaled((200 * 77 + 100 * 150 + 50 * 29) >> 8));
  CHECK(grey.pixels[1] == scaled(77));
  const auto rgb = data::load_image_folder<1, 3>(folder.path);
  REQUIRE(rgb.size() == 2);
  CHECK(rgb.pixels == std::vector<float>{scaled(200), scaled(100), scaled(50), scaled(77),
                                         scaled(77), scaled(77)});
}

TEST_CASE("image folder: every format and subfolder, in sorted path order, other files ignored") {
  ldm::test::TempFolder folder;
  const std::vector<std::uint8_t> c(16, 30), e(16, 50);
  // Written out of order; the expected order is by path, component by component.
  write_constant(folder / "z.png", 4, 70);
  write_constant(folder / "b.png", 4, 20);
  write_constant(folder / "a.PNG", 4, 10);
  fs::create_directories(folder / "sub/deeper");
  REQUIRE(stbi_write_bmp((folder / "sub/c.bmp").c_str(), 4, 4, 1, c.data()));
  REQUIRE(stbi_write_tga((folder / "sub/deeper/e.TGA").c_str(), 4, 4, 1, e.data()));
  // A flat grey JPEG at full quality decodes to (almost) its value.
  const std::vector<std::uint8_t> f(8 * 8 * 3, 60);
  REQUIRE(stbi_write_jpg((folder / "sub/f.jpeg").c_str(), 8, 8, 3, f.data(), 100));
  write_bytes(folder / "notes.txt", "not an image");
  write_bytes(folder / "sub/readme", "not an image either");
  write_constant(folder / "sub/g.png.bak", 4, 0);

  data::ImageFolderReport report;
  const auto set = data::load_image_folder<2, 1>(folder.path, data::Unreadable::reject, &report);
  CHECK(report.loaded == 6);
  CHECK(report.skipped.empty());
  REQUIRE(set.size() == 6);
  const double expected[] = {10, 20, 30, 50, 60, 70};  // a, b, sub/c, sub/deeper/e, sub/f, z
  for (std::size_t n = 0; n < 6; ++n) {
    INFO("image ", n);
    for (std::size_t i = 0; i < 4; ++i)
      CHECK(set.pixels[n * 4 + i] == doctest::Approx(scaled(expected[n])).epsilon(2.0 / 255));
  }
}

TEST_CASE("image folder: an unreadable image is skipped and reported, or rejected") {
  ldm::test::TempFolder folder;
  write_constant(folder / "a_good.png", 2, 100);
  write_bytes(folder / "b_corrupt.png", "\x89PNG but then garbage, not a real image file");
  write_constant(folder / "c_good.png", 2, 200);

  SUBCASE("skip (the default)") {
    data::ImageFolderReport report;
    report.loaded = 99;  // the call resets the report
    const auto set = data::load_image_folder<2, 1>(folder.path, data::Unreadable::skip, &report);
    REQUIRE(set.size() == 2);
    CHECK(set.pixels[0] == scaled(100));
    CHECK(set.pixels[4] == scaled(200));
    CHECK(report.loaded == 2);
    REQUIRE(report.skipped.size() == 1);
    CHECK(report.skipped[0].first == folder / "b_corrupt.png");
    check_message(report.skipped[0].second, {"b_corrupt.png", "cannot decode the image"});
    CHECK(data::load_image_folder<2, 1>(folder.path).size() == 2);
  }
  SUBCASE("reject") {
    check_message(
        error_of([&] { data::load_image_folder<2, 1>(folder.path, data::Unreadable::reject); }),
        {(folder / "b_corrupt.png").string(), "cannot decode the image"});
  }
  SUBCASE("a folder of nothing but unreadable images is an error even when skipping") {
    fs::remove(folder / "a_good.png");
    fs::remove(folder / "c_good.png");
    data::ImageFolderReport report;
    check_message(error_of([&] {
                    data::load_image_folder<2, 1>(folder.path, data::Unreadable::skip, &report);
                  }),
                  {folder.path.string(), "none of its 1 image files could be read", "b_corrupt.png",
                   "an empty folder is an error"});
    CHECK(report.loaded == 0);
    CHECK(report.skipped.size() == 1);
  }
}

TEST_CASE("image folder: an empty, missing or non-folder path is an error naming it") {
  ldm::test::TempFolder folder;
  SUBCASE("empty") {
    check_message(error_of([&] { data::load_image_folder<8, 3>(folder.path); }),
                  {folder.path.string(), "no image files",
                   "an empty folder is an error, not an empty training run"});
  }
  SUBCASE("only other files, in subfolders too") {
    write_bytes(folder / "notes.txt", "text");
    fs::create_directories(folder / "sub");
    write_bytes(folder / "sub/data.csv", "1,2,3");
    check_message(error_of([&] { data::load_image_folder<8, 3>(folder.path); }),
                  {folder.path.string(), "no image files"});
  }
  SUBCASE("missing") {
    check_message(error_of([&] { data::load_image_folder<8, 3>(folder / "absent"); }),
                  {(folder / "absent").string(), "no such folder"});
  }
  SUBCASE("a file, not a folder") {
    write_constant(folder / "one.png", 2, 0);
    check_message(error_of([&] { data::load_image_folder<8, 3>(folder / "one.png"); }),
                  {"one.png", "expected a folder of images", "found a file"});
  }
}

namespace {
// The error of loading `folder` as a user without root's override of permissions: in this process
// when it is not root, otherwise in a child that drops to the user `nobody` (65534), so that the
// test means the same when the suite runs as root.
std::string error_as_unprivileged_user(const fs::path& folder) {
  if (::geteuid() != 0) return error_of([&] { data::load_image_folder<8, 1>(folder); });
  MESSAGE("running as root: the folder is listed by a child process as the user nobody (65534)");
  int pipe_ends[2];
  REQUIRE(::pipe(pipe_ends) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(pipe_ends[0]);
    std::string message = "could not drop root";
    if (::setgid(65534) == 0 && ::setuid(65534) == 0)
      message = error_of([&] { data::load_image_folder<8, 1>(folder); });
    [[maybe_unused]] const ssize_t written = ::write(pipe_ends[1], message.data(), message.size());
    ::_exit(0);
  }
  ::close(pipe_ends[1]);
  std::string message;
  char buffer[512];
  for (ssize_t n; (n = ::read(pipe_ends[0], buffer, sizeof buffer)) > 0;)
    message.append(buffer, std::size_t(n));
  ::close(pipe_ends[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  return message;
}
}  // namespace

TEST_CASE(
    "image folder: a subfolder without read permission is an error naming it (issue 13 "
    "row 15)") {
  ldm::test::TempFolder folder;
  write_constant(folder / "a.png", 8, 0);
  const fs::path locked = folder / "locked";
  fs::create_directories(locked);
  write_constant(locked / "b.png", 8, 0);
  // The child that drops root must be able to reach the folder.
  fs::permissions(folder.path, fs::perms::owner_all | fs::perms::group_read |
                                   fs::perms::group_exec | fs::perms::others_read |
                                   fs::perms::others_exec);
  fs::permissions(locked, fs::perms::none);
  const std::string message = error_as_unprivileged_user(folder.path);
  fs::permissions(locked, fs::perms::owner_all);
  check_message(message, {locked.string() + ": cannot list the folder: Permission denied"});
}
