// The background data loader: the same batches and data positions as ShuffledBatches called
// directly (over epochs, with flips and labels, after seek), the thread's exceptions reaching
// next(), a prompt destructor, and the time next() waits.
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <ldm/data/background_loader.hpp>
#include <memory>
#include <thread>

#include "support/errors.hpp"

using namespace ldm;

namespace {

// Ten 3x3 images of 2 channels, every value distinct (image i holds i * 100 + p), image i
// labelled i.
data::ImageSet<3, 2> distinct_images(int count = 10) {
  data::ImageSet<3, 2> set;
  for (int i = 0; i < count; ++i) {
    for (int p = 0; p < 18; ++p)
      set.pixels.push_back(float(i * 100 + p));
    set.labels.push_back(i);
  }
  return set;
}

// Takes `count` batches from both and requires them, and the positions after them, identical
// bit for bit.
template <index_t N>
void require_same(data::ShuffledBatches<3, 2>& direct, data::BackgroundLoader<3, 2, N>& loader,
                  int count) {
  Tensor<float, Shape<N, 3, 3, 2>> x, y;
  Tensor<std::int32_t, Shape<N>> lx, ly;
  for (int k = 0; k < count; ++k) {
    direct.template next<N>(x, lx);
    loader.next(y, ly);
    for (index_t i = 0; i < x.size; ++i)
      REQUIRE(x.data()[i] == y.data()[i]);
    for (index_t n = 0; n < N; ++n)
      REQUIRE(lx[n] == ly[n]);
    REQUIRE(loader.epoch() == direct.epoch());
    REQUIRE(loader.position() == direct.position());
  }
}

// A source whose batch k is all k, taking `delay` per batch, and failing at batch `fails_at`.
struct CountingSource {
  int fails_at = -1;
  std::chrono::milliseconds delay{0};
  int taken = 0;
  std::uint64_t epoch_ = 0;
  std::size_t position_ = 0;

  template <index_t N>
  void next(View<float, Shape<N, 1, 1, 1>> images, View<std::int32_t, Shape<N>>) {
    std::this_thread::sleep_for(delay);
    if (taken == fails_at) fail("counting source: batch ", taken, " is broken");
    for (index_t n = 0; n < N; ++n)
      images[n] = float(taken);
    ++taken, position_ += std::size_t(N);
  }
  void seek(std::uint64_t epoch, std::size_t position) {
    epoch_ = epoch, position_ = position, taken = 0;
  }
  std::uint64_t epoch() const { return epoch_; }
  std::size_t position() const { return position_; }
  bool has_labels() const { return false; }
};

using CountingLoader = data::BackgroundLoader<1, 1, 2, CountingSource>;

}  // namespace

TEST_CASE("background loader: the batches of ShuffledBatches, over epochs and after seek") {
  const auto set = distinct_images();
  for (const bool flips : {false, true})
    for (const std::size_t depth : {std::size_t(1), std::size_t(2), std::size_t(5)}) {
      CAPTURE(flips);
      CAPTURE(depth);
      data::ShuffledBatches<3, 2> direct(set, 11, flips);
      data::BackgroundLoader<3, 2, 3> loader(set, 11, flips, depth);
      CHECK(loader.epoch() == 0);
      CHECK(loader.position() == 0);
      require_same(direct, loader, 17);  // five epochs and a bit, a partial batch dropped in each
      CHECK(loader.batches() == 17);

      // A seek mid-run drops the prepared batches and continues from there.
      direct.seek(2, 4);
      loader.seek(2, 4);
      CHECK(loader.epoch() == 2);
      CHECK(loader.position() == 4);
      require_same(direct, loader, 9);

      // And one back to an epoch already seen.
      direct.seek(0, 0);
      loader.seek(0, 0);
      require_same(direct, loader, 5);
    }
}

TEST_CASE("background loader: seek before the first batch, as a resumed run does") {
  const auto set = distinct_images();
  data::ShuffledBatches<3, 2> direct(set, 5, true);
  direct.seek(7, 6);
  data::BackgroundLoader<3, 2, 2> loader(set, 5, true);
  loader.seek(7, 6);
  require_same(direct, loader, 12);
  CHECK(loader.batches() == 12);
}

TEST_CASE("background loader: an unlabelled set leaves the labels alone") {
  auto set = distinct_images();
  set.labels.clear();
  data::BackgroundLoader<3, 2, 4> loader(set, 1);
  Tensor<float, Shape<4, 3, 3, 2>> x;
  Tensor<std::int32_t, Shape<4>> labels;
  for (index_t n = 0; n < 4; ++n)
    labels[n] = -5;
  loader.next(x, labels);
  loader.next(x);
  for (index_t n = 0; n < 4; ++n)
    CHECK(labels[n] == -5);
}

