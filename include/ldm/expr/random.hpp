#pragma once
// Random tensors as expression nodes: x = ldm::randn<Shape<N, H, W, C>>(seed, offset) draws
// element i of the Philox stream (seed, offset) into x[i] inside the one fused loop, on any
// executor. `first` shifts the window: drawing samples [s, s + n) of a longer stream with
// first = s * sample_size gives the same numbers as drawing the whole stream at once.

#include <cstdint>

#include "ldm/core/random.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/expr/node.hpp"

namespace ldm::expr {

template <class S, bool Normal>
struct RandomStream {
  using shape = S;
  using space = any_space;
  using eval_type = float;
  static constexpr bool is_expression_node = true;

  std::uint64_t seed, offset, first;
  LDM_HD float eval(index_t i) const {
    const auto element = first + static_cast<std::uint64_t>(i);
    return Normal ? normal(seed, offset, element) : uniform(seed, offset, element);
  }
};

}  // namespace ldm::expr

namespace ldm {

// Standard normal draws.
template <ShapeType S>
auto randn(std::uint64_t seed, std::uint64_t offset = 0, std::uint64_t first = 0) {
  return expr::RandomStream<S, true>{seed, offset, first};
}
// Uniform draws in (0, 1).
template <ShapeType S>
auto rand(std::uint64_t seed, std::uint64_t offset = 0, std::uint64_t first = 0) {
  return expr::RandomStream<S, false>{seed, offset, first};
}

}  // namespace ldm
