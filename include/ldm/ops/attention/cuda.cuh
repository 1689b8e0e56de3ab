#pragma once
// Multi-head scaled dot-product attention on the device: the same contract as attention/host.hpp
// (q, k, v, out [N, L, C], head h owning channels [h * D, (h + 1) * D), probs [N, Heads, L, L]
// kept for backward), with the GEMMs as strided-batched cuBLAS calls and the row softmax and its
// backward as warp-per-row kernels.
//
// A head is a column slice of the [L, C] rows, addressed in place through the leading dimension
// C, so one strided-batched call covers every head of a sample (stride D) or every sample of a
// head (stride L * C); the loop runs over whichever of the two is shorter.

#include <cmath>
#include <type_traits>

#include <cublas_v2.h>

#include "ldm/core/cuda/check.cuh"
#include "ldm/core/cuda/device.cuh"
#include "ldm/core/cuda/memory.cuh"
#include "ldm/core/macros.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/math.hpp"
#include "ldm/ops/gemm/cuda.cuh"

namespace ldm::ops {

namespace attention_cuda {

inline constexpr int kWarp = 32;
inline constexpr int kRowsPerBlock = 8;  // one warp per row, 256 threads

// N x Heads equally shaped matrices, one per (sample, head): the first at `data`, row stride `ld`,
// the others `per_sample` and `per_head` elements apart.
template <class T>
struct Strided {
  T* data;
  int ld;
  long long per_sample, per_head;
};

// The operands of one attention: token tensors [N, L, C] with head h in columns [h D, (h + 1) D),
// and per-head square matrices [N, Heads, L, L].
template <index_t L, index_t C, index_t Heads>
struct Layout {
  template <class T>
  static Strided<T> tokens(T* p) {
    return {p, int(C), L * C, C / Heads};
  }
  template <class T>
  static Strided<T> pairs(T* p) {
    return {p, int(L), Heads * L * L, L * L};
  }
};

template <class T>
void gemm_strided_batched(Trans trans_a, Trans trans_b, int m, int n, int k, T alpha, const T* a,
                          int lda, long long stride_a, const T* b, int ldb, long long stride_b,
                          T beta, T* c, int ldc, long long stride_c, int batch) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "ldm::ops::attention: the cuBLAS path takes float or double");
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: A and B swap, as in gemm.
  const cublasOperation_t ta = detail::cublas_op(trans_a), tb = detail::cublas_op(trans_b);
  if constexpr (std::is_same_v<T, float>)
    LDM_CUDA_CHECK(cublasSgemmStridedBatched(detail::cublas_handle(), tb, ta, n, m, k, &alpha, b,
                                             ldb, stride_b, a, lda, stride_a, &beta, c, ldc,
                                             stride_c, batch));
  else
    LDM_CUDA_CHECK(cublasDgemmStridedBatched(detail::cublas_handle(), tb, ta, n, m, k, &alpha, b,
                                             ldb, stride_b, a, lda, stride_a, &beta, c, ldc,
                                             stride_c, batch));
}

// C_(n, h) = alpha op(A_(n, h)) op(B_(n, h)) + beta C_(n, h) for every sample n and head h.
template <index_t N, index_t Heads, class T>
void per_head_gemm(Trans trans_a, Trans trans_b, int m, int n, int k, T alpha, Strided<const T> a,
                   Strided<const T> b, T beta, Strided<T> c) {
  if constexpr (N >= Heads) {
    for (index_t h = 0; h < Heads; ++h)
      gemm_strided_batched(trans_a, trans_b, m, n, k, alpha, a.data + h * a.per_head, a.ld,
                           a.per_sample, b.data + h * b.per_head, b.ld, b.per_sample, beta,
                           c.data + h * c.per_head, c.ld, c.per_sample, int(N));
  } else {
    for (index_t s = 0; s < N; ++s)
      gemm_strided_batched(trans_a, trans_b, m, n, k, alpha, a.data + s * a.per_sample, a.ld,
                           a.per_head, b.data + s * b.per_sample, b.ld, b.per_head, beta,
                           c.data + s * c.per_sample, c.ld, c.per_head, int(Heads));
  }
}

template <class T>
__device__ T warp_max(T x) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    x = math::max(x, __shfl_xor_sync(0xffffffffu, x, offset));
  return x;
}

// The butterfly leaves every lane with the same total, in an order fixed by the lane numbers.
__device__ inline double warp_sum(double x) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

// The host's softmax, one warp per row: the maximum subtracted, exponentials stored, their sum in
// double, then one multiply by the rounded reciprocal. Each lane rewrites only its own columns.
template <class T>
__global__ void __launch_bounds__(kWarp* kRowsPerBlock)
    softmax_rows_kernel(T* scores, index_t rows, index_t length) {
  const index_t row = index_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = int(threadIdx.x % kWarp);
  if (row >= rows) return;  // a whole warp leaves together, so the shuffles below stay full
  T* r = scores + row * length;
  T top = r[0];
  for (index_t j = lane; j < length; j += kWarp)
    top = math::max(top, r[j]);
  top = warp_max(top);
  double total = 0;
  for (index_t j = lane; j < length; j += kWarp) {
    const T e = math::exp(r[j] - top);
    r[j] = e;
    total += double(e);
  }
  const T inverse = T(1 / warp_sum(total));
  for (index_t j = lane; j < length; j += kWarp)
    r[j] *= inverse;
}

