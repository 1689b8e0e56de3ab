#pragma once
// The host executor: one OpenMP-parallel loop per assignment, static schedule, with an explicit
// simd hint so that the inlined evaluator vectorises. Small loops run serially: starting a
// parallel region costs more than a few thousand elements.

#include <vector>

#include "ldm/core/macros.hpp"
#include "ldm/core/space.hpp"
#include "ldm/expr/executor.hpp"

namespace ldm::expr {

template <>
struct executor<host> {
  static constexpr index_t parallel_threshold = 1 << 15;
  // Reductions combine fixed-size blocks in a fixed order, so the result does not depend on the
  // number of threads.
  static constexpr index_t reduce_block = 1 << 12;

  template <class F>
  static void for_each(index_t n, const F& f) {
    if (n < parallel_threshold) {
#pragma omp simd
      for (index_t i = 0; i < n; ++i)
        f(i);
      return;
    }
#pragma omp parallel for simd schedule(static)
    for (index_t i = 0; i < n; ++i)
      f(i);
  }

  template <class Acc, class Read, class Combine>
  static Acc reduce(index_t n, Acc identity, const Read& read, const Combine& combine) {
    const index_t blocks = (n + reduce_block - 1) / reduce_block;
    std::vector<Acc> partial(static_cast<std::size_t>(blocks), identity);
#pragma omp parallel for schedule(static) if (n >= parallel_threshold)
    for (index_t b = 0; b < blocks; ++b) {
      Acc acc = identity;
      const index_t end = (b + 1) * reduce_block < n ? (b + 1) * reduce_block : n;
      for (index_t i = b * reduce_block; i < end; ++i)
        acc = combine(acc, read(i));
      partial[static_cast<std::size_t>(b)] = acc;
    }
    Acc total = identity;
    for (const Acc& p : partial)
      total = combine(total, p);
    return total;
  }
};

}  // namespace ldm::expr
