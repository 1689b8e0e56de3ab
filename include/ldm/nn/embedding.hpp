#pragma once
// Embedding as PyTorch's nn.Embedding: row `label` of a [Count, Dim] table (the UNet's class
// conditioning). PyTorch initialises it from N(0, 1).

#include <cstdint>

#include "ldm/core/error.hpp"
#include "ldm/nn/parameters.hpp"

namespace ldm::nn {

template <class T, class Space, index_t Count, index_t Dim>
class Embedding {
 public:
  using value_type = T;
  static constexpr index_t parameter_count = Count * Dim;

  explicit Embedding(ParameterBinder<T, Space> b)
      : weight(b.template take<Shape<Count, Dim>>("weight", {Count, Dim}, Layout::same,
                                                  Init::normal, 1)) {}

  // Labels come from data files, so an out-of-range label is bad input, not a bug.
  template <index_t N>
  void forward(View<const std::int32_t, Shape<N>, Space> labels,
               View<T, Shape<N, Dim>, Space> y) const {
    for (index_t n = 0; n < N; ++n) {
      const std::int32_t label = labels[n];
      if (label < 0 || label >= Count)
        fail_expected("class label of sample " + std::to_string(n),
                      "0 <= label < " + std::to_string(Count), label);
      for (index_t d = 0; d < Dim; ++d)
        y(n, d) = weight.value(label, d);
    }
  }

  // Accumulates into the rows that were used.
  template <index_t N>
  void backward(View<const std::int32_t, Shape<N>, Space> labels,
                View<const T, Shape<N, Dim>, Space> dy) const {
    for (index_t n = 0; n < N; ++n)
      for (index_t d = 0; d < Dim; ++d)
        weight.grad(labels[n], d) += dy(n, d);
  }

  Param<T, Shape<Count, Dim>, Space> weight;
};

}  // namespace ldm::nn
