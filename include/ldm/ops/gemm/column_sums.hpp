#pragma once
// Bias gradients: out[c] += the sum over rows of a row-major a[rows, cols], on any space.
//
// Deterministic, with no atomics: rows go in fixed blocks, each (block, column) summed by one
// work item into a double partial, then each column's partials are added in block order. The
// block size depends on the row count alone, so the result is the same on every run, thread
// count and GPU. Consecutive work items are consecutive columns, so a warp (or the host's SIMD
// lanes) reads consecutive addresses.

#include <algorithm>

#include "ldm/core/buffer.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::ops {

namespace detail {

// Rows per partial: at least 64 (enough work per item), and at most 1024 partials per column
// so the second pass, one item per column, stays short.
constexpr index_t column_sum_block_rows(index_t rows) {
  return std::max<index_t>(64, (rows + 1023) / 1024);
}

// The double partials of a [rows, cols] matrix: one per (block of rows, column).
constexpr index_t column_sum_partials(index_t rows, index_t cols) {
  return (rows + column_sum_block_rows(rows) - 1) / column_sum_block_rows(rows) * cols;
}

template <class T>
struct ColumnPartialSums {
  const T* a;
  double* partial;  // [blocks, cols]
  index_t rows, cols, block_rows;
  LDM_HD void operator()(index_t i) const {
    const index_t block = i / cols, c = i % cols;
    const index_t begin = block * block_rows;
    const index_t end = begin + block_rows < rows ? begin + block_rows : rows;
    double acc = 0;
    for (index_t r = begin; r < end; ++r)
      acc += double(a[r * cols + c]);
    partial[i] = acc;
  }
};

template <class T>
struct AddPartialSums {
  const double* partial;
  T* out;
  index_t blocks, cols;
  LDM_HD void operator()(index_t c) const {
    double total = 0;
    for (index_t b = 0; b < blocks; ++b)
      total += partial[b * cols + c];
    out[c] = T(double(out[c]) + total);
  }
};

}  // namespace detail

template <class Space, class T>
void add_column_sums(Space, const T* a, index_t rows, index_t cols, T* out) {
  if (rows <= 0 || cols <= 0) return;
  const index_t block_rows = detail::column_sum_block_rows(rows);
  const index_t blocks = (rows + block_rows - 1) / block_rows;
  Buffer<double, Space> partial(std::size_t(detail::column_sum_partials(rows, cols)));
  expr::executor<Space>::for_each(
      blocks * cols, detail::ColumnPartialSums<T>{a, partial.data(), rows, cols, block_rows});
  expr::executor<Space>::for_each(cols,
                                  detail::AddPartialSums<T>{partial.data(), out, blocks, cols});
}

/// The host's add_column_sums: the same partials added in the same order (so the same bits), but
/// each block's rows are read whole, all columns at once, and the blocks are shared among the
/// threads. One work item per (block, column), as on a GPU, reads a column down a block on one
/// thread: below the executor's parallel threshold for a batch's bias gradient, and one float of
/// each cache line it touches.
template <class T>
void add_column_sums(host, const T* a, index_t rows, index_t cols, T* out) {
  if (rows <= 0 || cols <= 0) return;
  const index_t block_rows = detail::column_sum_block_rows(rows);
  const index_t blocks = (rows + block_rows - 1) / block_rows;
  Buffer<double, host> partial(std::size_t(detail::column_sum_partials(rows, cols)));
  double* const sums = partial.data();
#pragma omp parallel for schedule(static) if (rows * cols >= \
                                              expr::executor <host>::parallel_threshold)
  for (index_t b = 0; b < blocks; ++b) {
    double* const acc = sums + b * cols;  // zero: Buffer's memory starts zeroed
    const index_t end = std::min(rows, (b + 1) * block_rows);
    for (index_t r = b * block_rows; r < end; ++r) {
      const T* const row = a + r * cols;
#pragma omp simd
      for (index_t c = 0; c < cols; ++c)
        acc[c] += double(row[c]);
    }
  }
  // The blocks' partials in block order, into the first block's (0 + p0 is p0 exactly).
  for (index_t b = 1; b < blocks; ++b) {
    const double* const p = sums + b * cols;
#pragma omp simd
    for (index_t c = 0; c < cols; ++c)
      sums[c] += p[c];
  }
  for (index_t c = 0; c < cols; ++c)
    out[c] = T(double(out[c]) + sums[c]);
}

}  // namespace ldm::ops
