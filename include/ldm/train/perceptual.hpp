#pragma once
// The structural term of the autoencoder loss is any type with
//   double forward(View<const T, Images> reconstruction, View<const T, Images> target);
//       // the batch mean of per-sample distances; keeps what backward needs
//   void backward(double upstream, View<T, Images> d_reconstruction);
//       // overwrites d_reconstruction with upstream * d(forward) / d(reconstruction)
// LPIPS (train/lpips.hpp) and 1 - SSIM (train/ssim.hpp) are the two the trainer uses;
// NoPerceptual is for a loss of pixels and KL alone.

namespace ldm::train {

struct NoPerceptual {
  template <class R, class X>
  double forward(const R&, const X&) {
    return 0;
  }
  template <class D>
  void backward(double, D d_reconstruction) {
    d_reconstruction = 0.0f;
  }
};

}  // namespace ldm::train
