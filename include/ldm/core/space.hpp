#pragma once
/// @file
/// Memory spaces. A tensor's space is a template parameter, so where data lives is part of its
/// type and mixing spaces in one expression is a compile error. `host` is defined here; the CUDA
/// backend adds `memory<cuda>` in core/cuda/memory.cuh, which only .cu translation units include.

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>

namespace ldm {

/// The host's memory: tensors in it are computed by OpenMP loops on the CPU.
struct host {};
/// A CUDA device's memory: tensors in it are computed by kernels (in .cu units, with ldm::cuda).
struct cuda {};

/// Whether Space is a memory space (ldm::host or ldm::cuda).
template <class Space>
inline constexpr bool is_space_v = false;
/// @cond
template <>
inline constexpr bool is_space_v<host> = true;
template <>
inline constexpr bool is_space_v<cuda> = true;
/// @endcond

/// allocate/release raw bytes in a space. Host blocks are 64-byte aligned (a cache line, and the
/// widest SIMD load), with the size rounded up as std::aligned_alloc requires. Each host block
/// carries its size in a line before it, so the bytes in use and their peak are counted exactly
/// (what the memory plans are checked against).
///
/// Freed host blocks of at least memory<host>::cache_min_bytes are kept for the next allocation
/// of the same size, at most as many bytes as the peak in use since the process started: a
/// training step allocates the same temporaries every step, and returning them to the system
/// (glibc unmaps large blocks and trims its heap) made every step fault in and zero their pages
/// again. Kept blocks are not in use (stats() does not count them); release_cached() frees them.
template <class Space>
struct memory;

/// The host memory ldm has allocated, in bytes.
struct HostMemoryStats {
  std::size_t in_use = 0;       ///< bytes of live host blocks
  std::size_t peak_in_use = 0;  ///< the most in_use has been since the last reset_peak()
  std::size_t cached = 0;       ///< bytes of freed blocks kept for reuse (not in in_use)
};

/// Host memory: 64-byte aligned blocks, counted.
template <>
struct memory<host> {
  static constexpr std::size_t alignment = 64;  ///< The alignment of every block, in bytes.

  /// Blocks this large or larger (with their size line) are kept for reuse when freed.
  static constexpr std::size_t cache_min_bytes = std::size_t(64) << 10;

  /// A block of `bytes` bytes, or nullptr for 0 bytes.
  /// @throws std::bad_alloc when the memory cannot be allocated
  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    const std::size_t total = alignment + (bytes + alignment - 1) / alignment * alignment;
    Counters& c = counters();
    char* block = total >= cache_min_bytes ? c.take_cached(total) : nullptr;
    if (!block) block = static_cast<char*>(std::aligned_alloc(alignment, total));
    if (!block) throw std::bad_alloc();
    *reinterpret_cast<std::size_t*>(block) = bytes;
    const std::size_t now = c.in_use.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    for (std::atomic<std::size_t>* most : {&c.peak, &c.high_water}) {
      std::size_t seen = most->load(std::memory_order_relaxed);
      while (now > seen && !most->compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
      }
    }
    return block + alignment;
  }
  /// Frees a block from allocate (nullptr is allowed).
  static void release(void* p) noexcept {
    if (!p) return;
    char* block = static_cast<char*>(p) - alignment;
    const std::size_t bytes = *reinterpret_cast<std::size_t*>(block);
    Counters& c = counters();
    c.in_use.fetch_sub(bytes, std::memory_order_relaxed);
    const std::size_t total = alignment + (bytes + alignment - 1) / alignment * alignment;
    if (total < cache_min_bytes || !c.keep(block, total)) std::free(block);
  }
  /// Frees the blocks kept for reuse (see the note on memory).
  static void release_cached() noexcept {
    Counters& c = counters();
    const std::lock_guard<std::mutex> lock(c.cache_mutex);
    for (const auto& [total, block] : c.cache)
      std::free(block);
    c.cache.clear();
    c.cached = 0;
  }

  /// Blocks this large or larger are zeroed by all the OpenMP threads.
  static constexpr std::size_t parallel_zero_bytes = std::size_t(1) << 20;

  /// Sets `bytes` bytes from p to `value`. A new tensor's zeroing was the largest serial part of
  /// a training step on two threads once its pages stopped being fresh from the system.
  static void fill_bytes(void* p, unsigned char value, std::size_t bytes) noexcept {
    constexpr std::size_t chunk = std::size_t(64) << 10;
    const std::ptrdiff_t chunks = std::ptrdiff_t((bytes + chunk - 1) / chunk);
#pragma omp parallel for schedule(static) if (bytes >= parallel_zero_bytes)
    for (std::ptrdiff_t i = 0; i < chunks; ++i) {
      const std::size_t begin = std::size_t(i) * chunk;
      std::memset(static_cast<char*>(p) + begin, value, std::min(chunk, bytes - begin));
    }
  }
  /// Sets `bytes` bytes from p to zero.
  static void zero(void* p, std::size_t bytes) noexcept {
    fill_bytes(p, 0, bytes);
  }

  /// The bytes in use now and their peak.
  static HostMemoryStats stats() {
    Counters& c = counters();
    const std::lock_guard<std::mutex> lock(c.cache_mutex);
    return {c.in_use.load(std::memory_order_relaxed), c.peak.load(std::memory_order_relaxed),
            c.cached};
  }
  /// Restarts the peak from the bytes in use now.
  static void reset_peak() {
    counters().peak.store(counters().in_use.load(std::memory_order_relaxed),
                          std::memory_order_relaxed);
  }

 private:
  struct Counters {
    // high_water is peak without resets: what bounds the cache.
    std::atomic<std::size_t> in_use{0}, peak{0}, high_water{0};
    std::mutex cache_mutex;
    std::multimap<std::size_t, char*> cache;  // by the block's whole size
    std::size_t cached = 0;

    char* take_cached(std::size_t total) {
      const std::lock_guard<std::mutex> lock(cache_mutex);
      const auto found = cache.find(total);
      if (found == cache.end()) return nullptr;
      char* const block = found->second;
      cache.erase(found);
      cached -= *reinterpret_cast<std::size_t*>(block);
      return block;
    }
    // Counted, as in_use, by the bytes asked for (the block's size line).
    bool keep(char* block, std::size_t total) noexcept {
      const std::size_t bytes = *reinterpret_cast<std::size_t*>(block);
      const std::lock_guard<std::mutex> lock(cache_mutex);
      if (cached + bytes > high_water.load(std::memory_order_relaxed)) return false;
      try {
        cache.emplace(total, block);
      } catch (...) {
        return false;
      }
      cached += bytes;
      return true;
    }
  };
  // Never destroyed: blocks may be released by other static objects' destructors at exit.
  static Counters& counters() {
    static Counters& c = *new Counters;
    return c;
  }
};

}  // namespace ldm
