#pragma once
// The scratch memory host ops allocate per call, for the memory plans: what they depend on at
// run time (HostScratch), and the bias gradients' partial sums (ops/gemm/column_sums.hpp), which
// every Linear and Conv2d backward allocates. ops/conv2d_scratch.hpp has the convolutions'.

#include <cstddef>

#include "ldm/core/shape.hpp"
#include "ldm/ops/gemm/column_sums.hpp"

namespace ldm::ops {

// What the host paths choose at run time. The defaults are what a plan assumes unless told: the
// direct convolutions on x86-64 (every x86-64 CPU of the last decade has AVX2 and FMA), and
// up to 64 OpenMP threads (each thread of a direct convolution holds a small band buffer).
struct HostScratch {
  int threads = 64;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  bool direct_conv = true;
#else
  bool direct_conv = false;
#endif
};

// add_column_sums over a [rows, cols] matrix: its double partials.
constexpr std::size_t linear_backward_scratch(index_t rows, index_t cols) {
  if (rows <= 0 || cols <= 0) return 0;
  return sizeof(double) * std::size_t(detail::column_sum_partials(rows, cols));
}

}  // namespace ldm::ops
