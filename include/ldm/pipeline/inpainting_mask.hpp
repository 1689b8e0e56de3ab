#pragma once
/// @file
/// Inpainting masks: 1 repaints, 0 keeps (diffusers' white repaints), one channel per image.
/// An image-space mask reaches the latent grid as diffusers' StableDiffusionInpaintPipeline takes
/// it there: binarised at 0.5 by its mask processor (values >= 0.5 repaint), then resized by
/// nearest interpolation (torch's `F.interpolate` default), so latent cell (i, j) takes pixel
/// (floor(i H / h), floor(j W / w)): the top-left pixel of the cell's block when the sizes divide.

#include <string>

#include "ldm/core/copy.hpp"
#include "ldm/core/error.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"

namespace ldm::pipeline {

/// Checks that every value of a mask (N x H x W x 1, any space) is in [0, 1].
/// @param what names the mask in the message ("inpaint: mask")
/// @throws ldm::Error naming `what`, the first value outside [0, 1] (or NaN) and where it is
template <index_t N, index_t H, index_t W, class Space>
void require_mask_values(View<const float, Shape<N, H, W, 1>, Space> mask,
                         const std::string& what) {
  const auto values = to_host(mask);
  for (index_t n = 0; n < N; ++n)
    for (index_t y = 0; y < H; ++y)
      for (index_t x = 0; x < W; ++x)
        if (const float v = values(n, y, x, 0); !(v >= 0 && v <= 1))
          fail(what, ": expected values in [0, 1] (1 repaints, 0 keeps), found ", v, " at image ",
               n, ", row ", y, ", column ", x);
}

/// The latent-grid mask (N x h x w x 1) of an image-space mask (N x H x W x 1), binarised and
/// resized as this file's description says.
/// @throws ldm::Error naming "inpaint: mask" when a value is not in [0, 1]
template <index_t N, index_t H, index_t W, index_t h, index_t w, class Space>
void latent_mask(View<const float, Shape<N, H, W, 1>, Space> mask,
                 View<float, Shape<N, h, w, 1>, Space> out) {
  static_assert(H >= h && W >= w, "ldm::pipeline::latent_mask: the latent grid is the smaller one");
  require_mask_values(mask, "inpaint: mask");
  const auto values = to_host(mask);
  Tensor<float, Shape<N, h, w, 1>> reduced;
  for (index_t n = 0; n < N; ++n)
    for (index_t i = 0; i < h; ++i)
      for (index_t j = 0; j < w; ++j)
        reduced(n, i, j, 0) = values(n, i * H / h, j * W / w, 0) >= 0.5f ? 1.0f : 0.0f;
  copy(View<const float, Shape<N, h, w, 1>>(reduced.view()), out);
}

}  // namespace ldm::pipeline
