#pragma once
// Multi-head scaled dot-product attention on any space: the core of diffusers' Attention block
// (AttnProcessor2_0, i.e. F.scaled_dot_product_attention with its default scale), without the
// group norm, projections and residual that surround it in nn/.
//
// q and out are [N, Lq, C], k and v [N, Lk, C]: Lq queries (the H * W positions) attend to Lk
// keys, the same positions in self-attention or the tokens of a context in cross-attention.
// C = Heads * D channels; head h owns channels [h * D, (h + 1) * D), the split diffusers makes
// with view(N, L, Heads, D). A head is a column slice of the [L, C] rows, addressed in place
// through the GEMM leading dimension C, so no head is ever copied out, and one strided-batched
// GEMM covers every head of a sample (stride D) or every sample of a head (stride L * C).
// probs [N, Heads, Lq, Lk] keeps the softmax for the backward pass. The backends supply the GEMMs
// and the row softmax (attention/host.hpp, and attention/cuda.cuh in .cu units).

#include <cmath>

#include "ldm/core/tensor.hpp"
#include "ldm/ops/attention/host.hpp"
#include "ldm/ops/gemm.hpp"

#if defined(__CUDACC__)
#include "ldm/ops/attention/cuda.cuh"
#endif

namespace ldm::ops {

namespace detail {

// N x Heads equally shaped matrices, one per (sample, head): the first at `data`, row stride `ld`,
// the others `per_sample` and `per_head` elements apart.
template <class T>
struct PerHead {
  T* data;
  int ld;
  long long per_sample, per_head;
};

// The operands of one attention: token tensors [N, L, C] (L = Lq for queries, Lk for keys and
// values) with head h in columns [h D, (h + 1) D), and per-head score matrices [N, Heads, Lq, Lk].
template <index_t Lq, index_t Lk, index_t C, index_t Heads>
struct AttentionLayout {
  template <index_t L, class T>
  static PerHead<T> tokens(T* p) {
    return {p, int(C), L * C, C / Heads};
  }
  template <class T>
  static PerHead<T> pairs(T* p) {
    return {p, int(Lk), Heads * Lq * Lk, Lq * Lk};
  }
};

// C_(n, h) = alpha op(A_(n, h)) op(B_(n, h)) + beta C_(n, h) for every sample n and head h, as
// batched GEMMs over whichever of the two is longer.
template <index_t N, index_t Heads, class Space, class T>
void per_head_gemm(Space space, Trans trans_a, Trans trans_b, index_t m, index_t n, index_t k,
                   T alpha, PerHead<const T> a, PerHead<const T> b, T beta, PerHead<T> c) {
  if constexpr (N >= Heads) {
    for (index_t h = 0; h < Heads; ++h)
      gemm_strided_batched(space, trans_a, trans_b, int(m), int(n), int(k), alpha,
                           a.data + h * a.per_head, a.ld, a.per_sample, b.data + h * b.per_head,
                           b.ld, b.per_sample, beta, c.data + h * c.per_head, c.ld, c.per_sample,
                           int(N));
  } else {
    for (index_t s = 0; s < N; ++s)
      gemm_strided_batched(space, trans_a, trans_b, int(m), int(n), int(k), alpha,
                           a.data + s * a.per_sample, a.ld, a.per_head, b.data + s * b.per_sample,
                           b.ld, b.per_head, beta, c.data + s * c.per_sample, c.ld, c.per_head,
                           int(Heads));
  }
}

template <class T>
PerHead<const T> read_only(PerHead<T> m) {
  return {m.data, m.ld, m.per_sample, m.per_head};
}

}  // namespace detail

// out[n, i, head] = sum_j softmax_j(q[n, i, head] . k[n, j, head] / sqrt(D)) v[n, j, head].
template <index_t Heads, class T, index_t N, index_t Lq, index_t Lk, index_t C, class Space>
void attention_forward(View<const T, Shape<N, Lq, C>, Space> q,
                       View<const T, Shape<N, Lk, C>, Space> k,
                       View<const T, Shape<N, Lk, C>, Space> v, View<T, Shape<N, Lq, C>, Space> out,
                       View<T, Shape<N, Heads, Lq, Lk>, Space> probs) {
  static_assert(C % Heads == 0,
                "ldm::ops::attention_forward: the channels C must split evenly into Heads heads");
  constexpr index_t D = C / Heads;
  const T scale = T(1 / std::sqrt(double(D)));
  using layout = detail::AttentionLayout<Lq, Lk, C, Heads>;
  const auto scores = layout::pairs(probs.data());

  detail::per_head_gemm<N, Heads>(Space{}, Trans::no, Trans::yes, Lq, Lk, D, scale,
                                  layout::template tokens<Lq>(q.data()),
                                  layout::template tokens<Lk>(k.data()), T(0), scores);
  softmax_rows(Space{}, probs.data(), N * Heads * Lq, Lk);
  detail::per_head_gemm<N, Heads>(Space{}, Trans::no, Trans::no, Lq, D, Lk, T(1),
                                  detail::read_only(scores), layout::template tokens<Lk>(v.data()),
                                  T(0), layout::template tokens<Lq>(out.data()));
}

// Overwrites dq, dk and dv, which must not alias the inputs. With P = probs and S the scaled
// scores: dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(P * dP)), dQ = scale dS K,
// dK = scale dS^T Q.
template <index_t Heads, class T, index_t N, index_t Lq, index_t Lk, index_t C, class Space>
void attention_backward(View<const T, Shape<N, Lq, C>, Space> q,
                        View<const T, Shape<N, Lk, C>, Space> k,
                        View<const T, Shape<N, Lk, C>, Space> v,
                        View<const T, Shape<N, Heads, Lq, Lk>, Space> probs,
                        View<const T, Shape<N, Lq, C>, Space> dout,
                        View<T, Shape<N, Lq, C>, Space> dq, View<T, Shape<N, Lk, C>, Space> dk,
                        View<T, Shape<N, Lk, C>, Space> dv) {
  static_assert(C % Heads == 0,
                "ldm::ops::attention_backward: the channels C must split evenly into Heads heads");
  constexpr index_t D = C / Heads;
  const T scale = T(1 / std::sqrt(double(D)));
  using layout = detail::AttentionLayout<Lq, Lk, C, Heads>;
  Tensor<T, Shape<N, Heads, Lq, Lk>, Space> dscores;
  const auto dscores_pairs = layout::pairs(dscores.data());

  detail::per_head_gemm<N, Heads>(
      Space{}, Trans::yes, Trans::no, Lk, D, Lq, T(1), layout::pairs(probs.data()),
      layout::template tokens<Lq>(dout.data()), T(0), layout::template tokens<Lk>(dv.data()));
  detail::per_head_gemm<N, Heads>(Space{}, Trans::no, Trans::yes, Lq, Lk, D, T(1),
                                  layout::template tokens<Lq>(dout.data()),
                                  layout::template tokens<Lk>(v.data()), T(0), dscores_pairs);
  softmax_backward_rows(Space{}, probs.data(), dscores.data(), N * Heads * Lq, Lk);
  detail::per_head_gemm<N, Heads>(
      Space{}, Trans::no, Trans::no, Lq, D, Lk, scale, detail::read_only(dscores_pairs),
      layout::template tokens<Lk>(k.data()), T(0), layout::template tokens<Lq>(dq.data()));
  detail::per_head_gemm<N, Heads>(
      Space{}, Trans::yes, Trans::no, Lk, D, Lq, scale, detail::read_only(dscores_pairs),
      layout::template tokens<Lq>(q.data()), T(0), layout::template tokens<Lk>(dk.data()));
}

}  // namespace ldm::ops
