#pragma once
// Embedding as PyTorch's nn.Embedding: row `label` of a [Count, Dim] table (the UNet's class
// conditioning). PyTorch initialises it from N(0, 1).

#include <cstdint>

#include "ldm/core/error.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"

namespace ldm::nn {

namespace detail {

// The kernels' functors live at namespace scope: nvcc refuses a class's private types as a
// __global__ function's template arguments.
template <class T, index_t Dim>
struct EmbeddingGather {
  const std::int32_t* labels;
  const T* table;
  T* y;
  LDM_HD void operator()(index_t i) const { y[i] = table[labels[i / Dim] * Dim + i % Dim]; }
};
template <class T, index_t Dim, index_t N>
struct EmbeddingScatterAdd {
  const std::int32_t* labels;
  const T* dy;
  T* grad;
  LDM_HD void operator()(index_t i) const {
    const index_t row = i / Dim, d = i % Dim;
    T total = grad[i];
    for (index_t n = 0; n < N; ++n)
      if (labels[n] == row) total += dy[n * Dim + d];
    grad[i] = total;
  }
};

}  // namespace detail

template <class T, class Space, index_t Count, index_t Dim>
class Embedding {
 public:
  using value_type = T;
  static constexpr index_t parameter_count = Count * Dim;
  template <index_t N>
  using Saved = NoSaved;

  explicit Embedding(ParameterBinder<T, Space> b)
      : weight(b.template take<Shape<Count, Dim>>("weight", {Count, Dim}, Layout::same,
                                                  Init::normal, 1)) {}

  // Labels come from data files, so an out-of-range label is bad input, not a bug.
  template <index_t N>
  void forward(View<const std::int32_t, Shape<N>, Space> labels, const Saved<N>&,
               View<T, Shape<N, Dim>, Space> y, const Mode& = inference) const {
    const std::int32_t lowest = min(labels), highest = max(labels);
    if (lowest < 0 || highest >= Count)
      fail_expected("class labels", "0 <= label < " + std::to_string(Count),
                    "labels from " + std::to_string(lowest) + " to " + std::to_string(highest));
    expr::executor<Space>::for_each(
        N * Dim, detail::EmbeddingGather<T, Dim>{labels.data(), weight.value.data(), y.data()});
  }

  // Accumulates into the rows that were used (labels get no gradient). Each row sums its samples
  // in order, so there are no write conflicts between samples that share a label and the result
  // is deterministic.
  template <index_t N>
  void backward(View<const std::int32_t, Shape<N>, Space> labels, const Saved<N>&,
                View<const T, Shape<N, Dim>, Space> dy) const {
    expr::executor<Space>::for_each(Count * Dim, detail::EmbeddingScatterAdd<T, Dim, N>{
                                                     labels.data(), dy.data(), weight.grad.data()});
  }

  Param<T, Shape<Count, Dim>, Space> weight;
};

}  // namespace ldm::nn
