#pragma once
// The scratch memory host ops allocate per call, for the memory plans: what they depend on at
// run time (HostScratch), and the bias gradients' partial sums (ops/gemm/column_sums.hpp), which
// every Linear and Conv2d backward allocates. ops/conv2d_scratch.hpp has the convolutions'.

#include <algorithm>
#include <cstddef>

#include "ldm/core/shape.hpp"

namespace ldm::ops {

// What the host paths choose at run time. The defaults are what a plan assumes unless told: the
// direct AVX2 convolutions on x86-64 (every x86-64 CPU of the last decade has AVX2 and FMA), and
// up to 64 OpenMP threads (each thread of a direct convolution holds a small band buffer).
struct HostScratch {
  int threads = 64;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  bool direct_conv = true;
#else
  bool direct_conv = false;
#endif
};

// add_column_sums over a [rows, cols] matrix: one double partial per (block of rows, column),
// with the block size of column_sum_block_rows.
constexpr std::size_t linear_backward_scratch(index_t rows, index_t cols) {
  if (rows <= 0 || cols <= 0) return 0;
  const index_t block_rows = std::max<index_t>(64, (rows + 1023) / 1024);
  return sizeof(double) * std::size_t((rows + block_rows - 1) / block_rows * cols);
}

}  // namespace ldm::ops
