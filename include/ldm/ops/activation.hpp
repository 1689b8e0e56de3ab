#pragma once
// SiLU and dropout, elementwise over tensors of any shape and space.
//
// Dropout is torch.nn.Dropout in training: element i is dropped when uniform(seed, offset,
// first + i) < p and the others are scaled by 1 / (1 - p), so the expected output equals the
// input. The mask is a pure function of (seed, offset, first + i): backward draws it again instead
// of storing it, and every backend draws the same one. `first` places a tensor that is part of a
// larger one (a micro-batch of a batch) where the larger one's mask is. Evaluation mode is the
// identity, which callers skip the op for.

#include <cassert>
#include <cstdint>

#include "ldm/core/dtype.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/core/random.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/math.hpp"

namespace ldm::ops {

namespace detail {

// dx = dy * silu'(x). Its own loop, not an expression: an expression of silu_grad would
// evaluate the exponential once per use of it.
template <class T>
struct SiluBackward {
  const T* x;
  const T* dy;
  T* dx;
  LDM_HD void operator()(index_t i) const {
    using V = compute_t<T>;
    dx[i] = T(V(dy[i]) * math::silu_grad(V(x[i])));
  }
};

// out = in * mask / (1 - p), one work item per Philox block of four elements: element i is
// lane (first + i) % 4 of block (first + i) / 4, where a call per element would compute each block
// four times. Work item b is block first / 4 + b.
template <class T>
struct DropoutApply {
  const T* in;
  T* out;
  index_t size;
  float p;
  compute_t<T> scale;
  std::uint64_t seed, offset, first;
  LDM_HD void operator()(index_t item) const {
    const std::uint64_t block = first / 4 + std::uint64_t(item);
    const auto draws = Philox4x32::generate(seed, offset, block);
    for (std::uint64_t lane = 0; lane < 4; ++lane) {
      const std::uint64_t element = 4 * block + lane;
      if (element < first || element >= first + std::uint64_t(size)) continue;
      const auto i = index_t(element - first);
      out[i] = uint_to_open_unit(draws.v[lane]) < p ? T(0) : T(compute_t<T>(in[i]) * scale);
    }
  }
};

// Forward and backward are the same masked scaling.
template <class T, ShapeType S, class Space>
void dropout_apply(View<const T, S, Space> in, float p, std::uint64_t seed, std::uint64_t offset,
                   std::uint64_t first, View<T, S, Space> out) {
  assert(p >= 0 && p <= 1);
  if (p == 0) {
    out = in;
    return;
  }
  using V = compute_t<T>;
  // With p == 1 every element is dropped and the scale is never used.
  const V scale = p < 1 ? V(1) / (V(1) - V(p)) : V(0);
  expr::executor<Space>::for_each(
      index_t((first % 4 + std::uint64_t(S::size) + 3) / 4),
      DropoutApply<T>{in.data(), out.data(), S::size, p, scale, seed, offset, first});
}

}  // namespace detail

// y = x * sigmoid(x).
template <class T, ShapeType S, class Space>
void silu_forward(View<const T, S, Space> x, View<T, S, Space> y) {
  y = ldm::silu(x);
}

// dx = dy * silu'(x).
template <class T, ShapeType S, class Space>
void silu_backward(View<const T, S, Space> x, View<const T, S, Space> dy, View<T, S, Space> dx) {
  expr::executor<Space>::for_each(S::size, detail::SiluBackward<T>{x.data(), dy.data(), dx.data()});
}

// `first`: the element of a larger tensor's mask where x's starts (see this file's header).
template <class T, ShapeType S, class Space>
void dropout_forward(View<const T, S, Space> x, float p, std::uint64_t seed, std::uint64_t offset,
                     View<T, S, Space> y, std::uint64_t first = 0) {
  detail::dropout_apply(x, p, seed, offset, first, y);
}

// dx = dy through the mask forward drew from the same (seed, offset, first).
template <class T, ShapeType S, class Space>
void dropout_backward(View<const T, S, Space> dy, float p, std::uint64_t seed, std::uint64_t offset,
                      View<T, S, Space> dx, std::uint64_t first = 0) {
  detail::dropout_apply(dy, p, seed, offset, first, dx);
}

}  // namespace ldm::ops
