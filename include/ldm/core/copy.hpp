#pragma once
/// @file
/// Copies between memory spaces, for code written once over a Space parameter: copy_elements
/// <From, To>(src, dst, count). Host to host is here; the CUDA backend (core/cuda/copy.cuh, in .cu
/// units) adds the pairs with a device end, in ldm's stream order.

#include <cstddef>
#include <cstring>
#include <vector>

#include "ldm/core/space.hpp"
#include "ldm/core/tensor.hpp"

namespace ldm {

/// Raw byte copies from space From to space To (the CUDA backend adds the pairs with a device
/// end).
template <class From, class To>
struct transfer;

/// Host to host: memcpy.
template <>
struct transfer<host, host> {
  /// Copies `count` bytes from `src` to `dst` (which must not overlap).
  static void bytes(const void* src, void* dst, std::size_t count) {
    if (count) std::memcpy(dst, src, count);
  }
};

/// `count` elements from `src` in space From to `dst` in space To. A copy to the host has
/// finished when this returns.
template <class From, class To, class T>
void copy_elements(const T* src, T* dst, std::size_t count) {
  transfer<From, To>::bytes(src, dst, count * sizeof(T));
}

/// Copies a view's elements into another of the same element type and shape, in any two spaces.
template <class T, ShapeType S, class From, class To>
void copy(View<const T, S, From> src, View<T, S, To> dst) {
  copy_elements<From, To>(src.data(), dst.data(), std::size_t(S::size));
}

/// `count` elements at `src` in space From, as a host vector (e.g. a flat buffer for a file).
template <class From, class T>
std::vector<T> host_vector(const T* src, std::size_t count) {
  std::vector<T> out(count);
  copy_elements<From, host>(src, out.data(), count);
  return out;
}

/// A host copy of a view in any space.
template <class T, ShapeType S, class From>
Tensor<T, S, host> to_host(View<const T, S, From> src) {
  Tensor<T, S, host> out;
  copy<T, S, From, host>(src, out.view());
  return out;
}

}  // namespace ldm

// A .cu unit also gets the pairs with a device end.
#if defined(__CUDACC__)
#include "ldm/core/cuda/copy.cuh"
#endif
