#pragma once
// Bias gradients on the device: out[c] += the sum over rows of a row-major a[rows, cols].
//
// Deterministic, with no atomics: rows go in fixed blocks, each (block, column) summed by one
// thread into a partial, then each column's partials are added in block order by one thread. The
// block size depends on the row count alone, so the result is the same on every run and GPU.
// Sums accumulate in double, as the host's do.

#include <algorithm>

#include "ldm/core/buffer.hpp"
#include "ldm/core/cuda/memory.cuh"
#include "ldm/core/macros.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/cuda_executor.cuh"

namespace ldm::ops::detail {

// Rows per partial: at least 64 (enough work per thread), and at most 1024 partials per column
// so the second pass, one thread per column, stays short.
inline index_t column_sum_block_rows(index_t rows) {
  return std::max<index_t>(64, (rows + 1023) / 1024);
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

template <class T>
void add_column_sums(ldm::cuda, const T* a, index_t rows, index_t cols, T* out) {
  if (rows <= 0 || cols <= 0) return;
  const index_t block_rows = column_sum_block_rows(rows);
  const index_t blocks = (rows + block_rows - 1) / block_rows;
  Buffer<double, ldm::cuda> partial(std::size_t(blocks * cols));
  expr::executor<ldm::cuda>::for_each(
      blocks * cols, ColumnPartialSums<T>{a, partial.data(), rows, cols, block_rows});
  expr::executor<ldm::cuda>::for_each(cols, AddPartialSums<T>{partial.data(), out, blocks, cols});
}

}  // namespace ldm::ops::detail
