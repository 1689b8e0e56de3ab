#pragma once
// Memory spaces. A tensor's space is a template parameter, so where data lives is part of its
// type and mixing spaces in one expression is a compile error. `host` is defined here; the CUDA
// backend adds `memory<cuda>` in core/cuda/memory.cuh, which only .cu translation units include.

#include <cstddef>
#include <cstdlib>
#include <new>

namespace ldm {

struct host {};
struct cuda {};

template <class Space>
inline constexpr bool is_space_v = false;
template <>
inline constexpr bool is_space_v<host> = true;
template <>
inline constexpr bool is_space_v<cuda> = true;

// allocate/release raw bytes in a space. Host blocks are 64-byte aligned (a cache line, and the
// widest SIMD load), with the size rounded up as std::aligned_alloc requires.
template <class Space>
struct memory;

template <>
struct memory<host> {
  static constexpr std::size_t alignment = 64;

  static void* allocate(std::size_t bytes) {
    if (bytes == 0) return nullptr;
    std::size_t rounded = (bytes + alignment - 1) / alignment * alignment;
    void* p = std::aligned_alloc(alignment, rounded);
    if (!p) throw std::bad_alloc();
    return p;
  }
  static void release(void* p) noexcept { std::free(p); }
};

}  // namespace ldm
