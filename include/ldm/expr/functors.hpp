#pragma once
// The functors elementwise nodes apply, one per operation. Binary ones are static `apply(x, y)`
// (stateless, so a node stores none); unary ones are objects, because clamp carries its bounds.
// Both compute in the type the node evaluates in and run on host and device alike.

#include "ldm/core/macros.hpp"
#include "ldm/expr/math.hpp"

namespace ldm::expr::op {

// The functors differ only by their result expression, so each is one line of this table.
#define LDM_BINARY_OP(name, ...)      \
  struct name {                       \
    template <class T>                \
    LDM_HD static T apply(T x, T y) { \
      return __VA_ARGS__;             \
    }                                 \
  };
LDM_BINARY_OP(add, x + y)
LDM_BINARY_OP(sub, x - y)
LDM_BINARY_OP(mul, x* y)
LDM_BINARY_OP(div, x / y)
LDM_BINARY_OP(maximum, math::max(x, y))
LDM_BINARY_OP(minimum, math::min(x, y))
// Comparisons give 1 or 0 in the operands' type, so a mask multiplies like any other value.
LDM_BINARY_OP(less, T(x < y))
LDM_BINARY_OP(less_equal, T(x <= y))
LDM_BINARY_OP(greater, T(x > y))
LDM_BINARY_OP(greater_equal, T(x >= y))
#undef LDM_BINARY_OP

#define LDM_UNARY_OP(name, ...)      \
  struct name {                      \
    template <class T>               \
    LDM_HD T operator()(T x) const { \
      return __VA_ARGS__;            \
    }                                \
  };
LDM_UNARY_OP(neg, -x)
LDM_UNARY_OP(exp, math::exp(x))
LDM_UNARY_OP(log, math::log(x))
LDM_UNARY_OP(sqrt, math::sqrt(x))
LDM_UNARY_OP(rsqrt, math::rsqrt(x))
LDM_UNARY_OP(tanh, math::tanh(x))
LDM_UNARY_OP(sigmoid, math::sigmoid(x))
LDM_UNARY_OP(silu, math::silu(x))
LDM_UNARY_OP(abs, math::abs(x))
LDM_UNARY_OP(square, x* x)
#undef LDM_UNARY_OP

struct clamp {
  double lo, hi;
  template <class T>
  LDM_HD T operator()(T x) const {
    return math::min(math::max(x, T(lo)), T(hi));
  }
};

}  // namespace ldm::expr::op
