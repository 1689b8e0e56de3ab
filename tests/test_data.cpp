// Fashion-MNIST loading (padding, scaling, labels, bad files) and seeded shuffled batches.
#include <doctest/doctest.h>

#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <ldm/data/fashion_mnist.hpp>
#include <set>

#include "support/errors.hpp"

using namespace ldm;

namespace {
// Writes an uncompressed IDX file (the reader takes plain files as well as gzip'd ones).
void write_idx(const std::filesystem::path& path, std::vector<std::uint32_t> extents,
               const std::vector<std::uint8_t>& data) {
  std::ofstream out(path, std::ios::binary);
  const char head[] = {0, 0, 8, char(extents.size())};
  out.write(head, 4);
  for (auto e : extents) {
    const char be[] = {char(e >> 24), char(e >> 16), char(e >> 8), char(e)};
    out.write(be, 4);
  }
  out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size()));
}

std::filesystem::path fake_fashion_mnist(std::size_t images, std::size_t labels,
                                         std::uint8_t label_value = 3) {
  auto folder = std::filesystem::temp_directory_path() / "ldm_test_fashion";
  std::filesystem::remove_all(folder);
  std::filesystem::create_directories(folder);
  std::vector<std::uint8_t> pixels(images * 784);
  for (std::size_t i = 0; i < pixels.size(); ++i)
    pixels[i] = std::uint8_t(i % 256);
  // The reader picks files by name; plain IDX content under the .gz names is accepted.
  write_idx(folder / "t10k-images-idx3-ubyte.gz", {std::uint32_t(images), 28, 28}, pixels);
  write_idx(folder / "t10k-labels-idx1-ubyte.gz", {std::uint32_t(labels)},
            std::vector<std::uint8_t>(labels, label_value));
  return folder;
}
}  // namespace

TEST_CASE("Fashion-MNIST: 28x28 padded with background to 32x32, scaled to [-1, 1]") {
  const auto folder = fake_fashion_mnist(3, 3);
  const auto set = data::load_fashion_mnist<32>(data::Split::test, folder);
  REQUIRE(set.size() == 3);
  CHECK(set.labels == std::vector<std::int32_t>{3, 3, 3});
  // Pixel (h, w) of image n came from byte n * 784 + h * 28 + w, at (h + 2, w + 2).
  for (std::size_t n = 0; n < 3; ++n)
    for (int h = 0; h < 32; ++h)
      for (int w = 0; w < 32; ++w) {
        const float v = set.pixels[n * 1024 + std::size_t(h * 32 + w)];
        const bool inside = h >= 2 && h < 30 && w >= 2 && w < 30;
        const float expected =
            inside ? float((n * 784 + std::size_t((h - 2) * 28 + w - 2)) % 256) / 127.5f - 1 : -1;
        REQUIRE(v == expected);
      }
  std::filesystem::remove_all(folder);
}

TEST_CASE("Fashion-MNIST: mismatched or bad files are errors naming the file") {
  SUBCASE("fewer labels than images") {
    const auto folder = fake_fashion_mnist(4, 3);
    test::check_message(
        test::error_of([&] { data::load_fashion_mnist<32>(data::Split::test, folder); }),
        {"t10k-labels-idx1-ubyte.gz", "label count", "4", "found 3"});
  }
  SUBCASE("a label outside 0-9") {
    const auto folder = fake_fashion_mnist(2, 2, 12);
    test::check_message(
        test::error_of([&] { data::load_fashion_mnist<32>(data::Split::test, folder); }),
        {"t10k-labels-idx1-ubyte.gz", "label 0", "expected 0-9", "found 12"});
  }
  SUBCASE("no files") {
    test::check_message(
        test::error_of([] { data::load_fashion_mnist<32>(data::Split::train, "/nonexistent"); }),
        {"/nonexistent/train-images-idx3-ubyte.gz", "No such file"});
  }
}

TEST_CASE("shuffled batches: the same seed gives the same batches, every epoch a permutation") {
  data::ImageSet<2, 1> set;
  for (int i = 0; i < 10; ++i) {
    for (int p = 0; p < 4; ++p)
      set.pixels.push_back(float(i));
    set.labels.push_back(i);
  }
  data::ShuffledBatches<2, 1> a(set, 7), b(set, 7), c(set, 8);
  Tensor<float, Shape<3, 2, 2, 1>> xa, xb, xc;
  Tensor<std::int32_t, Shape<3>> la, lb, lc;
  std::multiset<int> epoch0;
  bool differs = false;
  for (int k = 0; k < 3; ++k) {  // 3 batches of 3 = 9 of the 10 images of epoch 0
    a.next<3>(xa, la);
    b.next<3>(xb, lb);
    c.next<3>(xc, lc);
    for (int n = 0; n < 3; ++n) {
      REQUIRE(la[n] == lb[n]);
      REQUIRE(xa(n, 0, 0, 0) == float(la[n]));
      differs |= la[n] != lc[n];
      epoch0.insert(la[n]);
    }
  }
  CHECK(differs);
  CHECK(std::set<int>(epoch0.begin(), epoch0.end()).size() == 9);  // no image twice in an epoch
  a.next<3>(xa, la);  // one image left: a new epoch starts
  CHECK(a.epoch() == 1);
  CHECK(a.position() == 3);
  // Resuming at a saved (epoch, position) continues identically.
  data::ShuffledBatches<2, 1> resumed(set, 7);
  resumed.seek(1, 3);
  a.next<3>(xa, la);
  resumed.next<3>(xb, lb);
  for (int n = 0; n < 3; ++n)
    CHECK(la[n] == lb[n]);
}

