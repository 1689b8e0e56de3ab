#pragma once
// GroupNorm over NHWC (torch.nn.GroupNorm with affine parameters), and GroupNorm followed by SiLU
// in one pass, the pairing every ResNet block and decoder output uses, on any space.
//
// Group g holds the C / G consecutive channels [g * C/G, (g + 1) * C/G). Statistics are per
// (sample, group) over H * W * C/G values, with the biased variance as PyTorch. Forward writes y
// and saves mean and rstd = 1 / sqrt(var + eps) for the backward pass; backward overwrites dx and
// adds into dgamma and dbeta. Each takes the activation as a template argument (NormActivation);
// backward takes beta too, which with SiLU recomputes the pre-activation instead of storing it. The
// statistics are where the backends differ (a task per sample on the host, block reductions on the
// device): group_norm/host.hpp and group_norm/cuda.cuh.

#include <type_traits>

#include "ldm/core/tensor.hpp"
#include "ldm/ops/group_norm/activation.hpp"
#include "ldm/ops/group_norm/host.hpp"
#if defined(__CUDACC__)
#include "ldm/ops/group_norm/cuda.cuh"
#endif

namespace ldm::ops {

// y = act((x - mean) * rstd * gamma + beta) per group, act being Act (silu without materialising
// the normalised tensor); writes y and the saved statistics.
template <index_t Groups, NormActivation Act = NormActivation::none, class T, index_t N, index_t H,
          index_t W, index_t C, class Space>
void group_norm_forward(View<const T, Shape<N, H, W, C>, Space> x,
                        View<const T, Shape<C>, Space> gamma, View<const T, Shape<C>, Space> beta,
                        std::type_identity_t<T> eps, View<T, Shape<N, H, W, C>, Space> y,
                        View<T, Shape<N, Groups>, Space> mean,
                        View<T, Shape<N, Groups>, Space> rstd) {
  detail::group_norm_forward<Act, Groups>(x, gamma, beta, eps, y, mean, rstd);
}

// Overwrites dx; adds into dgamma and dbeta. beta is read only with an activation, to recompute
// its input.
template <index_t Groups, NormActivation Act = NormActivation::none, class T, index_t N, index_t H,
          index_t W, index_t C, class Space>
void group_norm_backward(View<const T, Shape<N, H, W, C>, Space> x,
                         View<const T, Shape<C>, Space> gamma, View<const T, Shape<C>, Space> beta,
                         View<const T, Shape<N, Groups>, Space> mean,
                         View<const T, Shape<N, Groups>, Space> rstd,
                         View<const T, Shape<N, H, W, C>, Space> dy,
                         View<T, Shape<N, H, W, C>, Space> dx, View<T, Shape<C>, Space> dgamma,
                         View<T, Shape<C>, Space> dbeta) {
  detail::group_norm_backward<Act, Groups>(x, gamma,
                                           Act == NormActivation::none ? nullptr : beta.data(),
                                           mean, rstd, dy, dx, dgamma, dbeta);
}

}  // namespace ldm::ops
