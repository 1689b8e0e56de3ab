#pragma once
// One tap's term of LPIPS (train/lpips.hpp) and its gradient on the host: every pixel's feature
// vector divided by (its L2 norm over channels + 1e-10), the squared difference of the two images'
// vectors weighted by the 1x1 head lin{k}, the mean over pixels. In a .cu unit, lpips_cuda.cuh
// adds the same functions over device views.

#include <array>
#include <cmath>

#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::train::detail {

inline constexpr double kLpipsEps = 1e-10;

inline constexpr index_t kLpipsThreshold = expr::executor<host>::parallel_threshold;

// One tap's term of the distance, added to distance[n]: features holds the reconstruction's
// (samples 0..N) and the target's (N..2N) activations.
template <class T, index_t B, index_t H, index_t W, index_t C, index_t N>
void lpips_layer_forward(View<const T, Shape<B, H, W, C>> features, View<const T, Shape<C>> lin,
                         View<T, Shape<N>> distance) {
  static_assert(B == 2 * N);
  const T* f = features.data();
  const T* wp = lin.data();
  T* d = distance.data();
#pragma omp parallel for schedule(static) if (N * H * W * C >= kLpipsThreshold)
  for (index_t n = 0; n < N; ++n) {
    double total = 0;
    for (index_t pixel = 0; pixel < H * W; ++pixel) {
      const T* x = f + (n * H * W + pixel) * C;
      const T* y = f + ((N + n) * H * W + pixel) * C;
      double xx = 0, yy = 0;
      for (index_t c = 0; c < C; ++c) {
        xx += double(x[c]) * double(x[c]);
        yy += double(y[c]) * double(y[c]);
      }
      const double rx = 1 / (std::sqrt(xx) + kLpipsEps), ry = 1 / (std::sqrt(yy) + kLpipsEps);
      double s = 0;
      for (index_t c = 0; c < C; ++c) {
        const double diff = double(x[c]) * rx - double(y[c]) * ry;
        s += double(wp[c]) * diff * diff;
      }
      total += s;
    }
    d[n] = T(double(d[n]) + total / double(H * W));
  }
}

// grad += d(sum_n upstream[n] * term[n]) / d(reconstruction's features) for one tap's term.
// With u = x / (|x| + eps) and a = d term / d u: d term / d x = a / (|x| + eps)
// - x (a . x) / (|x| (|x| + eps)^2); a feature vector of zeros gets the first part only.
template <class T, index_t B, index_t H, index_t W, index_t C, index_t N>
void lpips_layer_backward(View<const T, Shape<B, H, W, C>> features, View<const T, Shape<C>> lin,
                          View<const T, Shape<N>> upstream, View<T, Shape<N, H, W, C>> grad) {
  static_assert(B == 2 * N);
  const T* f = features.data();
  const T* wp = lin.data();
  const T* up = upstream.data();
  T* gp = grad.data();
#pragma omp parallel for schedule(static) if (N * H * W * C >= kLpipsThreshold)
  for (index_t n = 0; n < N; ++n) {
    const double scale = 2 * double(up[n]) / double(H * W);
    std::array<double, C> a;
    for (index_t pixel = 0; pixel < H * W; ++pixel) {
      const T* x = f + (n * H * W + pixel) * C;
      const T* y = f + ((N + n) * H * W + pixel) * C;
      T* g = gp + (n * H * W + pixel) * C;
      double xx = 0, yy = 0;
      for (index_t c = 0; c < C; ++c) {
        xx += double(x[c]) * double(x[c]);
        yy += double(y[c]) * double(y[c]);
      }
      const double norm = std::sqrt(xx);
      const double rx = 1 / (norm + kLpipsEps), ry = 1 / (std::sqrt(yy) + kLpipsEps);
      double dot = 0;
      for (index_t c = 0; c < C; ++c) {
        a[c] = scale * double(wp[c]) * (double(x[c]) * rx - double(y[c]) * ry);
        dot += a[c] * double(x[c]);
      }
      const double radial = norm > 0 ? dot * rx * rx / norm : 0.0;
      for (index_t c = 0; c < C; ++c)
        g[c] = T(double(g[c]) + a[c] * rx - double(x[c]) * radial);
    }
  }
}

}  // namespace ldm::train::detail

#if defined(__CUDACC__)
#include "ldm/train/lpips_cuda.cuh"
#endif
