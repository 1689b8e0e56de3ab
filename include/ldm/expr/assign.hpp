#pragma once
// Assignment: a View (or Tensor) on the left, an expression on the right. The whole tree is
// evaluated in one pass by the executor of the destination's space; nothing is materialised.
//
// Aliasing: `a = a * 2 + b` is safe because an elementwise node reads index i of its operands
// to write index i. Broadcast operands have another shape and so are other tensors, and reductions
// read many indices: a reduction whose operand aliases its destination is undefined (materialise
// it first).

#include <type_traits>

#include "ldm/core/tensor.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/kernel.hpp"
#include "ldm/expr/node.hpp"
#include "ldm/expr/reduce.hpp"

namespace ldm::expr {

template <class AssignOp, class T, class S, class Space, class X>
void assign(const View<T, S, Space>& dst, const X& x) {
  static_assert(!std::is_const_v<T>, "ldm assignment: the destination is a view of const data");
  static_assert(Operand<X>, "ldm assignment: the right side is not an ldm expression or number");
  using N = node_t<X>;
  static_assert(is_scalar_node_v<N> || std::is_same_v<typename N::shape, S>,
                "ldm assignment: the expression's shape differs from the destination's shape");
  static_assert(std::is_same_v<common_space_t<Space, typename N::space>, Space>);
  executor<Space>::for_each(S::size, AssignKernel<AssignOp, T, N>{dst.data(), as_node(x)});
}

template <class Reducer, bool Mean, class X>
auto reduce_all(const X& x) {
  static_assert(Operand<X> && !Arithmetic<X>, "ldm reduction: the operand is not an expression");
  using N = node_t<X>;
  using V = typename N::eval_type;
  using Acc = accumulator_t<Reducer, V>;
  // A tree of scalars and random streams belongs to no space; reduce it on the host.
  using Space =
      std::conditional_t<std::is_same_v<typename N::space, any_space>, host, typename N::space>;
  Acc total = executor<Space>::reduce(N::shape::size, Reducer::template identity<Acc>(),
                                      ReadKernel<Acc, N>{as_node(x)}, CombineKernel<Reducer>{});
  if constexpr (Mean) total = total / Acc(N::shape::size);
  return V(total);
}

}  // namespace ldm::expr

namespace ldm {

template <class T, ShapeType S, class Space>
const View<T, S, Space>& View<T, S, Space>::operator=(const View& other) const {
  expr::assign<expr::assign_op::set>(*this, other);
  return *this;
}
template <class T, ShapeType S, class Space>
template <class E>
const View<T, S, Space>& View<T, S, Space>::operator=(const E& e) const {
  expr::assign<expr::assign_op::set>(*this, e);
  return *this;
}
// The compound assignments differ only by how they combine the old value with the new.
#define LDM_COMPOUND_ASSIGNMENT(function, combine)                         \
  template <class T, ShapeType S, class Space>                             \
  template <class E>                                                       \
  const View<T, S, Space>& View<T, S, Space>::function(const E& e) const { \
    expr::assign<expr::assign_op::combine>(*this, e);                      \
    return *this;                                                          \
  }
LDM_COMPOUND_ASSIGNMENT(operator+=, add)
LDM_COMPOUND_ASSIGNMENT(operator-=, sub)
LDM_COMPOUND_ASSIGNMENT(operator*=, mul)
LDM_COMPOUND_ASSIGNMENT(operator/=, div)
#undef LDM_COMPOUND_ASSIGNMENT

// Reductions: over the listed axes, a node whose shape is the operand's without them; over
// everything (no axes), the value.
#define LDM_REDUCTION(function, combine, divide)                                     \
  template <int... Axes, class X>                                                    \
  requires(expr::Operand<X> && !expr::Arithmetic<X>) auto function(const X& x) {     \
    if constexpr (sizeof...(Axes) == 0)                                              \
      return expr::reduce_all<expr::reducer::combine, divide>(x);                    \
    else                                                                             \
      return expr::Reduce<expr::reducer::combine, expr::node_t<X>, divide, Axes...>{ \
          expr::as_node(x)};                                                         \
  }
LDM_REDUCTION(sum, sum, false)
LDM_REDUCTION(mean, sum, true)
LDM_REDUCTION(max, max, false)
LDM_REDUCTION(min, min, false)
#undef LDM_REDUCTION

}  // namespace ldm
