#pragma once
// Elementwise nodes: + - * / between operands of one shape (or with a scalar), and unary
// functions. Operands of different shapes do not compile: broadcasting is always explicit
// (ldm/expr/broadcast.hpp), so a shape slip is caught where it is made.

#include <type_traits>

#include "ldm/expr/functors.hpp"
#include "ldm/expr/node.hpp"

namespace ldm::expr {

template <class A, class B>
constexpr bool same_shape_or_scalar() {
  return is_scalar_node_v<A> || is_scalar_node_v<B> ||
         std::is_same_v<typename A::shape, typename B::shape>;
}

template <class Op, class A, class B>
struct Binary {
  static_assert(same_shape_or_scalar<A, B>(),
                "ldm expression: the operands' shapes differ. Elementwise operands must have the "
                "same Shape<...>; broadcast the smaller one explicitly with ldm::broadcast<...>.");
  using shape = std::conditional_t<is_scalar_node_v<A>, typename B::shape, typename A::shape>;
  using space = common_space_t<typename A::space, typename B::space>;
  using eval_type = std::conditional_t<
      is_scalar_node_v<A>, typename B::eval_type,
      std::conditional_t<is_scalar_node_v<B>, typename A::eval_type,
                         std::common_type_t<typename A::eval_type, typename B::eval_type>>>;
  static constexpr bool is_expression_node = true;

  A a;
  B b;
  LDM_HD eval_type eval(index_t i) const {
    return Op::apply(eval_type(a.eval(i)), eval_type(b.eval(i)));
  }
};

template <class Op, class A>
struct Unary {
  using shape = typename A::shape;
  using space = typename A::space;
  using eval_type = typename A::eval_type;
  static constexpr bool is_expression_node = true;

  A a;
  Op op;
  LDM_HD eval_type eval(index_t i) const { return op(a.eval(i)); }
};

template <class Op, class A, class B>
inline constexpr bool contains_reduction_v<Binary<Op, A, B>> =
    contains_reduction_v<A> || contains_reduction_v<B>;
template <class Op, class A>
inline constexpr bool contains_reduction_v<Unary<Op, A>> = contains_reduction_v<A>;

template <class Op, class X, class Y>
auto make_binary(const X& x, const Y& y) {
  return Binary<Op, node_t<X>, node_t<Y>>{as_node(x), as_node(y)};
}
template <class Op, class X>
auto make_unary(const X& x, Op op = {}) {
  return Unary<Op, node_t<X>>{as_node(x), op};
}

// An operator applies when at least one side is a node or tensor (two plain numbers are C++'s).
template <class X, class Y>
concept BinaryOperands = Operand<X> && Operand<Y> && !(Arithmetic<X> && Arithmetic<Y>);

}  // namespace ldm::expr

namespace ldm {

#define LDM_BINARY_FUNCTION(name, functor)             \
  template <class X, class Y>                          \
  requires expr::BinaryOperands<X, Y>                  \
  auto name(const X& x, const Y& y) {                  \
    return expr::make_binary<expr::op::functor>(x, y); \
  }
LDM_BINARY_FUNCTION(operator+, add)
LDM_BINARY_FUNCTION(operator-, sub)
LDM_BINARY_FUNCTION(operator*, mul)
LDM_BINARY_FUNCTION(operator/, div)
LDM_BINARY_FUNCTION(maximum, maximum)
LDM_BINARY_FUNCTION(minimum, minimum)
LDM_BINARY_FUNCTION(operator<, less)
LDM_BINARY_FUNCTION(operator<=, less_equal)
LDM_BINARY_FUNCTION(operator>, greater)
LDM_BINARY_FUNCTION(operator>=, greater_equal)
#undef LDM_BINARY_FUNCTION

template <class X>
requires(expr::Operand<X> && !expr::Arithmetic<X>) auto operator-(const X& x) {
  return expr::make_unary<expr::op::neg>(x);
}

#define LDM_UNARY_FUNCTION(name)                                             \
  template <class X>                                                         \
  requires(expr::Operand<X> && !expr::Arithmetic<X>) auto name(const X& x) { \
    return expr::make_unary<expr::op::name>(x);                              \
  }
LDM_UNARY_FUNCTION(exp)
LDM_UNARY_FUNCTION(log)
LDM_UNARY_FUNCTION(sqrt)
LDM_UNARY_FUNCTION(rsqrt)
LDM_UNARY_FUNCTION(tanh)
LDM_UNARY_FUNCTION(sigmoid)
LDM_UNARY_FUNCTION(silu)
LDM_UNARY_FUNCTION(abs)
LDM_UNARY_FUNCTION(square)
#undef LDM_UNARY_FUNCTION

template <class X>
requires(expr::Operand<X> && !expr::Arithmetic<X>) auto clamp(const X& x, double lo, double hi) {
  return expr::make_unary(x, expr::op::clamp{lo, hi});
}

}  // namespace ldm
