#pragma once
// What every GroupNorm backend shares: the group-count check and the activation that may follow
// the normalisation, with its derivative, as functions both host and device code call.

#include "ldm/core/macros.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/expr/math.hpp"

namespace ldm::ops {

/// The activation a GroupNorm applies to its output in the same pass.
enum class NormActivation {
  none,  ///< y is the normalised, scaled and shifted x
  silu   ///< y = silu of that, as every ResNet block and output head applies next
};

namespace detail {

template <index_t Groups, index_t C>
constexpr bool valid_group_count() {
  static_assert(Groups > 0 && C % Groups == 0,
                "ldm::ops::group_norm: the channel count C must be a multiple of the group count");
  return true;
}

template <NormActivation Act, class V>
LDM_HD V norm_activation(V z) {
  if constexpr (Act == NormActivation::silu)
    return math::silu(z);
  else
    return z;
}

// dy times the activation's derivative at z.
template <NormActivation Act, class V>
LDM_HD V norm_activation_grad(V z, V dy) {
  if constexpr (Act == NormActivation::silu)
    return dy * math::silu_grad(z);
  else
    return dy;
}

}  // namespace detail

}  // namespace ldm::ops
