#pragma once
// Training losses with their gradients on the device, with the host's call forms and definitions
// (host.hpp). Forward returns the loss to the host, so it waits for ldm's stream.
//
// MSE, L1 and KL sum their terms in double, each formed in double from the stored values (the
// host evaluates the terms in the value type), so the device agrees with the host op run in
// double to the order of its double sum; CUB's order is fixed, so the value repeats run to run.

#include <cstdint>
#include <string>

#include "ldm/core/cuda/copy.cuh"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/cuda_executor.cuh"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/kernel.hpp"
#include "ldm/expr/math.hpp"
#include "ldm/ops/loss/host.hpp"

namespace ldm::ops {

namespace loss_cuda {

// The sum over i < n of term(i), in double.
template <class Term>
double sum(index_t n, const Term& term) {
  return expr::executor<cuda>::reduce(n, 0.0, term, expr::CombineKernel<expr::reducer::sum>{});
}

template <class T>
struct SquaredError {
  const T* pred;
  const T* target;
  LDM_HD double operator()(index_t i) const {
    const double d = double(pred[i]) - double(target[i]);
    return d * d;
  }
};

template <class T>
struct AbsoluteError {
  const T* pred;
  const T* target;
  LDM_HD double operator()(index_t i) const {
    return math::abs(double(pred[i]) - double(target[i]));
  }
};

template <class T>
struct KlTerm {
  const T* mean;
  const T* logvar;
  LDM_HD double operator()(index_t i) const {
    const double m = double(mean[i]), lv = double(logvar[i]);
    return m * m + math::exp(lv) - 1 - lv;
  }
};

// Labels are checked on the host, as the host op checks them: they are few.
template <index_t N, index_t K>
void require_labels(View<const std::int32_t, Shape<N>, cuda> labels) {
  const Tensor<std::int32_t, Shape<N>> host_labels = to_host(labels);
  detail::require_labels<N, K>(host_labels.view());
}

}  // namespace loss_cuda

template <class T, ShapeType S>
double mse_forward(View<const T, S, cuda> pred, View<const T, S, cuda> target) {
  return loss_cuda::sum(S::size, loss_cuda::SquaredError<T>{pred.data(), target.data()}) /
         double(S::size);
}

template <class T, ShapeType S>
void mse_backward(View<const T, S, cuda> pred, View<const T, S, cuda> target, double upstream,
                  View<T, S, cuda> dpred) {
  dpred = (pred - target) * (2 * upstream / double(S::size));
}

template <class T, ShapeType S>
double l1_forward(View<const T, S, cuda> pred, View<const T, S, cuda> target) {
  return loss_cuda::sum(S::size, loss_cuda::AbsoluteError<T>{pred.data(), target.data()}) /
         double(S::size);
}

template <class T, ShapeType S>
void l1_backward(View<const T, S, cuda> pred, View<const T, S, cuda> target, double upstream,
                 View<T, S, cuda> dpred) {
  dpred = expr::make_unary(pred - target, detail::signum{}) * (upstream / double(S::size));
}

template <class T, ShapeType S>
double kl_forward(View<const T, S, cuda> mean, View<const T, S, cuda> logvar) {
  const double total = loss_cuda::sum(S::size, loss_cuda::KlTerm<T>{mean.data(), logvar.data()});
  return 0.5 * total / double(batch_of<S>);
}

template <class T, ShapeType S>
void kl_backward(View<const T, S, cuda> mean, View<const T, S, cuda> logvar, double upstream,
                 View<T, S, cuda> dmean, View<T, S, cuda> dlogvar) {
  const double per_sample = upstream / double(batch_of<S>);
  dmean = mean * per_sample;
  dlogvar = (exp(logvar) - 1.0) * (0.5 * per_sample);
}

// One thread per row computes that row's loss; the host adds the N of them in row order, as the
// host op does.
template <class T, index_t N, index_t K>
double cross_entropy_forward(View<const T, Shape<N, K>, cuda> logits,
                             View<const std::int32_t, Shape<N>, cuda> labels) {
  loss_cuda::require_labels<N, K>(labels);
  Tensor<double, Shape<N>, cuda> rows;
  const T* lp = logits.data();
  const std::int32_t* yp = labels.data();
  double* rp = rows.data();
  expr::executor<cuda>::for_each(N, [=] __device__(index_t n) {
    const T* row = lp + n * K;
    rp[n] = detail::log_sum_exp<T, K>(row) - double(row[yp[n]]);
  });
  const Tensor<double, Shape<N>> host_rows = to_host(View<const double, Shape<N>, cuda>(rows));
  double total = 0;
  for (index_t n = 0; n < N; ++n)
    total += host_rows[n];
  return total / double(N);
}

// dlogits = upstream * (softmax(logits) - onehot(labels)) / N, overwritten; rows are short, so
// each element computes its row's normaliser again.
template <class T, index_t N, index_t K>
void cross_entropy_backward(View<const T, Shape<N, K>, cuda> logits,
                            View<const std::int32_t, Shape<N>, cuda> labels, double upstream,
                            View<T, Shape<N, K>, cuda> dlogits) {
  loss_cuda::require_labels<N, K>(labels);
  const double scale = upstream / double(N);
  const T* lp = logits.data();
  const std::int32_t* yp = labels.data();
  T* dp = dlogits.data();
  expr::executor<cuda>::for_each(N * K, [=] __device__(index_t i) {
    const index_t n = i / K, k = i % K;
    const double log_total = detail::log_sum_exp<T, K>(lp + n * K);
    const double target = k == yp[n] ? 1.0 : 0.0;
    dp[i] = T(scale * (math::exp(double(lp[i]) - log_total) - target));
  });
}

}  // namespace ldm::ops
