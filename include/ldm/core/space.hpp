#pragma once
/// @file
/// Memory spaces. A tensor's space is a template parameter, so where data lives is part of its
/// type and mixing spaces in one expression is a compile error. `host` is defined here; the CUDA
/// backend adds `memory<cuda>` in core/cuda/memory.cuh, which only .cu translation units include.

#include <atomic>
#include <cstddef>
#include <cstdlib>
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
template <class Space>
struct memory;

/// The host memory ldm has allocated, in bytes.
struct HostMemoryStats {
  std::size_t in_use = 0;       ///< bytes of live host blocks
  std::size_t peak_in_use = 0;  ///< the most in_use has been since the last reset_peak()
};

/// Host memory: 64-byte aligned blocks, counted.
template <>
struct memory<host> {
  static constexpr std::size_t alignment = 64;  ///< The alignment of every block, in bytes.

  /// A block of `bytes` bytes, or nullptr for 0 bytes.
  /// @throws std::bad_alloc when the memory cannot be allocated
  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    const std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
    char* block = static_cast<char*>(std::aligned_alloc(alignment, alignment + rounded));
    if (!block) throw std::bad_alloc();
    *reinterpret_cast<std::size_t*>(block) = bytes;
    const std::size_t now = counters().in_use.fetch_add(bytes, std::memory_order_relaxed) + bytes;
    std::size_t peak = counters().peak.load(std::memory_order_relaxed);
    while (now > peak &&
           !counters().peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
    return block + alignment;
  }
  /// Frees a block from allocate (nullptr is allowed).
  static void release(void* p) noexcept {
    if (!p) return;
    char* block = static_cast<char*>(p) - alignment;
    counters().in_use.fetch_sub(*reinterpret_cast<std::size_t*>(block), std::memory_order_relaxed);
    std::free(block);
  }

  /// The bytes in use now and their peak.
  static HostMemoryStats stats() {
    return {counters().in_use.load(std::memory_order_relaxed),
            counters().peak.load(std::memory_order_relaxed)};
  }
  /// Restarts the peak from the bytes in use now.
  static void reset_peak() {
    counters().peak.store(counters().in_use.load(std::memory_order_relaxed),
                          std::memory_order_relaxed);
  }

 private:
  struct Counters {
    std::atomic<std::size_t> in_use{0}, peak{0};
  };
  static Counters& counters() {
    static Counters c;
    return c;
  }
};

}  // namespace ldm
