#pragma once
// Image-to-image quality measures for reconstructions, on NHWC images in [-1, 1], reported as
// the mean over the set of each image's value.
//
// Both measures see images as they would be saved: clamped to [-1, 1] and mapped to [0, 1]
// (diffusers' postprocessing, (x / 2 + 0.5).clamp(0, 1)), so that values match what
// torchmetrics or skimage report on the saved files with data_range = 1.
// Images holding a NaN or an infinity are an ldm::Error rather than a NaN or clamped measure.

#include <algorithm>
#include <cmath>
#include <vector>

#include "ldm/core/tensor.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/reduce.hpp"
#include "ldm/nn/finite.hpp"
#include "ldm/train/ssim.hpp"

namespace ldm::eval {

namespace detail {
// Clamping would turn an infinity into a valid pixel and leave a NaN to poison the mean.
template <class T, ShapeType S>
void require_finite_images(const char* measure, View<const T, S> a, View<const T, S> b) {
  if (!nn::all_finite(a.data(), std::size_t(S::size)))
    fail(measure, ": the first images hold a NaN or an infinity");
  if (!nn::all_finite(b.data(), std::size_t(S::size)))
    fail(measure, ": the second images hold a NaN or an infinity");
}
}  // namespace detail

// A pair of identical images has an infinite PSNR, which would make any mean over a set
// infinite and hide every other pair; each image's PSNR is capped here instead (an MSE of 1e-10
// on the [0, 1] scale, far below what float images can resolve).
inline constexpr double psnr_cap_db = 100.0;

// The mean over images of 10 log10(1 / MSE), the MSE taken over one image's pixels and channels
// on the [0, 1] scale, each image's value capped at psnr_cap_db.
template <class T, index_t N, index_t H, index_t W, index_t C>
double psnr(View<const T, Shape<N, H, W, C>> a, View<const T, Shape<N, H, W, C>> b) {
  detail::require_finite_images("ldm::eval::psnr", a, b);
  Tensor<double, Shape<N>> mse;
  // A difference of [-1, 1] images is twice the difference on [0, 1].
  mse = mean<1, 2, 3>(square(clamp(a, -1.0, 1.0) - clamp(b, -1.0, 1.0)) * 0.25);
  double total = 0;
  for (index_t n = 0; n < N; ++n)
    total += std::min(-10 * std::log10(mse[n]), psnr_cap_db);
  return total / double(N);
}

// The mean over images of SSIM with train/ssim.hpp's window and constants, on the [0, 1] scale.
// train::ssim_loss_forward works on [-1, 1] with L = 2; SSIM is unchanged when images and L are
// scaled together, so feeding it x + 1 (the [0, 1] image scaled by 2) with L = 2 gives SSIM on
// [0, 1] with L = 1. The shift matters: the luminance term depends on the means themselves.
template <class T, index_t N, index_t H, index_t W, index_t C>
double ssim(View<const T, Shape<N, H, W, C>> a, View<const T, Shape<N, H, W, C>> b) {
  detail::require_finite_images("ldm::eval::ssim", a, b);
  using Image = Shape<1, H, W, C>;
  std::vector<double> per_image(static_cast<std::size_t>(N));
  // One image at a time keeps the shifted copies small whatever the set's size; images are
  // independent, so they are spread over threads here.
#pragma omp parallel for schedule(dynamic)
  for (index_t n = 0; n < N; ++n) {
    Tensor<double, Image> x, y;
    Tensor<double, Shape<1>> loss;
    x.template reshape<Shape<H, W, C>>() = clamp(a.sample(n), -1.0, 1.0) + 1.0;
    y.template reshape<Shape<H, W, C>>() = clamp(b.sample(n), -1.0, 1.0) + 1.0;
    train::ssim_loss_forward(x, y, loss.view());
    per_image[std::size_t(n)] = 1 - loss[0];
  }
  double total = 0;
  for (double s : per_image)
    total += s;
  return total / double(N);
}

}  // namespace ldm::eval
