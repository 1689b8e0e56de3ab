#pragma once
// SSIM (Wang, Bovik, Sheikh and Simoncelli 2004), the structural term of the autoencoder loss
// when no LPIPS weights are given, on NHWC images in [-1, 1].
//
// The standard settings: an 11x11 Gaussian window of sigma 1.5 (normalised to sum 1), K1 = 0.01,
// K2 = 0.03 and dynamic range L = 2, so C1 = (0.01 L)^2 and C2 = (0.03 L)^2. Local statistics are
// window-weighted means, variances and the covariance (population form). Windows are valid only,
// unpadded: (H - 10) x (W - 10) positions per channel, as pytorch_msssim computes it and
// skimage's gaussian_weights=True result comes to; padding would pull the border statistics
// towards the padding value. SSIM of a sample is the mean of the SSIM map over its channels and
// positions; the loss term is 1 - SSIM.
//
// Everything is computed in double whatever T: a local variance is E[x^2] - E[x]^2, which loses
// most of its digits in float where the image is flat, and the whole op costs little beside the
// autoencoder it is attached to. In a .cu unit, ssim_cuda.cuh adds both functions over device
// views, computed the same way.

#include <array>
#include <cmath>
#include <vector>

#include "ldm/core/macros.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/host_executor.hpp"

namespace ldm::train {

namespace detail {

inline constexpr index_t kSsimWindow = 11;
inline constexpr double kSsimSigma = 1.5;
inline constexpr double kSsimRange = 2.0;
inline constexpr double kSsimC1 = (0.01 * kSsimRange) * (0.01 * kSsimRange);
inline constexpr double kSsimC2 = (0.03 * kSsimRange) * (0.03 * kSsimRange);

// The 1-D window; the 2-D window is its outer product with itself.
inline std::array<double, kSsimWindow> ssim_window() {
  std::array<double, kSsimWindow> g;
  double total = 0;
  for (index_t k = 0; k < kSsimWindow; ++k) {
    const double offset = double(k - kSsimWindow / 2);
    g[k] = std::exp(-offset * offset / (2 * kSsimSigma * kSsimSigma));
    total += g[k];
  }
  for (double& v : g)
    v /= total;
  return g;
}

// The local statistics of one sample (x: reconstruction, y: target) at every valid window
// position, each an (H - 10) x (W - 10) x C map.
template <index_t H, index_t W, index_t C>
struct SsimStatistics {
  static_assert(H >= kSsimWindow && W >= kSsimWindow,
                "ldm::train::ssim: images must be at least as large as the 11x11 window");
  static constexpr index_t hv = H - kSsimWindow + 1, wv = W - kSsimWindow + 1;
  static constexpr index_t positions = hv * wv * C;
  // A map filtered along W only (a moment's rows, or a gradient map's columns): H rows of
  // wv * C values.
  static constexpr index_t filtered_row = wv * C, filtered_plane = H * filtered_row;
  enum Moment { mx, my, sxx, syy, sxy, kMoments };

  std::vector<double> moments = std::vector<double>(kMoments * positions);

  // The window is separable: rows first (H x wv), then columns.
  template <class T>
  SsimStatistics(const T* x, const T* y, const std::array<double, kSsimWindow>& g) {
    std::vector<double> rows(kMoments * filtered_plane, 0.0);
    for (index_t h = 0; h < H; ++h)
      for (index_t j = 0; j < wv; ++j) {
        double* out = rows.data() + (h * wv + j) * C;
        for (index_t k = 0; k < kSsimWindow; ++k) {
          const index_t at = (h * W + j + k) * C;
          for (index_t c = 0; c < C; ++c) {
            const double a = double(x[at + c]), b = double(y[at + c]);
            out[mx * filtered_plane + c] += g[k] * a;
            out[my * filtered_plane + c] += g[k] * b;
            out[sxx * filtered_plane + c] += g[k] * a * a;
            out[syy * filtered_plane + c] += g[k] * b * b;
            out[sxy * filtered_plane + c] += g[k] * a * b;
          }
        }
      }
    for (int m = 0; m < kMoments; ++m)
      for (index_t i = 0; i < hv; ++i)
        for (index_t k = 0; k < kSsimWindow; ++k) {
          const double* in = rows.data() + m * filtered_plane + (i + k) * filtered_row;
          double* out = moments.data() + m * positions + i * filtered_row;
          for (index_t jc = 0; jc < filtered_row; ++jc)
            out[jc] += g[k] * in[jc];
        }
  }