// dscores = probs * (dscores - rowsum(probs * dscores)), the row sum in double as on the host.
template <class T>
__global__ void __launch_bounds__(kWarp* kRowsPerBlock)
    softmax_backward_rows_kernel(const T* probs, T* dscores, index_t rows, index_t length) {
  const index_t row = index_t(blockIdx.x) * kRowsPerBlock + threadIdx.x / kWarp;
  const int lane = int(threadIdx.x % kWarp);
  if (row >= rows) return;
  const T* p = probs + row * length;
  T* d = dscores + row * length;
  double weighted = 0;
  for (index_t j = lane; j < length; j += kWarp)
    weighted += double(p[j]) * double(d[j]);
  const T w = T(warp_sum(weighted));
  for (index_t j = lane; j < length; j += kWarp)
    d[j] = p[j] * (d[j] - w);
}

inline unsigned row_blocks(index_t rows) {
  return unsigned((rows + kRowsPerBlock - 1) / kRowsPerBlock);
}

}  // namespace attention_cuda

// out[n, i, head] = sum_j softmax_j(q[n, i, head] . k[n, j, head] / sqrt(D)) v[n, j, head].
template <index_t Heads, class T, index_t N, index_t L, index_t C>
void attention_forward(View<const T, Shape<N, L, C>, ldm::cuda> q,
                       View<const T, Shape<N, L, C>, ldm::cuda> k,
                       View<const T, Shape<N, L, C>, ldm::cuda> v,
                       View<T, Shape<N, L, C>, ldm::cuda> out,
                       View<T, Shape<N, Heads, L, L>, ldm::cuda> probs) {
  static_assert(C % Heads == 0,
                "ldm::ops::attention_forward: the channels C must split evenly into Heads heads");
  namespace ac = attention_cuda;
  constexpr index_t D = C / Heads;
  const T scale = T(1 / std::sqrt(double(D)));
  using layout = ac::Layout<L, C, Heads>;
  const T* scores_in = probs.data();

  ac::per_head_gemm<N, Heads>(Trans::no, Trans::yes, int(L), int(L), int(D), scale,
                              layout::tokens(q.data()), layout::tokens(k.data()), T(0),
                              layout::pairs(probs.data()));
  constexpr index_t rows = N * Heads * L;
  ac::softmax_rows_kernel<<<ac::row_blocks(rows), ac::kWarp * ac::kRowsPerBlock, 0,
                            cuda_device::stream()>>>(probs.data(), rows, L);
  LDM_CUDA_CHECK(cudaGetLastError());
  ac::per_head_gemm<N, Heads>(Trans::no, Trans::no, int(L), int(D), int(L), T(1),
                              layout::pairs(scores_in), layout::tokens(v.data()), T(0),
                              layout::tokens(out.data()));
}

// Overwrites dq, dk and dv, which must not alias the inputs. With P = probs and S the scaled
// scores: dV = P^T dO, dP = dO V^T, dS = P * (dP - rowsum(P * dP)), dQ = scale dS K,
// dK = scale dS^T Q.
template <index_t Heads, class T, index_t N, index_t L, index_t C>
void attention_backward(View<const T, Shape<N, L, C>, ldm::cuda> q,
                        View<const T, Shape<N, L, C>, ldm::cuda> k,
                        View<const T, Shape<N, L, C>, ldm::cuda> v,
                        View<const T, Shape<N, Heads, L, L>, ldm::cuda> probs,
                        View<const T, Shape<N, L, C>, ldm::cuda> dout,
                        View<T, Shape<N, L, C>, ldm::cuda> dq,
                        View<T, Shape<N, L, C>, ldm::cuda> dk,
                        View<T, Shape<N, L, C>, ldm::cuda> dv) {
  static_assert(C % Heads == 0,
                "ldm::ops::attention_backward: the channels C must split evenly into Heads heads");
  namespace ac = attention_cuda;
  constexpr index_t D = C / Heads;
  const T scale = T(1 / std::sqrt(double(D)));
  using layout = ac::Layout<L, C, Heads>;
  Tensor<T, Shape<N, Heads, L, L>, ldm::cuda> dscores;
  const T* dscores_in = dscores.data();

  ac::per_head_gemm<N, Heads>(Trans::yes, Trans::no, int(L), int(D), int(L), T(1),
                              layout::pairs(probs.data()), layout::tokens(dout.data()), T(0),
                              layout::tokens(dv.data()));
  ac::per_head_gemm<N, Heads>(Trans::no, Trans::yes, int(L), int(L), int(D), T(1),
                              layout::tokens(dout.data()), layout::tokens(v.data()), T(0),
                              layout::pairs(dscores.data()));
  constexpr index_t rows = N * Heads * L;
  ac::softmax_backward_rows_kernel<<<ac::row_blocks(rows), ac::kWarp * ac::kRowsPerBlock, 0,
                                     cuda_device::stream()>>>(probs.data(), dscores.data(), rows,
                                                              L);
  LDM_CUDA_CHECK(cudaGetLastError());
  ac::per_head_gemm<N, Heads>(Trans::no, Trans::no, int(L), int(D), int(L), scale,
                              layout::pairs(dscores_in), layout::tokens(k.data()), T(0),
                              layout::tokens(dq.data()));
  ac::per_head_gemm<N, Heads>(Trans::yes, Trans::no, int(L), int(D), int(L), scale,
                              layout::pairs(dscores_in), layout::tokens(q.data()), T(0),
                              layout::tokens(dk.data()));
}

}  // namespace ldm::ops
