#pragma once
// Device memory: cudaMalloc behind a caching allocator, never managed memory.
//
// Training steps at a fixed batch ask for the same block sizes every step, so freed blocks are
// kept in per-size free lists and handed out again: after the first step a step allocates
// nothing from the driver. All work runs on ldm's one stream, so a block freed by the host may
// be reused at once: whatever used it before is queued ahead of whatever uses it next. When the
// driver is out of memory, the cache is returned to it and the allocation retried once.

#include <cstddef>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include <cuda_runtime.h>

#include "ldm/core/cuda/check.cuh"
#include "ldm/core/cuda/device.cuh"
#include "ldm/core/space.hpp"

namespace ldm {

namespace cuda_detail {

struct MemoryStats {
  std::size_t in_use = 0;       // bytes handed out and not yet released
  std::size_t peak_in_use = 0;  // the most in_use has been since the last reset
  std::size_t cached = 0;       // bytes held in free lists
  std::size_t driver_allocations = 0;
};

class CachingAllocator {
 public:
  // 512-byte granules: every block is aligned for any vector access, and sizes that differ by a
  // few bytes share a free list.
  static constexpr std::size_t granule = 512;

  static CachingAllocator& instance() {
    // Never destroyed: the driver may already be unloading when static destructors run.
    static CachingAllocator* allocator = new CachingAllocator;
    return *allocator;
  }

  void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    const std::size_t size = (bytes + granule - 1) / granule * granule;
    std::lock_guard lock(mutex_);
    void* p = nullptr;
    if (auto it = free_.find(size); it != free_.end() && !it->second.empty()) {
      p = it->second.back();
      it->second.pop_back();
      stats_.cached -= size;
    } else {
      p = allocate_from_driver(size);
    }
    sizes_[p] = size;
    stats_.in_use += size;
    if (stats_.in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.in_use;
    return p;
  }

  void release(void* p) noexcept {
    if (!p) return;
    std::lock_guard lock(mutex_);
    auto it = sizes_.find(p);
    if (it == sizes_.end()) return;  // not ours: a bug elsewhere, but never a double free here
    const std::size_t size = it->second;
    sizes_.erase(it);
    stats_.in_use -= size;
    stats_.cached += size;
    free_[size].push_back(p);
  }

  // Gives every cached block back to the driver (e.g. before handing the GPU to another library).
  void empty_cache() {
    std::lock_guard lock(mutex_);
    release_cache();
  }

  MemoryStats stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard lock(mutex_);
    stats_.peak_in_use = stats_.in_use;
  }

 private:
  void* allocate_from_driver(std::size_t size) {
    void* p = nullptr;
    cudaError_t status = cudaMalloc(&p, size);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      release_cache();
      status = cudaMalloc(&p, size);
    }
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      throw std::bad_alloc();
    }
    cuda_detail::check(status, "cudaMalloc", __FILE__, __LINE__);
    ++stats_.driver_allocations;
    return p;
  }

  void release_cache() {
    // Blocks may still be in use by queued work until the stream drains.
    LDM_CUDA_CHECK(cudaStreamSynchronize(cuda_device::stream()));
    for (auto& [size, blocks] : free_)
      for (void* p : blocks)
        LDM_CUDA_CHECK(cudaFree(p));
    free_.clear();
    stats_.cached = 0;
  }

  mutable std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;
  std::unordered_map<void*, std::size_t> sizes_;
  MemoryStats stats_;
};

}  // namespace cuda_detail

template <>
struct memory<cuda> {
  static constexpr std::size_t alignment = cuda_detail::CachingAllocator::granule;

  static void* allocate(std::size_t bytes) {
    return cuda_detail::CachingAllocator::instance().allocate(bytes);
  }
  static void release(void* p) noexcept { cuda_detail::CachingAllocator::instance().release(p); }
  static void fill_bytes(void* p, unsigned char value, std::size_t bytes) {
    if (bytes) LDM_CUDA_CHECK(cudaMemsetAsync(p, value, bytes, cuda_device::stream()));
  }
  static void zero(void* p, std::size_t bytes) { fill_bytes(p, 0, bytes); }
};

namespace cuda_device {
inline cuda_detail::MemoryStats memory_stats() {
  return cuda_detail::CachingAllocator::instance().stats();
}
inline void reset_peak_memory() {
  cuda_detail::CachingAllocator::instance().reset_peak();
}
inline void empty_cache() {
  cuda_detail::CachingAllocator::instance().empty_cache();
}
}  // namespace cuda_device

}  // namespace ldm
