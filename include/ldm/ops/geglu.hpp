#pragma once
/// @file
/// GEGLU, the gated activation of diffusers' FeedForward (activation_fn "geglu"), on any space:
/// the projection's last axis of 2 * I values splits into a hidden half [0, I) and a gate half
/// [I, 2 I) (torch's chunk(2, dim=-1)), and out = hidden * gelu(gate) with the exact erf GELU.
/// One work item per output element; backward recomputes gelu from the saved projection.

#include "ldm/core/dtype.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/math.hpp"
#include "ldm/ops/linear.hpp"

namespace ldm::ops {

namespace detail {

template <class T>
struct GegluForward {
  const T* proj;
  T* out;
  index_t inner;
  LDM_HD void operator()(index_t i) const {
    using V = compute_t<T>;
    const index_t hidden = i + (i / inner) * inner;  // row r's hidden half starts at 2 I r
    out[i] = T(V(proj[hidden]) * math::gelu(V(proj[hidden + inner])));
  }
};

template <class T>
struct GegluBackward {
  const T* proj;
  const T* dout;
  T* dproj;
  index_t inner;
  LDM_HD void operator()(index_t i) const {
    using V = compute_t<T>;
    const index_t hidden = i + (i / inner) * inner;
    const V gate = V(proj[hidden + inner]), d = V(dout[i]);
    dproj[hidden] = T(d * math::gelu(gate));
    dproj[hidden + inner] = T(d * V(proj[hidden]) * math::gelu_grad(gate));
  }
};

template <ShapeType SP, ShapeType SO>
constexpr index_t geglu_inner() {
  static_assert(last_extent<SP> == 2 * last_extent<SO>,
                "ldm::ops::geglu: the projection's last extent must be twice the output's");
  static_assert(same_leading_extents<SP, SO>(),
                "ldm::ops::geglu: the projection and the output must agree on every axis but the "
                "last");
  return last_extent<SO>;
}

}  // namespace detail

/// out = hidden * gelu(gate), where proj's last axis is [hidden | gate].
template <class T, ShapeType SP, ShapeType SO, class Space>
void geglu_forward(View<const T, SP, Space> proj, View<T, SO, Space> out) {
  constexpr index_t inner = detail::geglu_inner<SP, SO>();
  expr::executor<Space>::for_each(SO::size,
                                  detail::GegluForward<T>{proj.data(), out.data(), inner});
}

/// Overwrites dproj (both halves) from the upstream gradient dout.
template <class T, ShapeType SP, ShapeType SO, class Space>
void geglu_backward(View<const T, SP, Space> proj, View<const T, SO, Space> dout,
                    View<T, SP, Space> dproj) {
  constexpr index_t inner = detail::geglu_inner<SP, SO>();
  expr::executor<Space>::for_each(
      SO::size, detail::GegluBackward<T>{proj.data(), dout.data(), dproj.data(), inner});
}

}  // namespace ldm::ops
