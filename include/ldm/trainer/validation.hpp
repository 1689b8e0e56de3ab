#pragma once
/// @file
/// The validation pass a trainer runs every --validate-every steps: the reconstruction PSNR and
/// SSIM of the held-out images, and the program's own measures of a few samples.

#include <vector>

#include "ldm/eval/metrics.hpp"
#include "ldm/trainer/program.hpp"
#include "ldm/trainer/sample_grids.hpp"

namespace ldm::train {

/// The mean PSNR (dB) and SSIM of the autoencoder's reconstructions of `images` (whole preview
/// batches of them; at least one).
template <class Model, index_t R, index_t C>
std::vector<Measure> reconstruction_measures(Model& model, const data::ImageSet<R, C>& images) {
  using Batch = typename Model::template images<preview_batch>;
  const std::size_t batches = images.size() / std::size_t(preview_batch);
  if (batches == 0)
    fail_expected("validation: held-out images", "at least " + std::to_string(preview_batch),
                  images.size());
  double psnr = 0, ssim = 0;
  for (std::size_t b = 0; b < batches; ++b) {
    const View<const float, Batch> x(images.pixels.data() + b * std::size_t(Batch::size));
    const Tensor<float, Batch> decoded = reconstruct(model, x);
    psnr += eval::psnr<float>(x, View<const float, Batch>(decoded));
    ssim += eval::ssim<float>(x, View<const float, Batch>(decoded));
  }
  return {{"psnr", psnr / double(batches)}, {"ssim", ssim / double(batches)}};
}

}  // namespace ldm::train
