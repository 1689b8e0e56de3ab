#pragma once
/// @file
/// The structural term of the autoencoder loss is any type with
/// @code{.cpp}
///   double forward(View<const T, Images> reconstruction, View<const T, Images> target);
///       // the batch mean of per-sample distances; keeps what backward needs
///   void backward(double upstream, View<T, Images> d_reconstruction);
///       // overwrites d_reconstruction with upstream * d(forward) / d(reconstruction)
/// @endcode
/// LpipsTerm (LPIPS with VGG16 weights) and SsimTerm (1 - SSIM, when no LPIPS weights are at
/// hand) are the two the trainer uses; NoPerceptual is for a loss of pixels and KL alone.

#include "ldm/nn/module.hpp"
#include "ldm/train/lpips.hpp"
#include "ldm/train/ssim.hpp"

namespace ldm::train {

/// No structural term: a loss of pixels and KL alone.
struct NoPerceptual {
  /// 0.
  template <class R, class X>
  double forward(const R&, const X&) {
    return 0;
  }
  /// Zeroes d_reconstruction.
  template <class D>
  void backward(double, D d_reconstruction) {
    d_reconstruction = 0.0f;
  }
};

/// LPIPS of one batch of N images; keeps VGG's activations for backward.
/// @tparam Lpips a train::LPIPS network
/// @tparam N the batch size
template <class Lpips, index_t N>
class LpipsTerm {
  using T = typename Lpips::value_type;
  using Space = typename Lpips::space;
  using Images = typename Lpips::template image<N>;

 public:
  /// Uses `lpips`, which must outlive the term and be bound before forward().
  // The network is bound after construction so that a pipeline can keep one term per batch size
  // among its other per-batch buffers.
  void bind(const Lpips& lpips) { lpips_ = &lpips; }

  /// The batch mean of the LPIPS distances of reconstruction to target (images in [-1, 1]).
  double forward(View<const T, Images, Space> reconstruction, View<const T, Images, Space> target) {
    lpips_->forward(reconstruction, target, saved_, distance_.view());
    return mean(distance_);
  }
  /// Overwrites d_reconstruction with upstream * d(forward) / d(reconstruction).
  void backward(double upstream, View<T, Images, Space> d_reconstruction) {
    upstream_ = T(upstream / N);
    lpips_->backward(saved_, upstream_, d_reconstruction);
  }

 private:
  const Lpips* lpips_ = nullptr;
  typename Lpips::template Saved<N> saved_;
  Tensor<T, Shape<N>, Space> distance_, upstream_;
};

/// 1 - SSIM (11x11 Gaussian window, valid positions) of one batch of N images.
/// @tparam Images the batch's shape, Shape<N, H, W, C> with H and W at least 11
template <class T, ShapeType Images, class Space = host>
class SsimTerm {
  static constexpr index_t N = Images::extents[0];
  struct State {
    Tensor<T, Images, Space> reconstruction, target;
    Tensor<T, Shape<N>, Space> loss, upstream;
  };

 public:
  /// The tensor memory one term holds between calls.
  static constexpr std::size_t bytes = nn::saved_bytes<State>;
  /// The most tensor memory its forward or backward allocates while it runs.
  static constexpr std::size_t scratch = ssim_scratch_bytes<Images>;

  /// The batch mean of 1 - SSIM of reconstruction and target (images in [-1, 1]).
  double forward(View<const T, Images, Space> reconstruction, View<const T, Images, Space> target) {
    s_.reconstruction = reconstruction;
    s_.target = target;
    ssim_loss_forward(reconstruction, target, s_.loss.view());
    return mean(s_.loss);
  }
  /// Overwrites d_reconstruction with upstream * d(forward) / d(reconstruction).
  void backward(double upstream, View<T, Images, Space> d_reconstruction) {
    s_.upstream = T(upstream / N);
    ssim_loss_backward(View<const T, Images, Space>(s_.reconstruction),
                       View<const T, Images, Space>(s_.target),
                       View<const T, Shape<N>, Space>(s_.upstream), d_reconstruction);
  }

 private:
  State s_;
};

}  // namespace ldm::train
