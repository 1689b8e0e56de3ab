#pragma once
// 1 - SSIM and its gradient on the device: the host path (ssim.hpp) split into one pass per
// stage, each a thread per output element over the whole batch, in double as on the host.
// Every filter sums its window in the host's order, and each sample's mean goes through
// sample_sums (a fixed tree), so results are reproducible and agree with the host's to rounding.
//
// Intermediate maps are batch-wide double buffers, laid out [sample][map][row][column][channel]:
// rows (the five moments filtered along W), the SSIM map or its three derivative maps, and, in
// backward, those filtered back along H.

#include "ldm/core/buffer.hpp"
#include "ldm/core/cuda/memory.cuh"
#include "ldm/core/macros.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/expr/cuda_executor.cuh"
#include "ldm/train/sample_sums_cuda.cuh"
#include "ldm/train/ssim.hpp"

namespace ldm::train {

namespace detail {

// The 1-D window by value, so that kernels get it as an argument.
struct SsimWindowWeights {
  double g[kSsimWindow];
};

inline SsimWindowWeights ssim_window_weights() {
  const auto window = ssim_window();
  SsimWindowWeights weights;
  for (index_t k = 0; k < kSsimWindow; ++k)
    weights.g[k] = window[k];
  return weights;
}

// The five moments of every sample filtered along W: rows[n][moment][h][j][c], j < wv.
template <class T, index_t H, index_t W, index_t C>
struct SsimRowsPass {
  using Stats = SsimStatistics<H, W, C>;
  const T* x;
  const T* y;
  double* rows;
  SsimWindowWeights window;

  LDM_HD void operator()(index_t i) const {
    constexpr index_t wv = Stats::wv, plane = Stats::filtered_plane;
    const index_t c = i % C, j = i / C % wv, h = i / (C * wv) % H, n = i / plane;
    const index_t at = ((n * H + h) * W + j) * C + c;
    double m[Stats::kMoments] = {};
    for (index_t k = 0; k < kSsimWindow; ++k) {
      const double a = double(x[at + k * C]), b = double(y[at + k * C]), g = window.g[k];
      m[Stats::mx] += g * a;
      m[Stats::my] += g * b;
      m[Stats::sxx] += g * a * a;
      m[Stats::syy] += g * b * b;
      m[Stats::sxy] += g * a * b;
    }
    double* out = rows + n * Stats::kMoments * plane + (h * wv + j) * C + c;
    for (int moment = 0; moment < Stats::kMoments; ++moment)
      out[moment * plane] = m[moment];
  }
};

// The five moments at position p (of Stats::positions) of sample n: the rows filtered along H.
template <index_t H, index_t W, index_t C>
LDM_HD void ssim_moments_at(const double* rows, const SsimWindowWeights& window, index_t n,
                            index_t p, double* m) {
  using Stats = SsimStatistics<H, W, C>;
  constexpr index_t row = Stats::filtered_row, plane = Stats::filtered_plane;
  const index_t i = p / row, jc = p % row;
  const double* in = rows + n * Stats::kMoments * plane + i * row + jc;
  for (int moment = 0; moment < Stats::kMoments; ++moment) {
    m[moment] = 0;
    for (index_t k = 0; k < kSsimWindow; ++k)
      m[moment] += window.g[k] * in[moment * plane + k * row];
  }
}

template <index_t H, index_t W, index_t C>
struct SsimMapPass {
  using Stats = SsimStatistics<H, W, C>;
  const double* rows;
  double* map;
  SsimWindowWeights window;

  LDM_HD void operator()(index_t i) const {
    double m[Stats::kMoments];
    ssim_moments_at<H, W, C>(rows, window, i / Stats::positions, i % Stats::positions, m);
    map[i] =
        SsimTerms(m[Stats::mx], m[Stats::my], m[Stats::sxx], m[Stats::syy], m[Stats::sxy]).ssim;
  }
};

template <class T>
struct SsimLossFinish {
  T* loss;
  double positions;
  __device__ void operator()(index_t n, double total) const { loss[n] = T(1 - total / positions); }
};

enum SsimGradientMap : int { kSsimDmx, kSsimDsxx, kSsimDsxy, kSsimGradientMaps };

// d loss / d (mu_x, s_xx, s_xy) at every position, scaled by the sample's upstream gradient:
// maps[n][map][position].
template <class T, index_t H, index_t W, index_t C>
struct SsimGradientMapsPass {
  using Stats = SsimStatistics<H, W, C>;
  const double* rows;
  const T* upstream;
  double* maps;
  SsimWindowWeights window;

  LDM_HD void operator()(index_t i) const {
    const index_t n = i / Stats::positions, p = i % Stats::positions;
    const double scale = -double(upstream[n]) / double(Stats::positions);
    double m[Stats::kMoments];
    ssim_moments_at<H, W, C>(rows, window, n, p, m);
    const double mx = m[Stats::mx], my = m[Stats::my];
    const SsimTerms t(mx, my, m[Stats::sxx], m[Stats::syy], m[Stats::sxy]);
    const double b = t.b1 * t.b2;
    double* out = maps + n * kSsimGradientMaps * Stats::positions + p;
    out[kSsimDmx * Stats::positions] =
        scale * (2 * my * (t.a2 - t.a1) / b - 2 * mx * t.ssim * (1 / t.b1 - 1 / t.b2));
    out[kSsimDsxx * Stats::positions] = scale * -t.ssim / t.b2;
    out[kSsimDsxy * Stats::positions] = scale * 2 * t.a1 / b;
  }
};

// The derivative maps through the transposed window along H: columns[n][map][h][j][c]. Each
// output gathers the positions that read it, in the order the host scatters them (i ascending).
template <index_t H, index_t W, index_t C>
struct SsimColumnsPass {
  using Stats = SsimStatistics<H, W, C>;
  const double* maps;
  double* columns;
  SsimWindowWeights window;

