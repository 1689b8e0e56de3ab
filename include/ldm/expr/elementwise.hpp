#pragma once
// Elementwise nodes: + - * / between operands of one shape (or with a scalar), and unary
// functions. Operands of different shapes do not compile: broadcasting is always explicit
// (ldm/expr/broadcast.hpp), so a shape slip is caught where it is made.

#include <type_traits>

#include "ldm/expr/math.hpp"
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

namespace op {
struct add {
  template <class T>
  LDM_HD static T apply(T x, T y) {
    return x + y;
  }
};
struct sub {
  template <class T>
  LDM_HD static T apply(T x, T y) {
    return x - y;
  }
};
struct mul {
  template <class T>
  LDM_HD static T apply(T x, T y) {
    return x * y;
  }
};
struct div {
  template <class T>
  LDM_HD static T apply(T x, T y) {
    return x / y;
  }
};
struct maximum {
  template <class T>
  LDM_HD static T apply(T x, T y) {
    return math::max(x, y);
  }
};
struct minimum {
  template <class T>
  LDM_HD static T apply(T x, T y) {
    return math::min(x, y);
  }
};

// Comparisons give 1 or 0 in the operands' type, so a mask multiplies like any other value.
struct less {
  template <class T>
  LDM_HD static T apply(T x, T y) {
    return T(x < y);
  }
};
struct less_equal {
  template <class T>
  LDM_HD static T apply(T x, T y) {
    return T(x <= y);
  }
};
struct greater {
  template <class T>
  LDM_HD static T apply(T x, T y) {
    return T(x > y);
  }
};
struct greater_equal {
  template <class T>
  LDM_HD static T apply(T x, T y) {
    return T(x >= y);
  }
};

struct neg {
  template <class T>
  LDM_HD T operator()(T x) const {
    return -x;
  }
};
struct exp {
  template <class T>
  LDM_HD T operator()(T x) const {
    return math::exp(x);
  }
};
struct log {
  template <class T>
  LDM_HD T operator()(T x) const {
    return math::log(x);
  }
};
struct sqrt {
  template <class T>
  LDM_HD T operator()(T x) const {
    return math::sqrt(x);
  }
};
struct rsqrt {
  template <class T>
  LDM_HD T operator()(T x) const {
    return math::rsqrt(x);
  }
};
struct tanh {
  template <class T>
  LDM_HD T operator()(T x) const {
    return math::tanh(x);
  }
};
struct sigmoid {
  template <class T>
  LDM_HD T operator()(T x) const {
    return math::sigmoid(x);
  }
};
struct silu {
  template <class T>
  LDM_HD T operator()(T x) const {
    return math::silu(x);
  }
};
struct abs {
  template <class T>
  LDM_HD T operator()(T x) const {
    return math::abs(x);
  }
};
struct square {
  template <class T>
  LDM_HD T operator()(T x) const {
    return x * x;
  }
};
struct clamp {
  double lo, hi;
  template <class T>
  LDM_HD T operator()(T x) const {
    return math::min(math::max(x, T(lo)), T(hi));
  }
};
}  // namespace op

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

template <class X, class Y>
requires expr::BinaryOperands<X, Y>
auto operator+(const X& x, const Y& y) {
  return expr::make_binary<expr::op::add>(x, y);
}
template <class X, class Y>
requires expr::BinaryOperands<X, Y>
auto operator-(const X& x, const Y& y) {
  return expr::make_binary<expr::op::sub>(x, y);
}
template <class X, class Y>
requires expr::BinaryOperands<X, Y>
auto operator*(const X& x, const Y& y) {
  return expr::make_binary<expr::op::mul>(x, y);
}
template <class X, class Y>
requires expr::BinaryOperands<X, Y>
auto operator/(const X& x, const Y& y) {
  return expr::make_binary<expr::op::div>(x, y);
}
template <class X, class Y>
requires expr::BinaryOperands<X, Y>
auto maximum(const X& x, const Y& y) {
  return expr::make_binary<expr::op::maximum>(x, y);
}
template <class X, class Y>
requires expr::BinaryOperands<X, Y>
auto minimum(const X& x, const Y& y) {
  return expr::make_binary<expr::op::minimum>(x, y);
}

template <class X, class Y>
requires expr::BinaryOperands<X, Y>
auto operator<(const X& x, const Y& y) {
  return expr::make_binary<expr::op::less>(x, y);
}
template <class X, class Y>
requires expr::BinaryOperands<X, Y>
auto operator<=(const X& x, const Y& y) {
  return expr::make_binary<expr::op::less_equal>(x, y);
}
template <class X, class Y>
requires expr::BinaryOperands<X, Y>
auto operator>(const X& x, const Y& y) {
  return expr::make_binary<expr::op::greater>(x, y);
}
template <class X, class Y>
requires expr::BinaryOperands<X, Y>
auto operator>=(const X& x, const Y& y) {
  return expr::make_binary<expr::op::greater_equal>(x, y);
}

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
