#pragma once
// What an expression node is, and how operands become nodes.
//
// A node is a small value type with `shape`, `space`, `eval_type` (what it computes in: float for
// float and bf16 data) and `LDM_HD eval_type eval(index_t i) const`: its value at linear index i of
// its shape. Views are the leaves; Tensors and arithmetic scalars are turned into nodes by
// as_node(). Nodes hold leaves by value (a pointer each), so a whole tree can be copied into a CUDA
// kernel's parameters.

#include <concepts>
#include <type_traits>

#include "ldm/core/shape.hpp"
#include "ldm/core/space.hpp"
#include "ldm/core/tensor.hpp"

namespace ldm::expr {

template <class E>
concept Node = requires {
  typename E::shape;
  typename E::space;
  requires E::is_expression_node;
};

// The space of a scalar: it fits into an expression in any space.
struct any_space {};

// A scalar operand. Its value is converted to the other operand's value type at evaluation, so
// `x * 0.5` on a float tensor stays in float.
template <class V>
struct Scalar {
  using shape = Shape<>;
  using space = any_space;
  using eval_type = V;
  static constexpr bool is_expression_node = true;
  V value;
  LDM_HD V eval(index_t) const { return value; }
};

template <class X>
inline constexpr bool is_scalar_node_v = false;
template <class V>
inline constexpr bool is_scalar_node_v<Scalar<V>> = true;

// Whether a node's tree holds a reduction over axes (see broadcast.hpp for why that matters).
template <class X>
inline constexpr bool contains_reduction_v = false;

template <class X>
concept Arithmetic = std::is_arithmetic_v<std::remove_cvref_t<X>>;

// Anything that may stand in an expression: a node, a Tensor, or an arithmetic scalar.
template <class X>
concept Operand =
    Node<std::remove_cvref_t<X>> || is_tensor<std::remove_cvref_t<X>>::value || Arithmetic<X>;

template <class X>
auto as_node(const X& x) {
  if constexpr (Arithmetic<X>)
    return Scalar<X>{x};
  else if constexpr (is_tensor<X>::value)
    return x.view();
  else
    return x;
}

template <class X>
using node_t = decltype(as_node(std::declval<const std::remove_cvref_t<X>&>()));

// The space two operands share; a scalar takes the other's. Mixing host and cuda is a compile
// error with this message.
template <class A, class B>
constexpr auto common_space() {
  if constexpr (std::is_same_v<A, any_space>)
    return B{};
  else if constexpr (std::is_same_v<B, any_space>)
    return A{};
  else {
    static_assert(std::is_same_v<A, B>,
                  "ldm expression: operands live in different memory spaces (host vs cuda); copy "
                  "one of them first");
    return A{};
  }
}
template <class A, class B>
using common_space_t = decltype(common_space<A, B>());

}  // namespace ldm::expr
