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
// autoencoder it is attached to.
//
// One body serves every memory space: each stage is a pass of one work item per output element
// over the whole batch, run by the space's executor, and each sample's mean goes through
// sample_sums. The window is separable, so a 2-D filter is a filter along W (into "rows") and
// then along H; every filter adds its 11 terms in one fixed order, and the backward's transposed
// filters gather in the order a scatter would add. The intermediate maps are batch-wide double
// tensors, laid out [sample][map][row][column][channel]: rows (the five moments filtered along W),
// the SSIM map or its three derivative maps, and, in backward, those filtered back along H.

#include <cmath>
#include <cstddef>

#include "ldm/core/macros.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/executor.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/train/sample_sums.hpp"

namespace ldm::train {

namespace detail {

inline constexpr index_t kSsimWindow = 11;
inline constexpr double kSsimSigma = 1.5;
inline constexpr double kSsimRange = 2.0;
inline constexpr double kSsimC1 = (0.01 * kSsimRange) * (0.01 * kSsimRange);
inline constexpr double kSsimC2 = (0.03 * kSsimRange) * (0.03 * kSsimRange);

// The 1-D window, by value so that a kernel takes it as an argument; the 2-D window is its outer
// product with itself.
struct SsimWindow {
  double g[kSsimWindow];
};

inline SsimWindow ssim_window() {
  SsimWindow window;
  double total = 0;
  for (index_t k = 0; k < kSsimWindow; ++k) {
    const double offset = double(k - kSsimWindow / 2);
    window.g[k] = std::exp(-offset * offset / (2 * kSsimSigma * kSsimSigma));
    total += window.g[k];
  }
  for (double& v : window.g)
    v /= total;
  return window;
}

// The extents of one sample's maps: the local statistics at every valid window position, each an
// (H - 10) x (W - 10) x C map, and the maps filtered along W only.
template <index_t H, index_t W, index_t C>
struct SsimExtents {
  static_assert(H >= kSsimWindow && W >= kSsimWindow,
                "ldm::train::ssim: images must be at least as large as the 11x11 window");
  static constexpr index_t hv = H - kSsimWindow + 1, wv = W - kSsimWindow + 1;
  static constexpr index_t positions = hv * wv * C;
  // A map filtered along W only (a moment's rows, or a gradient map's columns): H rows of
  // wv * C values.
  static constexpr index_t filtered_row = wv * C, filtered_plane = H * filtered_row;
  enum Moment { mx, my, sxx, syy, sxy, kMoments };
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

// The five moments of every sample filtered along W: rows[n][moment][h][j][c], j < wv.
template <class T, index_t H, index_t W, index_t C>
struct SsimRowsPass {
  using Extents = SsimExtents<H, W, C>;
  const T* x;
  const T* y;
  double* rows;
  SsimWindow window;

  LDM_HD void operator()(index_t i) const {
    constexpr index_t wv = Extents::wv, plane = Extents::filtered_plane;
    const index_t c = i % C, j = i / C % wv, h = i / (C * wv) % H, n = i / plane;
    const index_t at = ((n * H + h) * W + j) * C + c;
    double m[Extents::kMoments] = {};
    for (index_t k = 0; k < kSsimWindow; ++k) {
      const double a = double(x[at + k * C]), b = double(y[at + k * C]), g = window.g[k];
      m[Extents::mx] += g * a;
      m[Extents::my] += g * b;
      m[Extents::sxx] += g * a * a;
      m[Extents::syy] += g * b * b;
      m[Extents::sxy] += g * a * b;
    }
    double* out = rows + n * Extents::kMoments * plane + (h * wv + j) * C + c;
    for (int moment = 0; moment < Extents::kMoments; ++moment)
      out[moment * plane] = m[moment];
  }
};

// The five moments at position p of sample n: the rows filtered along H.
template <index_t H, index_t W, index_t C>
LDM_HD void ssim_moments_at(const double* rows, const SsimWindow& window, index_t n, index_t p,
                            double* m) {
  using Extents = SsimExtents<H, W, C>;
  constexpr index_t row = Extents::filtered_row, plane = Extents::filtered_plane;
  const index_t i = p / row, jc = p % row;
  const double* in = rows + n * Extents::kMoments * plane + i * row + jc;
  for (int moment = 0; moment < Extents::kMoments; ++moment) {
    m[moment] = 0;
    for (index_t k = 0; k < kSsimWindow; ++k)
      m[moment] += window.g[k] * in[moment * plane + k * row];
  }
}

// The SSIM map: map[n][position].
template <index_t H, index_t W, index_t C>
struct SsimMapPass {
  using Extents = SsimExtents<H, W, C>;
  const double* rows;
  double* map;
  SsimWindow window;

