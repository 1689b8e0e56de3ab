#pragma once
// The row softmax of attention and its backward on the host (the rest of attention is written
// once, in ops/attention.hpp). Rows are independent, so the loop runs over all N * Heads * L of
// them: (n, head) pairs alone can be fewer than the threads (the autoencoder's attention has a
// single head).

#include "ldm/core/space.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/math.hpp"

namespace ldm::ops {

namespace detail {

template <class T, class F>
void for_each_attention_row(T* rows, index_t count, index_t length, const F& f) {
  [[maybe_unused]] const bool parallel = count * length >= expr::executor<host>::parallel_threshold;
#pragma omp parallel for schedule(static) if (parallel)
  for (index_t r = 0; r < count; ++r)
    f(rows + r * length);
}

}  // namespace detail

// Softmax of each of `count` rows of `length` scores, in place, with the row maximum subtracted so
// that large logits cannot overflow exp; the sum accumulates in double so that a float row of many
// positions still sums to one.
template <class T>
void softmax_rows(host, T* scores, index_t count, index_t length) {
  detail::for_each_attention_row(scores, count, length, [length](T* row) {
    T top = row[0];
    for (index_t j = 1; j < length; ++j)
      top = math::max(top, row[j]);
    double total = 0;
    for (index_t j = 0; j < length; ++j) {
      row[j] = math::exp(row[j] - top);
      total += row[j];
    }
    const T inverse = T(1 / total);
    for (index_t j = 0; j < length; ++j)
      row[j] *= inverse;
  });
}

// dscores = probs * (dscores - rowsum(probs * dscores)), in place, the row sum in double.
template <class T>
void softmax_backward_rows(host, const T* probs, T* dscores, index_t count, index_t length) {
  detail::for_each_attention_row(dscores, count, length, [=](T* drow) {
    const T* prow = probs + (drow - dscores);  // the two share a layout
    double weighted = 0;
    for (index_t j = 0; j < length; ++j)
      weighted += double(prow[j]) * double(drow[j]);
    for (index_t j = 0; j < length; ++j)
      drow[j] = prow[j] * (drow[j] - T(weighted));
  });
}

}  // namespace ldm::ops
