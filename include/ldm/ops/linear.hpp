#pragma once
// Linear layers on any space: y = x w^T + bias over the last axis of an input of any rank, with w
// of shape [Out, In] as in PyTorch. Every leading axis is a row of one GEMM, so a batch of tokens
// Shape<N, L, In> and a batch of vectors Shape<N, In> take the same path.

#include <climits>

#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/ops/gemm.hpp"
#include "ldm/ops/gemm/column_sums.hpp"

namespace ldm::ops {

namespace detail {

template <ShapeType S>
inline constexpr index_t last_extent = S::extents[S::rank - 1];

// Whether two shapes agree on every axis but the last.
template <ShapeType A, ShapeType B>
constexpr bool same_leading_extents() {
  if constexpr (A::rank != B::rank) {
    return false;
  } else {
    for (int d = 0; d + 1 < A::rank; ++d)
      if (A::extents[d] != B::extents[d]) return false;
    return true;
  }
}

// Checks an input of shape SX against [Out, In] weights and an output of shape SY; the number of
// GEMM rows.
template <ShapeType SX, ShapeType SY, index_t Out, index_t In>
constexpr index_t linear_rows() {
  static_assert(last_extent<SX> == In,
                "ldm::ops::linear: x's last extent must equal the weight's In (w is [Out, In])");
  static_assert(last_extent<SY> == Out,
                "ldm::ops::linear: y's last extent must equal the weight's Out (w is [Out, In])");
  static_assert(same_leading_extents<SX, SY>(),
                "ldm::ops::linear: x and y must agree on every axis but the last");
  static_assert(SX::size / In <= INT_MAX && In <= INT_MAX && Out <= INT_MAX,
                "ldm::ops::linear: the BLAS takes int dimensions");
  return SX::size / In;
}

}  // namespace detail

// y = x w^T + bias.
template <class T, ShapeType SX, index_t Out, index_t In, ShapeType SY, class Space>
void linear_forward(View<const T, SX, Space> x, View<const T, Shape<Out, In>, Space> w,
                    View<const T, Shape<Out>, Space> bias, View<T, SY, Space> y) {
  constexpr index_t rows = detail::linear_rows<SX, SY, Out, In>();
  y.template reshape<Shape<rows, Out>>() = ldm::broadcast<Shape<rows, Out>, 0>(bias);
  gemm(Space{}, Trans::no, Trans::yes, int(rows), int(Out), int(In), T(1), x.data(), w.data(), T(1),
       y.data());
}

/// y = x w^T, the linear layer without a bias (diffusers' attention projections to_q/to_k/to_v).
template <class T, ShapeType SX, index_t Out, index_t In, ShapeType SY, class Space>
void linear_forward(View<const T, SX, Space> x, View<const T, Shape<Out, In>, Space> w,
                    View<T, SY, Space> y) {
  constexpr index_t rows = detail::linear_rows<SX, SY, Out, In>();
  gemm(Space{}, Trans::no, Trans::yes, int(rows), int(Out), int(In), T(1), x.data(), w.data(), T(0),
       y.data());
}

// dx = dy w (overwritten).
template <class T, index_t Out, index_t In, ShapeType SY, ShapeType SX, class Space>
void linear_backward_input(View<const T, Shape<Out, In>, Space> w, View<const T, SY, Space> dy,
                           View<T, SX, Space> dx) {
  constexpr index_t rows = detail::linear_rows<SX, SY, Out, In>();
  gemm(Space{}, Trans::no, Trans::no, int(rows), int(In), int(Out), T(1), dy.data(), w.data(), T(0),
       dx.data());
}

/// dw += dy^T x: the weight gradient alone, for a linear layer without a bias.
template <class T, ShapeType SX, ShapeType SY, index_t Out, index_t In, class Space>
void linear_backward_weight(View<const T, SX, Space> x, View<const T, SY, Space> dy,
                            View<T, Shape<Out, In>, Space> dw) {
  constexpr index_t rows = detail::linear_rows<SX, SY, Out, In>();
  gemm(Space{}, Trans::yes, Trans::no, int(Out), int(In), int(rows), T(1), dy.data(), x.data(),
       T(1), dw.data());
}

// dw += dy^T x, db += the sum of dy over every leading axis.
template <class T, ShapeType SX, ShapeType SY, index_t Out, index_t In, class Space>
void linear_backward_params(View<const T, SX, Space> x, View<const T, SY, Space> dy,
                            View<T, Shape<Out, In>, Space> dw, View<T, Shape<Out>, Space> db) {
  linear_backward_weight(x, dy, dw);
  add_column_sums(Space{}, dy.data(), detail::linear_rows<SX, SY, Out, In>(), Out, db.data());
}

}  // namespace ldm::ops
