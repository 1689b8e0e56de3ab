#pragma once
// Reductions over chosen axes, as nodes: sum<0, 1, 2>(x) over an NHWC x has shape Shape<C>, and
// each output element reduces its slice when evaluated, so `mean = sum<0,1,2>(x) / n` is one pass.
// Reductions over everything (sum(x), mean(x), max(x)) return a value; they run on the executor of
// the operand's space. The functions sum/mean/max/min that make both are in ldm/expr/assign.hpp.

#include <cstdint>
#include <limits>
#include <type_traits>

#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/index_map.hpp"
#include "ldm/expr/math.hpp"
#include "ldm/expr/node.hpp"

namespace ldm::expr {

// A reducer names its identity, its combine and the type it accumulates in. The accumulator is a
// function of the value type and the reducer only, never of the compiler pass reading the header:
// nvcc's host and device passes must agree on it, because the host pass picks the CUB kernels of a
// whole reduction that the device pass compiles.
namespace reducer {
struct sum {
  // Sums gather rounding error and overflow: floating values accumulate in double, integers in 64
  // bits of their signedness.
  template <class T>
  using accumulator =
      std::conditional_t<std::is_floating_point_v<T>, double,
                         std::conditional_t<std::is_signed_v<T>, std::int64_t, std::uint64_t>>;
  template <class T>
  LDM_HD static T identity() {
    return T(0);
  }
  template <class T>
  LDM_HD static T combine(T a, T b) {
    return a + b;
  }
};
// Max and min are exact in the value type, so they accumulate in it. Their identities are the
// far end of the type's range: an infinity for floating types, the extreme value for integers
// (which have no infinity).
template <bool Largest>
struct extreme {
  template <class T>
  using accumulator = T;
  template <class T>
  LDM_HD static T identity() {
    using limits = std::numeric_limits<T>;
    if constexpr (limits::has_infinity)
      return Largest ? -limits::infinity() : limits::infinity();
    else
      return Largest ? limits::lowest() : limits::max();
  }
  template <class T>
  LDM_HD static T combine(T a, T b) {
    return Largest ? math::max(a, b) : math::min(a, b);
  }
};
using max = extreme<true>;
using min = extreme<false>;
}  // namespace reducer

// The type Reducer accumulates values of type T in, on every executor and in every compiler pass:
// reductions over axes (evaluated per output element inside any executor's loop) and reductions
// over everything (ldm/expr/assign.hpp) alike.
template <class Reducer, class T>
using accumulator_t = typename Reducer::template accumulator<T>;

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
    using Acc = accumulator_t<Reducer, eval_type>;
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
