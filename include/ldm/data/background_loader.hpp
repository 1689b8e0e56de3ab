#pragma once
/// @file
/// BackgroundLoader: batches prepared on a thread of their own, a few ahead, so that a training
/// step does not wait while the next batch is gathered (flipped, or decoded from files). The
/// batches, and the data position after each, are exactly those of the source's next<N> called
/// in the same order: the thread only runs ahead, it never changes what comes.

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/data/image_set.hpp"

namespace ldm::data {

/// Batches of N images from a source (a ShuffledBatches over an ImageSet by default, or an
/// ImageFileBatches), prepared `depth` batches ahead on a thread while the caller trains. next()
/// copies the oldest prepared batch and blocks only when none is ready; seek() discards the
/// prepared ones and continues from the position given.
///
/// A Source has ShuffledBatches' members next<N>(images, labels), seek(epoch, position),
/// epoch(), position() and has_labels(), and can be moved. One consumer thread calls every member
/// of the loader; the loader's own thread touches only the source and the prepared batches. An
/// exception on that thread (an ldm::Error) is rethrown by next() once the batches prepared
/// before it are taken, and again by every later next() until a seek(). The destructor stops and
/// joins the thread: it waits at most for the batch being prepared.
template <index_t Resolution, index_t Channels, index_t N,
          class Source = ShuffledBatches<Resolution, Channels>>
class BackgroundLoader {
 public:
  /// The images of one batch.
  using Images = View<float, Shape<N, Resolution, Resolution, Channels>>;
  /// The labels of one batch.
  using Labels = View<std::int32_t, Shape<N>>;

  /// Batches of a ShuffledBatches(set, seed, flip_horizontally), from epoch 0, position 0 (for
  /// the default Source). The set must outlive the loader.
  /// @param set the images (and labels) to draw from
  /// @param seed the ShuffledBatches' seed: the order and the flips
  /// @param flip_horizontally as ShuffledBatches' argument of that name
  /// @param depth how many batches are prepared ahead (at least 1)
  /// @throws ldm::Error when the set is empty or depth is 0
  BackgroundLoader(const ImageSet<Resolution, Channels>& set, std::uint64_t seed,
                   bool flip_horizontally = false, std::size_t depth = 2)
      : BackgroundLoader(Source(set, seed, flip_horizontally), depth) {}

  /// Batches of `source`, from where it stands, prepared `depth` ahead.
  /// @throws ldm::Error when depth is 0
  explicit BackgroundLoader(Source source, std::size_t depth = 2)
      : source_(std::move(source)),
        labelled_(source_.has_labels()),
        ring_(check_depth(depth)),
        epoch_(source_.epoch()),
        position_(source_.position()) {
    for (Prepared& slot : ring_) {
      slot.images.resize(std::size_t(Images::size));
      slot.labels.resize(std::size_t(N));
    }
    worker_ = std::thread([this] { prepare_batches(); });
  }

  BackgroundLoader(const BackgroundLoader&) = delete;
  BackgroundLoader& operator=(const BackgroundLoader&) = delete;

  /// Stops the thread and waits for it (at most the batch it is preparing).
  ~BackgroundLoader() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    worker_.join();
  }

  /// Continues from a saved (epoch, position), as ShuffledBatches::seek: the batches prepared
  /// so far are dropped, and an exception from the thread is forgotten.
  /// @throws ldm::Error when position is larger than the set (nothing changes then)
  void seek(std::uint64_t epoch, std::size_t position) {
    std::unique_lock lock(mutex_);
    // The thread uses the source outside the lock while it prepares a batch.
    changed_.wait(lock, [&] { return !preparing_; });
    source_.seek(epoch, position);
    ready_ = 0;
    error_ = nullptr;
    epoch_ = epoch, position_ = position;
    lock.unlock();
    changed_.notify_all();
  }

  /// Copies the next batch into `images` (and its labels into `labels` when given and the set
  /// has labels), waiting for it when it is not ready yet.
  /// @throws ldm::Error (or whatever the source threw) when preparing the batch failed: N larger
  ///         than the set, an image file that cannot be decoded
  void next(Images images, Labels labels = Labels(nullptr)) {
    std::unique_lock lock(mutex_);
    if (ready_ == 0 && !error_) {
      const auto start = std::chrono::steady_clock::now();
      changed_.wait(lock, [&] { return ready_ > 0 || error_; });
      waited_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    if (ready_ == 0) std::rethrow_exception(error_);
    // The thread writes only slots that are not ready, so this one can be read unlocked.
    const Prepared& slot = ring_[first_];
    lock.unlock();
    std::copy(slot.images.begin(), slot.images.end(), images.data());
    if (labels.data() && labelled_)
      std::copy(slot.labels.begin(), slot.labels.end(), labels.data());
    epoch_ = slot.epoch, position_ = slot.position;
    ++taken_;
    lock.lock();
    first_ = (first_ + 1) % ring_.size();
    --ready_;
    lock.unlock();
    changed_.notify_all();
  }

  /// The data epoch after the batch last returned (as ShuffledBatches::epoch after the same
  /// calls).
  std::uint64_t epoch() const { return epoch_; }
  /// The position in that epoch after the batch last returned (as ShuffledBatches::position).
  std::size_t position() const { return position_; }
  /// The seconds next() has spent waiting for a batch: near 0 when the thread keeps ahead.
  double waited_seconds() const { return waited_; }
  /// The batches next() has returned.
  std::uint64_t batches() const { return taken_; }

 private:
  struct Prepared {
    std::vector<float> images;
    std::vector<std::int32_t> labels;
    std::uint64_t epoch = 0;
    std::size_t position = 0;
  };

  static std::size_t check_depth(std::size_t depth) {
    if (depth == 0) fail_expected("ldm::data::BackgroundLoader: depth", "at least 1", depth);
    return depth;
  }

  void prepare_batches() {
    std::unique_lock lock(mutex_);
    for (;;) {
      changed_.wait(lock, [&] { return stop_ || (ready_ < ring_.size() && !error_); });
      if (stop_) return;
      Prepared& slot = ring_[(first_ + ready_) % ring_.size()];
      preparing_ = true;
      lock.unlock();
      std::exception_ptr failure;
      try {
        source_.template next<N>(Images(slot.images.data()), Labels(slot.labels.data()));
        slot.epoch = source_.epoch(), slot.position = source_.position();
      } catch (...) {
        failure = std::current_exception();
      }
      lock.lock();
      preparing_ = false;
      if (failure)
        error_ = failure;
      else
        ++ready_;
      changed_.notify_all();
    }
  }

  Source source_;
  const bool labelled_;
  std::vector<Prepared> ring_;
  // Guarded by mutex_: the ring's state, the thread's state and its exception.
  std::mutex mutex_;
  std::condition_variable changed_;
  std::size_t first_ = 0, ready_ = 0;  // the oldest prepared slot, and how many are prepared
  bool preparing_ = false, stop_ = false;
  std::exception_ptr error_;
  // The consumer's own.
  std::uint64_t epoch_ = 0;
  std::size_t position_ = 0;
  double waited_ = 0;
  std::uint64_t taken_ = 0;
  std::thread worker_;  // last: it starts once everything above exists
};

}  // namespace ldm::data
