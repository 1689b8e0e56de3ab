#pragma once
// Downsample2D and Upsample2D with convolutions, as diffusers builds them. The UNet downsamples
// with a 3x3 stride-2 conv padded by 1; the autoencoder pads (0, 1, 0, 1) and convolves with
// padding 0 — both are conv geometries here. Upsampling is nearest x2, then a 3x3 conv.

#include "ldm/nn/conv2d.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/ops/resample.hpp"

namespace ldm::nn {

enum class DownsamplePadding { symmetric, asymmetric };

template <class T, class Space, index_t H, index_t W, index_t C,
          DownsamplePadding Padding = DownsamplePadding::symmetric>
class Downsample2D {
  using Geometry = std::conditional_t<Padding == DownsamplePadding::symmetric, ops::conv_same<3, 2>,
                                      ops::conv_down_asymmetric>;
  using Conv = Conv2d<T, Space, H, W, C, C, Geometry>;

 public:
  using value_type = T;
  static constexpr index_t parameter_count = Conv::parameter_count;
  template <index_t N>
  using input = typename Conv::template input<N>;
  template <index_t N>
  using output = typename Conv::template output<N>;

  template <index_t N>
  using Saved = NoSaved;

  template <index_t N>
  static constexpr Scratch scratch(const ops::HostScratch& host) {
    return scratch_of<Conv, N>(host);
  }

  explicit Downsample2D(ParameterBinder<T, Space> b) : conv(b.scope("conv")) {}

  template <index_t N>
  void forward(View<const T, input<N>, Space> x, const Saved<N>& s, View<T, output<N>, Space> y,
               const Mode& mode = inference) const {
    conv.forward(x, s, y, mode);
  }
  template <index_t N>
  void backward(View<const T, input<N>, Space> x, const Saved<N>& s,
                View<const T, output<N>, Space> dy, View<T, input<N>, Space> dx) const {
    conv.backward(x, s, dy, dx);
  }

  Conv conv;
};

template <class T, class Space, index_t H, index_t W, index_t C>
class Upsample2D {
  using Conv = Conv2d<T, Space, 2 * H, 2 * W, C, C>;

 public:
  using value_type = T;
  static constexpr index_t parameter_count = Conv::parameter_count;
  template <index_t N>
  using input = Shape<N, H, W, C>;
  template <index_t N>
  using output = Shape<N, 2 * H, 2 * W, C>;

  template <index_t N>
  struct Saved {
    Tensor<T, output<N>, Space> upsampled;  // conv's input
  };

  // backward: dup beside the convolution's.
  template <index_t N>
  static constexpr Scratch scratch(const ops::HostScratch& host) {
    return {scratch_of<Conv, N>(host).forward,
            bytes_of<Tensor<T, output<N>, Space>> + scratch_of<Conv, N>(host).backward};
  }

  explicit Upsample2D(ParameterBinder<T, Space> b) : conv(b.scope("conv")) {}

  template <index_t N>
  void forward(View<const T, input<N>, Space> x, Saved<N>& s, View<T, output<N>, Space> y,
               const Mode& mode = inference) const {
    ops::upsample_nearest2x_forward(x, s.upsampled.view());
    conv.forward(s.upsampled, {}, y, mode);
  }
  // Reads the upsampled input from `s`, not x.
  template <index_t N>
  void backward(View<const T, input<N>, Space>, const Saved<N>& s,
                View<const T, output<N>, Space> dy, View<T, input<N>, Space> dx) const {
    Tensor<T, output<N>, Space> dup(uninitialized);
    conv.backward(s.upsampled, {}, dy, dup.view());
    ops::upsample_nearest2x_backward(View<const T, output<N>, Space>(dup), dx);
  }

  Conv conv;
};

// The resampler of a level that keeps its resolution: y = x, a module like the others so that a
// block wires "resnets, then the resampler" the same way for every kind of level.
template <class T, class Space, index_t H, index_t W, index_t C>
class Identity {
 public:
  using value_type = T;
  static constexpr index_t parameter_count = 0;
  template <index_t N>
  using input = Shape<N, H, W, C>;
  template <index_t N>
  using output = Shape<N, H, W, C>;
  template <index_t N>
  using Saved = NoSaved;

  template <index_t N>
  void forward(View<const T, input<N>, Space> x, const Saved<N>&, View<T, output<N>, Space> y,
               const Mode& = inference) const {
    y = x;
  }
  template <index_t N>
  void backward(View<const T, input<N>, Space>, const Saved<N>&, View<const T, output<N>, Space> dy,
                View<T, input<N>, Space> dx) const {
    dx = dy;
  }
};

}  // namespace ldm::nn
