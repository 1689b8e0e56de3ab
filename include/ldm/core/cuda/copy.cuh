#pragma once
// Copies with a device end, in ldm's stream order. Copies to the host wait for the stream (the
// caller reads the data next); copies to the device do not (cudaMemcpyAsync from pageable host
// memory returns once the source has been staged, so the caller may reuse it at once).

#include <cstddef>

#include <cuda_runtime.h>

#include "ldm/core/copy.hpp"
#include "ldm/core/cuda/check.cuh"
#include "ldm/core/cuda/device.cuh"
#include "ldm/core/cuda/memory.cuh"

namespace ldm {

namespace cuda_detail {
inline void copy_bytes(const void* src, void* dst, std::size_t count, cudaMemcpyKind kind) {
  if (count == 0) return;
  LDM_CUDA_CHECK(cudaMemcpyAsync(dst, src, count, kind, cuda_device::stream()));
  if (kind == cudaMemcpyDeviceToHost) cuda_device::synchronize();
}
}  // namespace cuda_detail

template <>
struct transfer<host, cuda> {
  static void bytes(const void* src, void* dst, std::size_t count) {
    cuda_detail::copy_bytes(src, dst, count, cudaMemcpyHostToDevice);
  }
};
template <>
struct transfer<cuda, host> {
  static void bytes(const void* src, void* dst, std::size_t count) {
    cuda_detail::copy_bytes(src, dst, count, cudaMemcpyDeviceToHost);
  }
};
template <>
struct transfer<cuda, cuda> {
  static void bytes(const void* src, void* dst, std::size_t count) {
    cuda_detail::copy_bytes(src, dst, count, cudaMemcpyDeviceToDevice);
  }
};

template <class T, ShapeType S>
Tensor<T, S, cuda> to_device(View<const T, S, host> src) {
  Tensor<T, S, cuda> out;
  copy<T, S, host, cuda>(src, out.view());
  return out;
}

}  // namespace ldm
