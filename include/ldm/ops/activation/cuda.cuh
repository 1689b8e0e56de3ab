#pragma once
// SiLU and dropout on the device, with the host's call forms and formulas (host.hpp). Dropout
// draws its mask from the same Philox stream as the host, element i from lane i % 4 of block
// i / 4, so a mask drawn on either side is the same bit for bit.

#include <cassert>
#include <cstdint>

#include "ldm/core/random.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/cuda_executor.cuh"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/math.hpp"

namespace ldm::ops {

template <class T, ShapeType S>
void silu_forward(View<const T, S, cuda> x, View<T, S, cuda> y) {
  y = ldm::silu(x);
}

// The host's formula: s and 1 - s both from exp(-|x|), so 1 - s is never formed by cancellation.
template <class T, ShapeType S>
void silu_backward(View<const T, S, cuda> x, View<const T, S, cuda> dy, View<T, S, cuda> dx) {
  using V = compute_t<T>;
  const T* xp = x.data();
  const T* dyp = dy.data();
  T* dxp = dx.data();
  expr::executor<cuda>::for_each(S::size, [=] __device__(index_t i) {
    const V v = V(xp[i]);
    const V t = math::exp(-math::abs(v));
    const V r = V(1) / (V(1) + t);
    const bool positive = v >= V(0);
    const V s = positive ? r : t * r;
    const V one_minus_s = positive ? t * r : r;
    dxp[i] = T(V(dyp[i]) * s * (V(1) + v * one_minus_s));
  });
}

namespace detail {

// out = in * mask / (1 - p), one thread per Philox block of four elements.
template <class T, ShapeType S>
void dropout_apply(View<const T, S, cuda> in, float p, std::uint64_t seed, std::uint64_t offset,
                   View<T, S, cuda> out) {
  assert(p >= 0 && p <= 1);
  if (p == 0) {
    out = in;
    return;
  }
  using V = compute_t<T>;
  const V scale = p < 1 ? V(1) / (V(1) - V(p)) : V(0);
  const T* inp = in.data();
  T* outp = out.data();
  expr::executor<cuda>::for_each((S::size + 3) / 4, [=] __device__(index_t block) {
    const auto draws = Philox4x32::generate(seed, offset, std::uint64_t(block));
    for (index_t lane = 0; lane < 4 && 4 * block + lane < S::size; ++lane) {
      const index_t i = 4 * block + lane;
      outp[i] = uint_to_open_unit(draws.v[lane]) < p ? T(0) : T(V(inp[i]) * scale);
    }
  });
}

}  // namespace detail

template <class T, ShapeType S>
void dropout_forward(View<const T, S, cuda> x, float p, std::uint64_t seed, std::uint64_t offset,
                     View<T, S, cuda> y) {
  detail::dropout_apply(x, p, seed, offset, y);
}

template <class T, ShapeType S>
void dropout_backward(View<const T, S, cuda> dy, float p, std::uint64_t seed, std::uint64_t offset,
                      View<T, S, cuda> dx) {
  detail::dropout_apply(dy, p, seed, offset, dx);
}

}  // namespace ldm::ops