TEST_CASE("background loader: errors reach the caller") {
  const auto set = distinct_images(2);
  SUBCASE("an exception in the source is rethrown by next(), after the batches before it") {
    CountingLoader loader(CountingSource{.fails_at = 3}, 2);
    Tensor<float, Shape<2, 1, 1, 1>> x;
    for (int round = 0; round < 2; ++round) {  // a seek forgets the exception
      for (int k = 0; k < 3; ++k) {
        loader.next(x);
        REQUIRE(x[0] == float(k));
      }
      for (int k = 0; k < 2; ++k)
        test::check_message(test::error_of([&] { loader.next(x); }),
                            {"counting source: batch 3 is broken"});
      loader.seek(0, 0);
    }
    CHECK(loader.batches() == 6);
  }
  SUBCASE("an exception on the thread is rethrown by next(), every time") {
    data::BackgroundLoader<3, 2, 3> loader(set, 1);  // batches of 3 from 2 images
    Tensor<float, Shape<3, 3, 3, 2>> x;
    for (int k = 0; k < 2; ++k)
      test::check_message(test::error_of([&] { loader.next(x); }),
                          {"batch size", "at most the data set's 2", "found 3"});
    CHECK(loader.batches() == 0);
  }
  SUBCASE("a position past the set, which changes nothing") {
    data::ShuffledBatches<3, 2> direct(set, 1);
    data::BackgroundLoader<3, 2, 1> loader(set, 1);
    require_same(direct, loader, 3);
    test::check_message(test::error_of([&] { loader.seek(5, 3); }),
                        {"position", "at most 2", "found 3"});
    CHECK(loader.epoch() == 1);
    CHECK(loader.position() == 1);
    require_same(direct, loader, 3);
  }
  SUBCASE("a depth of 0") {
    test::check_message(test::error_of([&] { data::BackgroundLoader<3, 2, 1>(set, 1, false, 0); }),
                        {"depth", "at least 1", "found 0"});
  }
  SUBCASE("an empty set") {
    const data::ImageSet<3, 2> empty;
    test::check_message(test::error_of([&] { data::BackgroundLoader<3, 2, 1>(empty, 1); }),
                        {"empty"});
  }
}

TEST_CASE("background loader: destroyed at once, mid-epoch, or with its ring full") {
  // Larger images, so that the thread is often busy when the loader goes.
  data::ImageSet<32, 3> set;
  set.pixels.assign(std::size_t(64 * 32 * 32 * 3), 0.5f);
  Tensor<float, Shape<16, 32, 32, 3>> x;
  const auto start = std::chrono::steady_clock::now();
  for (int round = 0; round < 200; ++round) {
    data::BackgroundLoader<32, 3, 16> loader(set, std::uint64_t(round), true, 3);
    for (int k = 0; k < round % 4; ++k)
      loader.next(x);
  }
  // 200 loaders of a few batches each take milliseconds; a destructor that waited for a
  // notification that never comes would hang here instead.
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(20));
}

TEST_CASE("background loader: the destructor waits for one batch, not for the source to end") {
  // A batch takes 300 ms: a destructor that let the thread fill its ring of 3 would take 900 ms
  // or more; one that stops it waits for one batch at most.
  Tensor<float, Shape<2, 1, 1, 1>> x;
  for (int taken = 0; taken < 2; ++taken) {
    auto loader = std::make_unique<CountingLoader>(
        CountingSource{.delay = std::chrono::milliseconds(300)}, 3);
    for (int k = 0; k < taken; ++k)
      loader->next(x);
    const auto start = std::chrono::steady_clock::now();
    loader.reset();
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(800));
  }
}

TEST_CASE("background loader: counts the batches and the time next() waits for them") {
  const auto set = distinct_images();
  data::BackgroundLoader<3, 2, 5> loader(set, 3);
  Tensor<float, Shape<5, 3, 3, 2>> x;
  CHECK(loader.waited_seconds() == 0);
  double before = 0;
  // Right after a seek nothing is prepared, so next() nearly always waits; over twenty seeks it
  // must have waited some time, however the threads are scheduled.
  for (int k = 0; k < 20; ++k) {
    loader.seek(std::uint64_t(k), 0);
    loader.next(x);
    CHECK(loader.waited_seconds() >= before);
    before = loader.waited_seconds();
  }
  CHECK(loader.waited_seconds() > 0);
  CHECK(loader.batches() == 20);
}

TEST_CASE("background loader: a consumer faster than the source waits, and no longer than it ran") {
  const auto start = std::chrono::steady_clock::now();
  CountingLoader loader(CountingSource{.delay = std::chrono::milliseconds(10)}, 2);
  Tensor<float, Shape<2, 1, 1, 1>> x;
  for (int k = 0; k < 10; ++k) {
    loader.next(x);
    REQUIRE(x[0] == float(k));
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK(loader.waited_seconds() > 0);
  CHECK(loader.waited_seconds() <= elapsed);
  CHECK(loader.batches() == 10);
}
