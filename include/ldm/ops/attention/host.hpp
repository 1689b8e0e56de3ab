#pragma once
// Multi-head scaled dot-product attention on the host: the core of diffusers' Attention block
// (AttnProcessor2_0, i.e. F.scaled_dot_product_attention with its default scale), without the
// group norm, projections and residual that surround it in nn/.
//
// q, k, v and out are [N, L, C] with L = H * W positions and C = Heads * D channels; head h owns
// channels [h * D, (h + 1) * D), the split diffusers makes with view(N, L, Heads, D). Heads are
// addressed in place through the GEMM leading dimension C, so no head is ever copied out.
// probs [N, Heads, L, L] keeps the softmax for the backward pass.

#include <cmath>

#include "ldm/core/tensor.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/math.hpp"
#include "ldm/ops/gemm/host.hpp"

namespace ldm::ops {

namespace detail {

// Rows are independent, so the loop runs over all N * Heads * L of them: (n, head) pairs alone
// can be fewer than the threads (the autoencoder's attention has a single head).
template <index_t Rows, index_t L, class T, class F>
void for_each_attention_row(T* rows, const F& f) {
  [[maybe_unused]] constexpr bool parallel = Rows * L >= expr::executor<host>::parallel_threshold;
#pragma omp parallel for schedule(static) if (parallel)
  for (index_t r = 0; r < Rows; ++r)
    f(rows + r * L);
}

// Softmax with the row maximum subtracted, so that large logits cannot overflow exp; the sum
// accumulates in double so that a float row of many positions still sums to one.
template <index_t Rows, index_t L, class T>
void softmax_rows(T* scores) {
  for_each_attention_row<Rows, L>(scores, [](T* row) {
    T top = row[0];
    for (index_t j = 1; j < L; ++j)
      top = math::max(top, row[j]);
    double total = 0;
    for (index_t j = 0; j < L; ++j) {
      row[j] = math::exp(row[j] - top);
      total += row[j];
    }
    const T inverse = T(1 / total);
    for (index_t j = 0; j < L; ++j)
      row[j] *= inverse;
  });
}

}  // namespace detail

// out[n, i, head] = sum_j softmax_j(q[n, i, head] . k[n, j, head] / sqrt(D)) v[n, j, head].
template <index_t Heads, class T, index_t N, index_t L, index_t C>
void attention_forward(View<const T, Shape<N, L, C>> q, View<const T, Shape<N, L, C>> k,
                       View<const T, Shape<N, L, C>> v, View<T, Shape<N, L, C>> out,
                       View<T, Shape<N, Heads, L, L>> probs) {
  static_assert(C % Heads == 0,
                "ldm::ops::attention_forward: the channels C must split evenly into Heads heads");
  constexpr index_t D = C / Heads;
  const T scale = T(1 / std::sqrt(double(D)));
  auto head = [](index_t n, index_t h) { return n * L * C + h * D; };
  auto scores = [&](index_t n, index_t h) { return probs.data() + (n * Heads + h) * L * L; };

  for (index_t n = 0; n < N; ++n)
    for (index_t h = 0; h < Heads; ++h)
      gemm(Trans::no, Trans::yes, L, L, D, scale, q.data() + head(n, h), C, k.data() + head(n, h),
           C, T(0), scores(n, h), L);
  detail::softmax_rows<N * Heads * L, L>(probs.data());
  for (index_t n = 0; n < N; ++n)
    for (index_t h = 0; h < Heads; ++h)
      gemm(Trans::no, Trans::no, L, D, L, T(1), scores(n, h), L, v.data() + head(n, h), C, T(0),
           out.data() + head(n, h), C);
}

// Overwrites dq, dk and dv, which must not alias the inputs. With P = probs and S the scaled
// scores: dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(P * dP)), dQ = scale dS K,
// dK = scale dS^T Q.
template <index_t Heads, class T, index_t N, index_t L, index_t C>
void attention_backward(View<const T, Shape<N, L, C>> q, View<const T, Shape<N, L, C>> k,
                        View<const T, Shape<N, L, C>> v, View<const T, Shape<N, Heads, L, L>> probs,
                        View<const T, Shape<N, L, C>> dout, View<T, Shape<N, L, C>> dq,
                        View<T, Shape<N, L, C>> dk, View<T, Shape<N, L, C>> dv) {
  static_assert(C % Heads == 0,
                "ldm::ops::attention_backward: the channels C must split evenly into Heads heads");
  constexpr index_t D = C / Heads;
  const T scale = T(1 / std::sqrt(double(D)));
  auto head = [](index_t n, index_t h) { return n * L * C + h * D; };
  auto pair = [](index_t n, index_t h) { return (n * Heads + h) * L * L; };
  Tensor<T, Shape<N, Heads, L, L>> dscores;

  for (index_t n = 0; n < N; ++n)
    for (index_t h = 0; h < Heads; ++h) {
      const T* p = probs.data() + pair(n, h);
      const T* dout_h = dout.data() + head(n, h);
      gemm(Trans::yes, Trans::no, L, D, L, T(1), p, L, dout_h, C, T(0), dv.data() + head(n, h), C);
      gemm(Trans::no, Trans::yes, L, L, D, T(1), dout_h, C, v.data() + head(n, h), C, T(0),
           dscores.data() + pair(n, h), L);
    }
  // dscores and probs share a layout, so a row's offset in one is its offset in the other.
  const T* probs_base = probs.data();
  T* dscores_base = dscores.data();
  detail::for_each_attention_row<N * Heads * L, L>(dscores_base, [&](T* drow) {
    const T* prow = probs_base + (drow - dscores_base);
    double weighted = 0;
    for (index_t j = 0; j < L; ++j)
      weighted += double(prow[j]) * double(drow[j]);
    for (index_t j = 0; j < L; ++j)
      drow[j] = prow[j] * (drow[j] - T(weighted));
  });
  for (index_t n = 0; n < N; ++n)
    for (index_t h = 0; h < Heads; ++h) {
      const T* ds = dscores.data() + pair(n, h);
      gemm(Trans::no, Trans::no, L, D, L, scale, ds, L, k.data() + head(n, h), C, T(0),
           dq.data() + head(n, h), C);
      gemm(Trans::yes, Trans::no, L, D, L, scale, ds, L, q.data() + head(n, h), C, T(0),
           dk.data() + head(n, h), C);
    }
}

}  // namespace ldm::ops
