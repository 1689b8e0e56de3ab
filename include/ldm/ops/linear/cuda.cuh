#pragma once
// Linear layers on the device: the host's contract (linear/host.hpp) over cuda views, through the
// cuBLAS GEMM. Every leading axis of the input is a row of one GEMM.

#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/cuda_executor.cuh"
#include "ldm/ops/gemm/column_sums.cuh"
#include "ldm/ops/gemm/cuda.cuh"
#include "ldm/ops/linear/host.hpp"

namespace ldm::ops {

// y = x w^T + bias.
template <class T, ShapeType SX, index_t Out, index_t In, ShapeType SY>
void linear_forward(View<const T, SX, ldm::cuda> x, View<const T, Shape<Out, In>, ldm::cuda> w,
                    View<const T, Shape<Out>, ldm::cuda> bias, View<T, SY, ldm::cuda> y) {
  constexpr index_t rows = detail::linear_rows<SX, SY, Out, In>();
  y.template reshape<Shape<rows, Out>>() = ldm::broadcast<Shape<rows, Out>, 0>(bias);
  gemm(ldm::cuda{}, Trans::no, Trans::yes, int(rows), int(Out), int(In), T(1), x.data(), w.data(),
       T(1), y.data());
}

// dx = dy w (overwritten).
template <class T, index_t Out, index_t In, ShapeType SY, ShapeType SX>
void linear_backward_input(View<const T, Shape<Out, In>, ldm::cuda> w,
                           View<const T, SY, ldm::cuda> dy, View<T, SX, ldm::cuda> dx) {
  constexpr index_t rows = detail::linear_rows<SX, SY, Out, In>();
  gemm(ldm::cuda{}, Trans::no, Trans::no, int(rows), int(In), int(Out), T(1), dy.data(), w.data(),
       T(0), dx.data());
}

// dw += dy^T x, db += the sum of dy over every leading axis.
template <class T, ShapeType SX, ShapeType SY, index_t Out, index_t In>
void linear_backward_params(View<const T, SX, ldm::cuda> x, View<const T, SY, ldm::cuda> dy,
                            View<T, Shape<Out, In>, ldm::cuda> dw,
                            View<T, Shape<Out>, ldm::cuda> db) {
  constexpr index_t rows = detail::linear_rows<SX, SY, Out, In>();
  gemm(ldm::cuda{}, Trans::yes, Trans::no, int(Out), int(In), int(rows), T(1), dy.data(), x.data(),
       T(1), dw.data());
  detail::add_column_sums(ldm::cuda{}, dy.data(), rows, Out, db.data());
}

}  // namespace ldm::ops
