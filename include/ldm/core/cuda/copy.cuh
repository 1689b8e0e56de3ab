#pragma once
// Copies between the host and the device, in ldm's stream order. Copies to the host wait for the
// stream (the caller reads the data next); copies to the device do not (the source is host memory
// the caller keeps alive, and cudaMemcpyAsync from pageable memory returns once it is staged).

#include <cstddef>

#include <cuda_runtime.h>

#include "ldm/core/cuda/check.cuh"
#include "ldm/core/cuda/device.cuh"
#include "ldm/core/cuda/memory.cuh"
#include "ldm/core/tensor.hpp"

namespace ldm {

namespace cuda_detail {
template <class From, class To>
constexpr cudaMemcpyKind copy_kind() {
  if constexpr (std::is_same_v<From, host> && std::is_same_v<To, cuda>)
    return cudaMemcpyHostToDevice;
  else if constexpr (std::is_same_v<From, cuda> && std::is_same_v<To, host>)
    return cudaMemcpyDeviceToHost;
  else if constexpr (std::is_same_v<From, cuda> && std::is_same_v<To, cuda>)
    return cudaMemcpyDeviceToDevice;
  else
    return cudaMemcpyHostToHost;
}
}  // namespace cuda_detail

// `count` elements from `src` in space From to `dst` in space To.
template <class From, class To, class T>
void copy_elements(const T* src, T* dst, std::size_t count) {
  if (count == 0) return;
  LDM_CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(T), cuda_detail::copy_kind<From, To>(),
                                 cuda_device::stream()));
  if constexpr (std::is_same_v<To, host>) cuda_device::synchronize();
}

// Same element type and shape, any two spaces.
template <class T, ShapeType S, class From, class To>
void copy(View<const T, S, From> src, View<T, S, To> dst) {
  copy_elements<From, To>(src.data(), dst.data(), std::size_t(S::size));
}

template <class T, ShapeType S>
Tensor<T, S, cuda> to_device(View<const T, S, host> src) {
  Tensor<T, S, cuda> out;
  copy<T, S, host, cuda>(src, out.view());
  return out;
}

template <class T, ShapeType S>
Tensor<T, S, host> to_host(View<const T, S, cuda> src) {
  Tensor<T, S, host> out;
  copy<T, S, cuda, host>(src, out.view());
  return out;
}

}  // namespace ldm