  LDM_HD void operator()(index_t i) const {
    constexpr index_t row = Stats::filtered_row, plane = Stats::filtered_plane;
    const index_t jc = i % row, h = i / row % H, n = i / plane;
    for (int m = 0; m < kSsimGradientMaps; ++m) {
      const double* in = maps + (n * kSsimGradientMaps + m) * Stats::positions + jc;
      double s = 0;
      for (index_t k = kSsimWindow - 1; k >= 0; --k) {
        const index_t at = h - k;
        if (at >= 0 && at < Stats::hv) s += window.g[k] * in[at * row];
      }
      columns[(n * kSsimGradientMaps + m) * plane + h * row + jc] = s;
    }
  }
};

// The transposed window along W, then the chain rule through mu_x, s_xx = E[x^2], s_xy = E[xy].
template <class T, index_t H, index_t W, index_t C>
struct SsimInputGradientPass {
  using Stats = SsimStatistics<H, W, C>;
  const double* columns;
  const T* x;
  const T* y;
  T* dx;
  SsimWindowWeights window;

  LDM_HD void operator()(index_t i) const {
    const index_t c = i % C, w = i / C % W, h = i / (C * W) % H, n = i / (H * W * C);
    double full[kSsimGradientMaps];
    for (int m = 0; m < kSsimGradientMaps; ++m) {
      const double* in = columns + (n * kSsimGradientMaps + m) * Stats::filtered_plane +
                         h * Stats::filtered_row + c;
      double s = 0;
      for (index_t k = kSsimWindow - 1; k >= 0; --k) {
        const index_t j = w - k;
        if (j >= 0 && j < Stats::wv) s += window.g[k] * in[j * C];
      }
      full[m] = s;
    }
    dx[i] = T(full[kSsimDmx] + 2 * double(x[i]) * full[kSsimDsxx] + double(y[i]) * full[kSsimDsxy]);
  }
};

// The moments filtered along W, for the whole batch.
template <class T, index_t N, index_t H, index_t W, index_t C>
Buffer<double, cuda> ssim_rows(const T* x, const T* y, const SsimWindowWeights& window) {
  using Stats = SsimStatistics<H, W, C>;
  Buffer<double, cuda> rows(std::size_t(N * Stats::kMoments * Stats::filtered_plane));
  expr::executor<cuda>::for_each(N * Stats::filtered_plane,
                                 SsimRowsPass<T, H, W, C>{x, y, rows.data(), window});
  return rows;
}

}  // namespace detail

// loss[n] = 1 - SSIM(reconstruction[n], target[n]), overwritten; the device twin of the host op.
template <class T, index_t N, index_t H, index_t W, index_t C>
void ssim_loss_forward(View<const T, Shape<N, H, W, C>, cuda> reconstruction,
                       View<const T, Shape<N, H, W, C>, cuda> target,
                       View<T, Shape<N>, cuda> loss) {
  using Stats = detail::SsimStatistics<H, W, C>;
  const auto window = detail::ssim_window_weights();
  const auto rows = detail::ssim_rows<T, N, H, W, C>(reconstruction.data(), target.data(), window);
  Buffer<double, cuda> map(std::size_t(N * Stats::positions));
  expr::executor<cuda>::for_each(N * Stats::positions,
                                 detail::SsimMapPass<H, W, C>{rows.data(), map.data(), window});
  detail::sample_sums(map.data(), N, Stats::positions,
                      detail::SsimLossFinish<T>{loss.data(), double(Stats::positions)});
}

// dreconstruction = d(sum_n upstream[n] * loss[n]) / d reconstruction, overwritten.
template <class T, index_t N, index_t H, index_t W, index_t C>
void ssim_loss_backward(View<const T, Shape<N, H, W, C>, cuda> reconstruction,
                        View<const T, Shape<N, H, W, C>, cuda> target,
                        View<const T, Shape<N>, cuda> upstream,
                        View<T, Shape<N, H, W, C>, cuda> dreconstruction) {
  using Stats = detail::SsimStatistics<H, W, C>;
  using Columns = detail::SsimColumnsPass<H, W, C>;
  constexpr index_t maps_per_sample = detail::kSsimGradientMaps;
  const auto window = detail::ssim_window_weights();
  const T* x = reconstruction.data();
  const T* y = target.data();
  const auto rows = detail::ssim_rows<T, N, H, W, C>(x, y, window);
  Buffer<double, cuda> maps(std::size_t(N * maps_per_sample * Stats::positions));
  expr::executor<cuda>::for_each(
      N * Stats::positions,
      detail::SsimGradientMapsPass<T, H, W, C>{rows.data(), upstream.data(), maps.data(), window});
  Buffer<double, cuda> columns(std::size_t(N * maps_per_sample * Stats::filtered_plane));
  expr::executor<cuda>::for_each(N * Stats::filtered_plane,
                                 Columns{maps.data(), columns.data(), window});
  expr::executor<cuda>::for_each(
      N * H * W * C, detail::SsimInputGradientPass<T, H, W, C>{columns.data(), x, y,
                                                               dreconstruction.data(), window});
}

}  // namespace ldm::train
