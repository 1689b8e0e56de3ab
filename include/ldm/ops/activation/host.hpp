#pragma once
// SiLU and dropout on the host, elementwise over tensors of any shape.
//
// Dropout is torch.nn.Dropout in training: element i is dropped when uniform(seed, offset, i) < p
// and the others are scaled by 1 / (1 - p), so the expected output equals the input. The mask is a
// pure function of (seed, offset, i): backward draws it again instead of storing it, and the CUDA
// backend draws the same one. Evaluation mode is the identity, which callers skip the op for.

#include <cassert>
#include <cstdint>

#include "ldm/core/random.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/math.hpp"

namespace ldm::ops {

// y = x * sigmoid(x).
template <class T, ShapeType S>
void silu_forward(View<const T, S> x, View<T, S> y) {
  y = ldm::silu(x);
}

// dx = dy * s * (1 + x * (1 - s)) with s = sigmoid(x).
template <class T, ShapeType S>
void silu_backward(View<const T, S> x, View<const T, S> dy, View<T, S> dx) {
  const T* xp = x.data();
  const T* dyp = dy.data();
  T* dxp = dx.data();
  // s and 1 - s both come from t = exp(-|x|), which cannot overflow, so 1 - s is never formed
  // by cancellation (in float that loses most digits of x * (1 - s) where s is near 1). A loop of
  // our own, as an expression would evaluate the exponential twice.
  expr::executor<host>::for_each(S::size, [=](index_t i) {
    const T t = math::exp(-math::abs(xp[i]));
    const T r = T(1) / (T(1) + t);
    const bool positive = xp[i] >= T(0);
    const T s = positive ? r : t * r;
    const T one_minus_s = positive ? t * r : r;
    dxp[i] = dyp[i] * s * (T(1) + xp[i] * one_minus_s);
  });
}

namespace detail {

// out = in * mask / (1 - p): forward and backward are the same masked scaling.
template <class T, ShapeType S>
void dropout_apply(View<const T, S> in, float p, std::uint64_t seed, std::uint64_t offset,
                   View<T, S> out) {
  assert(p >= 0 && p <= 1);
  if (p == 0) {
    out = in;
    return;
  }
  // With p == 1 every element is dropped and the scale is never used.
  const T scale = p < 1 ? T(1) / (T(1) - T(p)) : T(0);
  const T* inp = in.data();
  T* outp = out.data();
  // ldm::uniform(seed, offset, i) is lane i % 4 of Philox block i / 4: one block serves four
  // consecutive elements, where a call per element would compute each block four times.
  expr::executor<host>::for_each((S::size + 3) / 4, [=](index_t block) {
    const auto draws = Philox4x32::generate(seed, offset, std::uint64_t(block));
    for (index_t lane = 0; lane < 4 && 4 * block + lane < S::size; ++lane) {
      const index_t i = 4 * block + lane;
      outp[i] = uint_to_open_unit(draws.v[lane]) < p ? T(0) : inp[i] * scale;
    }
  });
}

}  // namespace detail

template <class T, ShapeType S>
void dropout_forward(View<const T, S> x, float p, std::uint64_t seed, std::uint64_t offset,
                     View<T, S> y) {
  detail::dropout_apply(x, p, seed, offset, y);
}

// dx = dy through the mask forward drew from the same (seed, offset).
template <class T, ShapeType S>
void dropout_backward(View<const T, S> dy, float p, std::uint64_t seed, std::uint64_t offset,
                      View<T, S> dx) {
  detail::dropout_apply(dy, p, seed, offset, dx);
}

}  // namespace ldm::ops
