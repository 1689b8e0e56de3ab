#pragma once
// Reductions over chosen axes, as nodes: sum<0, 1, 2>(x) over an NHWC x has shape Shape<C>, and
// each output element reduces its slice when evaluated, so `mean = sum<0,1,2>(x) / n` is one pass.
// Reductions over everything (sum(x), mean(x), max(x)) return a value; they run on the executor of
// the operand's space (ldm/expr/assign.hpp).

#include <type_traits>

#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/index_map.hpp"
#include "ldm/expr/math.hpp"
#include "ldm/expr/node.hpp"

namespace ldm::expr {

namespace reducer {
struct sum {
  template <class T>
  LDM_HD static T identity() {
    return T(0);
  }
  template <class T>
  LDM_HD static T combine(T a, T b) {
    return a + b;
  }
};
struct max {
  template <class T>
  LDM_HD static T identity() {
    return -T(INFINITY);
  }
  template <class T>
  LDM_HD static T combine(T a, T b) {
    return math::max(a, b);
  }
};
struct min {
  template <class T>
  LDM_HD static T identity() {
    return T(INFINITY);
  }
  template <class T>
  LDM_HD static T combine(T a, T b) {
    return math::min(a, b);
  }
};
}  // namespace reducer

// Axis reductions (evaluated per output element, inside any executor's loop) accumulate in double
// on the host, the reference the CUDA backend is tested against, and in the value type on the
// device.
template <class T>
#if defined(__CUDA_ARCH__)
using accumulator_t = T;
#else
using accumulator_t = std::conditional_t<std::is_floating_point_v<T>, double, T>;
#endif

// Reductions over everything accumulate in double on every executor. The type must not depend on
// __CUDA_ARCH__: the host pass picks the CUB kernels that the device pass has to compile.
template <class T>
using whole_accumulator_t = std::conditional_t<std::is_floating_point_v<T>, double, T>;

template <class Input, int... Axes>
constexpr AxisStrides<Input::rank - int(sizeof...(Axes))> kept_axes() {
  AxisStrides<Input::rank - int(sizeof...(Axes))> a{};
  int k = 0;
  for (int d = 0; d < Input::rank; ++d) {
    if (((d == Axes) || ...)) continue;
    a.extent[k] = Input::extents[d];
    a.stride[k++] = Input::strides[d];
  }
  return a;
}
template <class Input, int... Axes>
constexpr AxisStrides<int(sizeof...(Axes))> reduced_axes() {
  AxisStrides<int(sizeof...(Axes))> a{};
  int k = 0;
  for (int d = 0; d < Input::rank; ++d) {
    if (!((d == Axes) || ...)) continue;
    a.extent[k] = Input::extents[d];
    a.stride[k++] = Input::strides[d];
  }
  return a;
}

template <class Reducer, class A, bool Mean, int... Axes>
struct Reduce {
  static_assert(sizeof...(Axes) > 0, "ldm reduction: name at least one axis");
  static_assert(detail::axes_valid<typename A::shape, Axes...>(),
                "ldm reduction: each axis must be distinct and inside the operand's rank");
  using input_shape = typename A::shape;
  using shape = remove_axes_t<input_shape, Axes...>;
  using space = typename A::space;
  using eval_type = typename A::eval_type;
  static constexpr bool is_expression_node = true;
  static constexpr index_t count = input_shape::size / shape::size;

  A a;
  LDM_HD eval_type eval(index_t i) const {
    using Acc = accumulator_t<eval_type>;
    const index_t base = IndexMap<kept_axes<input_shape, Axes...>()>::map(i);
    Acc acc = Reducer::template identity<Acc>();
    for (index_t r = 0; r < count; ++r)
      acc = Reducer::combine(
          acc, Acc(a.eval(base + IndexMap<reduced_axes<input_shape, Axes...>()>::map(r))));
    if constexpr (Mean) acc = acc / Acc(count);
    return eval_type(acc);
  }
};

template <class R, class A, bool M, int... Axes>
inline constexpr bool contains_reduction_v<Reduce<R, A, M, Axes...>> = true;

}  // namespace ldm::expr

namespace ldm {

// Reductions over the listed axes; the result's shape is the operand's without them.
template <int... Axes, class X>
requires(sizeof...(Axes) > 0 && expr::Operand<X> && !expr::Arithmetic<X>) auto sum(const X& x) {
  return expr::Reduce<expr::reducer::sum, expr::node_t<X>, false, Axes...>{expr::as_node(x)};
}
template <int... Axes, class X>
requires(sizeof...(Axes) > 0 && expr::Operand<X> && !expr::Arithmetic<X>) auto mean(const X& x) {
  return expr::Reduce<expr::reducer::sum, expr::node_t<X>, true, Axes...>{expr::as_node(x)};
}
template <int... Axes, class X>
requires(sizeof...(Axes) > 0 && expr::Operand<X> && !expr::Arithmetic<X>) auto max(const X& x) {
  return expr::Reduce<expr::reducer::max, expr::node_t<X>, false, Axes...>{expr::as_node(x)};
}
template <int... Axes, class X>
requires(sizeof...(Axes) > 0 && expr::Operand<X> && !expr::Arithmetic<X>) auto min(const X& x) {
  return expr::Reduce<expr::reducer::min, expr::node_t<X>, false, Axes...>{expr::as_node(x)};
}

}  // namespace ldm