  double at(Moment m, index_t p) const { return moments[m * positions + p]; }
};

// The SSIM map's terms at one position.
struct SsimTerms {
  double a1, a2, b1, b2, ssim;
  LDM_HD SsimTerms(double mx, double my, double sxx, double syy, double sxy)
      : a1(2 * mx * my + kSsimC1),
        a2(2 * (sxy - mx * my) + kSsimC2),
        b1(mx * mx + my * my + kSsimC1),
        b2((sxx - mx * mx) + (syy - my * my) + kSsimC2),
        ssim(a1 * a2 / (b1 * b2)) {}
};

inline constexpr index_t kSsimParallelThreshold = 1 << 12;

}  // namespace detail

// loss[n] = 1 - SSIM(reconstruction[n], target[n]), overwritten.
template <class T, index_t N, index_t H, index_t W, index_t C>
void ssim_loss_forward(View<const T, Shape<N, H, W, C>> reconstruction,
                       View<const T, Shape<N, H, W, C>> target, View<T, Shape<N>> loss) {
  using Stats = detail::SsimStatistics<H, W, C>;
  const auto g = detail::ssim_window();
#pragma omp parallel for schedule(static) if (N * H * W * C >= detail::kSsimParallelThreshold)
  for (index_t n = 0; n < N; ++n) {
    const Stats s(reconstruction.sample(n).data(), target.sample(n).data(), g);
    double total = 0;
    for (index_t p = 0; p < Stats::positions; ++p)
      total += detail::SsimTerms(s.at(Stats::mx, p), s.at(Stats::my, p), s.at(Stats::sxx, p),
                                 s.at(Stats::syy, p), s.at(Stats::sxy, p))
                   .ssim;
    loss[n] = T(1 - total / double(Stats::positions));
  }
}

// dreconstruction = d(sum_n upstream[n] * loss[n]) / d reconstruction, overwritten.
//
// With mu_x, s_xx = E[x^2] and s_xy = E[xy] the window means at position p, each pixel's gradient
// is the window-weighted sum over the positions that read it of dS/dmu_x + 2 x dS/ds_xx
// + y dS/ds_xy: three maps filtered with the transposed (zero-padded, full) window.
template <class T, index_t N, index_t H, index_t W, index_t C>
void ssim_loss_backward(View<const T, Shape<N, H, W, C>> reconstruction,
                        View<const T, Shape<N, H, W, C>> target, View<const T, Shape<N>> upstream,
                        View<T, Shape<N, H, W, C>> dreconstruction) {
  using Stats = detail::SsimStatistics<H, W, C>;
  constexpr index_t hv = Stats::hv, wv = Stats::wv;
  const auto g = detail::ssim_window();
#pragma omp parallel for schedule(static) if (N * H * W * C >= detail::kSsimParallelThreshold)
  for (index_t n = 0; n < N; ++n) {
    const T* x = reconstruction.sample(n).data();
    const T* y = target.sample(n).data();
    const Stats s(x, y, g);
    const double scale = -double(upstream[n]) / double(Stats::positions);
    // d loss / d (mu_x, s_xx, s_xy) at each position.
    enum { dmx, dsxx, dsxy, kMaps };
    std::vector<double> maps(kMaps * Stats::positions);
    for (index_t p = 0; p < Stats::positions; ++p) {
      const double mx = s.at(Stats::mx, p), my = s.at(Stats::my, p);
      const detail::SsimTerms t(mx, my, s.at(Stats::sxx, p), s.at(Stats::syy, p),
                                s.at(Stats::sxy, p));
      const double b = t.b1 * t.b2;
      maps[dmx * Stats::positions + p] =
          scale * (2 * my * (t.a2 - t.a1) / b - 2 * mx * t.ssim * (1 / t.b1 - 1 / t.b2));
      maps[dsxx * Stats::positions + p] = scale * -t.ssim / t.b2;
      maps[dsxy * Stats::positions + p] = scale * 2 * t.a1 / b;
    }
    // The transposed window, columns first (H x wv), then rows (H x W).
    std::vector<double> columns(kMaps * Stats::filtered_plane, 0.0), full(kMaps * H * W * C, 0.0);
    for (int m = 0; m < kMaps; ++m)
      for (index_t i = 0; i < hv; ++i)
        for (index_t k = 0; k < detail::kSsimWindow; ++k) {
          const double* in = maps.data() + m * Stats::positions + i * Stats::filtered_row;
          double* out = columns.data() + m * Stats::filtered_plane + (i + k) * Stats::filtered_row;
          for (index_t jc = 0; jc < Stats::filtered_row; ++jc)
            out[jc] += g[k] * in[jc];
        }
    for (int m = 0; m < kMaps; ++m)
      for (index_t h = 0; h < H; ++h)
        for (index_t j = 0; j < wv; ++j) {
          const double* in = columns.data() + m * Stats::filtered_plane + (h * wv + j) * C;
          for (index_t k = 0; k < detail::kSsimWindow; ++k) {
            double* out = full.data() + m * H * W * C + (h * W + j + k) * C;
            for (index_t c = 0; c < C; ++c)
              out[c] += g[k] * in[c];
          }
        }
    T* dx = dreconstruction.sample(n).data();
    constexpr index_t pixels = H * W * C;
    for (index_t i = 0; i < pixels; ++i)
      dx[i] = T(full[dmx * pixels + i] + 2 * double(x[i]) * full[dsxx * pixels + i] +
                double(y[i]) * full[dsxy * pixels + i]);
  }
}

}  // namespace ldm::train

// A .cu unit gets the device overloads too.
#if defined(__CUDACC__)
#include "ldm/train/ssim_cuda.cuh"
#endif