TEST_CASE("Fashion-MNIST from the Debian package, when installed") {
  if (!std::filesystem::exists(data::fashion_mnist_folder / "t10k-images-idx3-ubyte.gz")) {
    MESSAGE("dataset-fashion-mnist is not installed; skipped");
    return;
  }
  const auto set = data::load_fashion_mnist<32>(data::Split::test);
  CHECK(set.size() == 10000);
  float lo = 1, hi = -1;
  for (float v : set.pixels)
    lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo == -1.0f);
  CHECK(hi == 1.0f);
}

namespace {
// Ten 3x3 images of 2 channels whose every value is distinct: image i, row y, column x, channel c
// holds i * 100 + (y * 3 + x) * 2 + c; image i has label i.
data::ImageSet<3, 2> distinct_images() {
  data::ImageSet<3, 2> set;
  for (int i = 0; i < 10; ++i) {
    for (int p = 0; p < 18; ++p)
      set.pixels.push_back(float(i * 100 + p));
    set.labels.push_back(i);
  }
  return set;
}

float value(int image, int y, int x, int c) {
  return float(image * 100 + (y * 3 + x) * 2 + c);
}
}  // namespace

TEST_CASE("shuffled batches: flips off are the images as they are, in the seed's order") {
  const auto set = distinct_images();
  data::ShuffledBatches<3, 2> batches(set, 7);
  Tensor<float, Shape<5, 3, 3, 2>> x;
  Tensor<std::int32_t, Shape<5>> labels;
  std::vector<int> order;
  for (int k = 0; k < 4; ++k) {  // two epochs
    batches.next<5>(x, labels);
    for (int n = 0; n < 5; ++n) {
      order.push_back(labels[n]);
      for (int y = 0; y < 3; ++y)
        for (int w = 0; w < 3; ++w)
          for (int c = 0; c < 2; ++c)
            REQUIRE(x(n, y, w, c) == value(labels[n], y, w, c));
    }
  }
  // The order of seed 7 before flips existed: flips off must not change a run.
  CHECK(order == std::vector<int>{5, 6, 3, 8, 2, 4, 1, 7, 9, 0, 1, 7, 3, 0, 4, 9, 5, 8, 2, 6});
  for (std::size_t p = 0; p < 100; ++p)
    REQUIRE_FALSE(batches.flips(0, p));
}

TEST_CASE("shuffled batches: random horizontal flips mirror about half, the same after seek") {
  const auto set = distinct_images();
  data::ShuffledBatches<3, 2> plain(set, 7), flipping(set, 7, true);
  Tensor<float, Shape<5, 3, 3, 2>> x, y;
  Tensor<std::int32_t, Shape<5>> lx, ly;
  int flipped = 0, kept = 0;
  for (int k = 0; k < 12; ++k) {  // six epochs
    const std::uint64_t epoch = flipping.epoch() + (flipping.position() + 5 > 10 ? 1 : 0);
    const std::size_t first = flipping.position() + 5 > 10 ? 0 : flipping.position();
    plain.next<5>(x, lx);
    flipping.next<5>(y, ly);
    for (int n = 0; n < 5; ++n) {
      REQUIRE(lx[n] == ly[n]);  // flips leave the order alone
      const bool mirrored = flipping.flips(epoch, first + std::size_t(n));
      (mirrored ? flipped : kept)++;
      for (int r = 0; r < 3; ++r)
        for (int w = 0; w < 3; ++w)
          for (int c = 0; c < 2; ++c)
            REQUIRE(y(n, r, w, c) == value(ly[n], r, mirrored ? 2 - w : w, c));
    }
  }
  CHECK(flipped > 0);
  CHECK(kept > 0);

  // A pure function of (seed, epoch, position), about half of them, from a stream of its own.
  data::ShuffledBatches<3, 2> same(set, 7, true), other(set, 8, true);
  int half = 0, seed_differs = 0, epoch_differs = 0, like_shuffle = 0;
  for (std::size_t p = 0; p < 10000; ++p) {
    REQUIRE(same.flips(3, p) == flipping.flips(3, p));
    half += flipping.flips(3, p);
    seed_differs += flipping.flips(3, p) != other.flips(3, p);
    epoch_differs += flipping.flips(3, p) != flipping.flips(4, p);
    like_shuffle += flipping.flips(3, p) == (uniform(7, 3, p) < 0.5f);
  }
  CHECK(half > 4800);
  CHECK(half < 5200);
  CHECK(seed_differs > 4800);
  CHECK(epoch_differs > 4800);
  CHECK(like_shuffle < 5200);

  // Resuming at a saved (epoch, position) flips the same images.
  flipping.next<5>(y, ly);
  data::ShuffledBatches<3, 2> resumed(set, 7, true);
  resumed.seek(flipping.epoch(), flipping.position());
  for (int k = 0; k < 5; ++k) {
    flipping.next<5>(x, lx);
    resumed.next<5>(y, ly);
    for (index_t i = 0; i < x.size; ++i)
      REQUIRE(x.data()[i] == y.data()[i]);
  }
}

TEST_CASE("shuffled batches: a seek past the set is an error that changes nothing") {
  const auto set = distinct_images();
  data::ShuffledBatches<3, 2> batches(set, 7), same(set, 7);
  Tensor<float, Shape<4, 3, 3, 2>> x, y;
  batches.next<4>(x);
  same.next<4>(y);
  test::check_message(test::error_of([&] { batches.seek(3, 11); }),
                      {"ShuffledBatches: position", "at most 10", "found 11"});
  CHECK(batches.epoch() == 0);
  CHECK(batches.position() == 4);
  batches.next<4>(x);
  same.next<4>(y);
  for (index_t i = 0; i < x.size; ++i)
    REQUIRE(x.data()[i] == y.data()[i]);
}