  LDM_HD void operator()(index_t i) const {
    double m[Extents::kMoments];
    ssim_moments_at<H, W, C>(rows, window, i / Extents::positions, i % Extents::positions, m);
    map[i] =
        SsimTerms(m[Extents::mx], m[Extents::my], m[Extents::sxx], m[Extents::syy], m[Extents::sxy])
            .ssim;
  }
};

template <class T>
struct SsimLossFinish {
  T* loss;
  double positions;
  LDM_HD void operator()(index_t n, double total) const { loss[n] = T(1 - total / positions); }
};

enum SsimGradientMap : int { kSsimDmx, kSsimDsxx, kSsimDsxy, kSsimGradientMaps };

// d loss / d (mu_x, s_xx, s_xy) at every position, scaled by the sample's upstream gradient:
// maps[n][map][position].
template <class T, index_t H, index_t W, index_t C>
struct SsimGradientMapsPass {
  using Extents = SsimExtents<H, W, C>;
  const double* rows;
  const T* upstream;
  double* maps;
  SsimWindow window;

  LDM_HD void operator()(index_t i) const {
    const index_t n = i / Extents::positions, p = i % Extents::positions;
    const double scale = -double(upstream[n]) / double(Extents::positions);
    double m[Extents::kMoments];
    ssim_moments_at<H, W, C>(rows, window, n, p, m);
    const double mx = m[Extents::mx], my = m[Extents::my];
    const SsimTerms t(mx, my, m[Extents::sxx], m[Extents::syy], m[Extents::sxy]);
    const double b = t.b1 * t.b2;
    double* out = maps + n * kSsimGradientMaps * Extents::positions + p;
    out[kSsimDmx * Extents::positions] =
        scale * (2 * my * (t.a2 - t.a1) / b - 2 * mx * t.ssim * (1 / t.b1 - 1 / t.b2));
    out[kSsimDsxx * Extents::positions] = scale * -t.ssim / t.b2;
    out[kSsimDsxy * Extents::positions] = scale * 2 * t.a1 / b;
  }
};

// The derivative maps through the transposed window along H: columns[n][map][h][j][c]. Each
// output gathers the positions that read it, i ascending.
template <index_t H, index_t W, index_t C>
struct SsimColumnsPass {
  using Extents = SsimExtents<H, W, C>;
  const double* maps;
  double* columns;
  SsimWindow window;

  LDM_HD void operator()(index_t i) const {
    constexpr index_t row = Extents::filtered_row, plane = Extents::filtered_plane;
    const index_t jc = i % row, h = i / row % H, n = i / plane;
    for (int m = 0; m < kSsimGradientMaps; ++m) {
      const double* in = maps + (n * kSsimGradientMaps + m) * Extents::positions + jc;
      double s = 0;
      for (index_t k = kSsimWindow - 1; k >= 0; --k) {
        const index_t at = h - k;
        if (at >= 0 && at < Extents::hv) s += window.g[k] * in[at * row];
      }
      columns[(n * kSsimGradientMaps + m) * plane + h * row + jc] = s;
    }
  }
};

// The transposed window along W, then the chain rule through mu_x, s_xx = E[x^2], s_xy = E[xy].
template <class T, index_t H, index_t W, index_t C>
struct SsimInputGradientPass {
  using Extents = SsimExtents<H, W, C>;
  const double* columns;
  const T* x;
  const T* y;
  T* dx;
  SsimWindow window;

