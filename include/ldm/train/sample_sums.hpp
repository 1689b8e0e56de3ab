#pragma once
// Per-sample sums of double partials, for the perceptual terms (LPIPS, SSIM): their passes leave
// one partial per pixel or window position, and each sample's value is the sum of its partials.
// sample_sums(space, partials, samples, count, finish) calls finish(n, the sum of
// partials[n * count, (n + 1) * count)) for each n < samples. On the host each sum runs in index
// order; sample_sums_cuda.cuh gives the device one block per sample and a fixed tree. Neither
// depends on anything but its operands, so every run gives the same bits.

#include "ldm/core/macros.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::train::detail {

template <class Finish>
void sample_sums(host, const double* partials, index_t samples, index_t count,
                 const Finish& finish) {
  const bool parallel = samples * count >= expr::executor<host>::parallel_threshold;
#pragma omp parallel for schedule(static) if (parallel)
  for (index_t n = 0; n < samples; ++n) {
    double total = 0;
    for (index_t i = 0; i < count; ++i)
      total += partials[n * count + i];
    finish(n, total);
  }
}

}  // namespace ldm::train::detail

#if defined(__CUDACC__)
#include "ldm/train/sample_sums_cuda.cuh"
#endif
