#pragma once
// The evaluator side of assignment: what happens at one index. Executors (host loop, CUDA kernel)
// only decide which indices run where, and call these.

#include "ldm/core/dtype.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/expr/functors.hpp"

namespace ldm::expr {

// How an assignment combines the old value with the new: set, or the arithmetic of += -= *= /=.
namespace assign_op {
struct set {
  template <class V>
  LDM_HD static V apply(V, V value) {
    return value;
  }
};
using add = op::add;
using sub = op::sub;
using mul = op::mul;
using div = op::div;
}  // namespace assign_op

// dst[i] (op)= node(i), computed in the node's value type and stored as T (rounding to bf16 here).
template <class AssignOp, class T, class NodeT>
struct AssignKernel {
  T* dst;
  NodeT node;
  LDM_HD void operator()(index_t i) const {
    using V = typename NodeT::eval_type;
    if constexpr (std::is_same_v<AssignOp, assign_op::set>) {
      dst[i] = T(node.eval(i));
    } else {
      dst[i] = T(AssignOp::apply(V(dst[i]), node.eval(i)));
    }
  }
};

// Reading node(i) converted to the reduction's accumulator, for reductions over everything.
template <class Acc, class NodeT>
struct ReadKernel {
  NodeT node;
  LDM_HD Acc operator()(index_t i) const { return Acc(node.eval(i)); }
};

// A reducer's combine as a function object both sides can call (a host lambda cannot run on the
// device).
template <class Reducer>
struct CombineKernel {
  template <class Acc>
  LDM_HD Acc operator()(Acc a, Acc b) const {
    return Reducer::combine(a, b);
  }
};

}  // namespace ldm::expr