  LDM_HD void operator()(index_t i) const {
    const index_t c = i % C, w = i / C % W, h = i / (C * W) % H, n = i / (H * W * C);
    double full[kSsimGradientMaps];
    for (int m = 0; m < kSsimGradientMaps; ++m) {
      const double* in = columns + (n * kSsimGradientMaps + m) * Extents::filtered_plane +
                         h * Extents::filtered_row + c;
      double s = 0;
      for (index_t k = kSsimWindow - 1; k >= 0; --k) {
        const index_t j = w - k;
        if (j >= 0 && j < Extents::wv) s += window.g[k] * in[j * C];
      }
      full[m] = s;
    }
    dx[i] = T(full[kSsimDmx] + 2 * double(x[i]) * full[kSsimDsxx] + double(y[i]) * full[kSsimDsxy]);
  }
};

// The batch-wide maps of ssim_loss_forward and ssim_loss_backward.
template <index_t N, index_t H, index_t W, index_t C, class Space>
struct SsimMaps {
  using Extents = SsimExtents<H, W, C>;
  using Rows = Tensor<double, Shape<N, Extents::kMoments, Extents::filtered_plane>, Space>;
  using Map = Tensor<double, Shape<N, Extents::positions>, Space>;
  using GradientMaps = Tensor<double, Shape<N, kSsimGradientMaps, Extents::positions>, Space>;
  using Columns = Tensor<double, Shape<N, kSsimGradientMaps, Extents::filtered_plane>, Space>;
};

// The moments filtered along W, for the whole batch.
template <class T, index_t N, index_t H, index_t W, index_t C, class Space>
auto ssim_rows(View<const T, Shape<N, H, W, C>, Space> x, View<const T, Shape<N, H, W, C>, Space> y,
               const SsimWindow& window) {
  typename SsimMaps<N, H, W, C, Space>::Rows rows(uninitialized);
  expr::executor<Space>::for_each(
      N * SsimExtents<H, W, C>::filtered_plane,
      SsimRowsPass<T, H, W, C>{x.data(), y.data(), rows.data(), window});
  return rows;
}

}  // namespace detail

// loss[n] = 1 - SSIM(reconstruction[n], target[n]), overwritten.
template <class T, index_t N, index_t H, index_t W, index_t C, class Space>
void ssim_loss_forward(View<const T, Shape<N, H, W, C>, Space> reconstruction,
                       View<const T, Shape<N, H, W, C>, Space> target,
                       View<T, Shape<N>, Space> loss) {
  using Extents = detail::SsimExtents<H, W, C>;
  const auto window = detail::ssim_window();
  const auto rows = detail::ssim_rows(reconstruction, target, window);
  typename detail::SsimMaps<N, H, W, C, Space>::Map map(uninitialized);
  expr::executor<Space>::for_each(N * Extents::positions,
                                  detail::SsimMapPass<H, W, C>{rows.data(), map.data(), window});
  detail::sample_sums(Space{}, map.data(), N, Extents::positions,
                      detail::SsimLossFinish<T>{loss.data(), double(Extents::positions)});
}

// dreconstruction = d(sum_n upstream[n] * loss[n]) / d reconstruction, overwritten.
//
// With mu_x, s_xx = E[x^2] and s_xy = E[xy] the window means at position p, each pixel's gradient
// is the window-weighted sum over the positions that read it of dS/dmu_x + 2 x dS/ds_xx
// + y dS/ds_xy: three maps filtered with the transposed (zero-padded, full) window.
template <class T, index_t N, index_t H, index_t W, index_t C, class Space>
void ssim_loss_backward(View<const T, Shape<N, H, W, C>, Space> reconstruction,
                        View<const T, Shape<N, H, W, C>, Space> target,
                        View<const T, Shape<N>, Space> upstream,
                        View<T, Shape<N, H, W, C>, Space> dreconstruction) {
  using Extents = detail::SsimExtents<H, W, C>;
  using Maps = detail::SsimMaps<N, H, W, C, Space>;
  const auto window = detail::ssim_window();
  const auto rows = detail::ssim_rows(reconstruction, target, window);
  typename Maps::GradientMaps maps(uninitialized);
  expr::executor<Space>::for_each(
      N * Extents::positions,
      detail::SsimGradientMapsPass<T, H, W, C>{rows.data(), upstream.data(), maps.data(), window});
  typename Maps::Columns columns(uninitialized);
  expr::executor<Space>::for_each(
      N * Extents::filtered_plane,
      detail::SsimColumnsPass<H, W, C>{maps.data(), columns.data(), window});
  expr::executor<Space>::for_each(
      N * H * W * C,
      detail::SsimInputGradientPass<T, H, W, C>{columns.data(), reconstruction.data(),
                                                target.data(), dreconstruction.data(), window});
}

// The bytes of the maps ssim_loss_forward and ssim_loss_backward hold at their peak (backward's:
// the rows, the gradient maps and the columns).
template <ShapeType Images>
inline constexpr std::size_t ssim_scratch_bytes = [] {
  using Maps = detail::SsimMaps<Images::extents[0], Images::extents[1], Images::extents[2],
                                Images::extents[3], host>;
  return nn::bytes_of<typename Maps::Rows, typename Maps::GradientMaps, typename Maps::Columns>;
}();

}  // namespace ldm::train
