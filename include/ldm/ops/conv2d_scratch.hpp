#pragma once
// The host scratch memory of one conv2d call, in bytes, at compile time: what ops/conv2d/host.hpp
// allocates inside conv2d_forward, conv2d_backward_input and conv2d_backward_params besides its
// arguments (the GEMM path's column matrix, bounded by kWorkspaceBytes; the direct path's
// packed weights, per-thread band buffers and partial weight gradients; the bias gradient's
// double partials). The memory plans (models/memory_plan.hpp) add these up through the modules.
//
// This mirrors the allocations of the host implementation as it stands; which path runs is
// decided at run time (the CPU's vector instructions, the OpenMP thread count), so both come in as
// a HostScratch. A CUDA model's convolutions allocate their own column buffers on the device, which
// this does not describe.

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "ldm/core/shape.hpp"
#include "ldm/ops/conv2d.hpp"
#include "ldm/ops/conv2d/direct_bands.hpp"
#include "ldm/ops/host_scratch.hpp"

namespace ldm::ops {

namespace scratch_detail {

template <class G, class T, index_t N, index_t H, index_t W, index_t Ci, index_t Co>
struct Conv {
  static constexpr index_t ho = G::out_h(H), wo = G::out_w(W);
  static constexpr index_t k = G::kh * G::kw * Ci, m = N * ho * wo;
  // The GEMM path's column matrix, in chunks of rows of at most 4 MiB.
  static constexpr std::size_t columns =
      sizeof(T) *
      std::size_t(std::clamp<index_t>(index_t((std::size_t(4) << 20) / (sizeof(T) * k)), 1, m)) *
      std::size_t(k);
  // The direct path (float, a window to slide), as ops/conv2d/direct_bands.hpp splits it; the
  // packed weights counted at 16-float vectors, the widest instruction set's.
  static constexpr bool direct_possible = std::is_same_v<T, float> && !G::pointwise;
  static constexpr detail::direct::Bands bands{detail::direct::Problem{
      N, H, W, Ci, Co, G::kh, G::kw, G::stride, G::pad_top, G::pad_left, G::pad_right, ho, wo}};
  static constexpr std::size_t direct_forward(int threads) {
    return sizeof(float) * (std::size_t(bands.ld * k + bands.ld) +
                            std::size_t(threads) * std::size_t(bands.buffer_floats));
  }
  static constexpr std::size_t direct_weights(int threads) {
    return sizeof(float) * (std::size_t(bands.weight_groups() * k * bands.ld) +
                            std::size_t(threads) * std::size_t(bands.buffer_floats));
  }
  static constexpr bool direct(const HostScratch& host) {
    return direct_possible && host.direct_conv;
  }

  static constexpr std::size_t forward(const HostScratch& host) {
    if constexpr (G::pointwise)
      return 0;
    else
      return direct(host) ? direct_forward(host.threads) : columns;
  }
  static constexpr std::size_t backward_input(const HostScratch& host) {
    if constexpr (G::pointwise) {
      return 0;
    } else if constexpr (G::stride == 1 && Ci >= 8 && G::pad_top < G::kh && G::pad_bottom < G::kh &&
                         G::pad_left < G::kw && G::pad_right < G::kw) {
      // The input gradient as a forward convolution of dy with the flipped kernel.
      using Flipped =
          Conv2dGeometry<G::kh, G::kw, 1, G::kh - 1 - G::pad_top, G::kh - 1 - G::pad_bottom,
                         G::kw - 1 - G::pad_left, G::kw - 1 - G::pad_right>;
      return sizeof(T) * std::size_t(Ci * G::kh * G::kw * Co + Ci) +
             Conv<Flipped, T, N, ho, wo, Co, Ci>::forward(host);
    } else {
      return columns;
    }
  }
  static constexpr std::size_t backward_params(const HostScratch& host) {
    const std::size_t sums = linear_backward_scratch(m, Co);
    if (direct(host)) return std::max(sums, direct_weights(host.threads));
    return (G::pointwise ? 0 : columns) + sums;
  }
};

}  // namespace scratch_detail

// The most host scratch memory a convolution of geometry G over Shape<N, H, W, Ci> to Co channels
// allocates in its forward pass, and in its backward pass (parameters, then input).
struct ConvScratch {
  std::size_t forward = 0, backward = 0;
};

template <class G, class T, index_t N, index_t H, index_t W, index_t Ci, index_t Co>
constexpr ConvScratch conv2d_host_scratch(const HostScratch& host) {
  using C = scratch_detail::Conv<G, T, N, H, W, Ci, Co>;
  return {C::forward(host), std::max(C::backward_params(host), C::backward_input(host))};
}

}  // namespace ldm::ops
