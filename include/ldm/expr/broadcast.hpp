#pragma once
// Explicit broadcasting: ldm::broadcast<Target, Axes...>(x) repeats x along the listed axes of
// Target. x's shape must be Target with those axes removed, which is checked at compile time:
//   per-channel vector over NHWC:  broadcast<Shape<N,H,W,C>, 0, 1, 2>(bias)      // bias: Shape<C>
//   per-sample scalar over NHWC:   broadcast<Shape<N,H,W,C>, 1, 2, 3>(scale)     // scale: Shape<N>

#include <type_traits>

#include "ldm/expr/index_map.hpp"
#include "ldm/expr/node.hpp"

namespace ldm::expr {

template <class Target, int... Axes>
constexpr AxisStrides<Target::rank> broadcast_axes() {
  using Source = remove_axes_t<Target, Axes...>;
  AxisStrides<Target::rank> a{};
  int k = 0;
  for (int d = 0; d < Target::rank; ++d) {
    a.extent[d] = Target::extents[d];
    bool repeated = ((d == Axes) || ...);
    a.stride[d] = repeated ? 0 : Source::strides[k++];
  }
  return a;
}

template <class Target, class A, int... Axes>
struct Broadcast {
  static_assert(ShapeType<Target>, "ldm::broadcast: the target must be a Shape<...>");
  static_assert(detail::axes_valid<Target, Axes...>(),
                "ldm::broadcast: each axis must be distinct and inside the target's rank");
  static_assert(std::is_same_v<typename A::shape, remove_axes_t<Target, Axes...>>,
                "ldm::broadcast: the operand's shape must equal the target shape with the "
                "broadcast axes removed (e.g. Shape<C> over Shape<N,H,W,C> along axes 0, 1, 2)");
  static_assert(!contains_reduction_v<A>,
                "ldm::broadcast: materialise a reduction into a tensor before broadcasting it; "
                "broadcasting it directly would recompute the reduction for every element");

  using shape = Target;
  using space = typename A::space;
  using eval_type = typename A::eval_type;
  static constexpr bool is_expression_node = true;

  A a;
  LDM_HD eval_type eval(index_t i) const {
    return a.eval(IndexMap<broadcast_axes<Target, Axes...>()>::map(i));
  }
};

}  // namespace ldm::expr

namespace ldm {

template <class Target, int... Axes, class X>
requires(expr::Operand<X> && !expr::Arithmetic<X>) auto broadcast(const X& x) {
  return expr::Broadcast<Target, expr::node_t<X>, Axes...>{expr::as_node(x)};
}

}  // namespace ldm
