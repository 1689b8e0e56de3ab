#pragma once
// Conv2d as PyTorch's nn.Conv2d with bias, over NHWC activations of one sample shape.

#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"
#include "ldm/ops/conv2d.hpp"
#include "ldm/ops/conv2d_scratch.hpp"

namespace ldm::nn {

template <class T, class Space, index_t H, index_t W, index_t Ci, index_t Co,
          class G = ops::conv_same<3>>
class Conv2d {
 public:
  using value_type = T;
  static constexpr index_t kh = G::kh, kw = G::kw, fan_in = Ci * G::kh * G::kw;
  static constexpr index_t parameter_count = Co * fan_in + Co;
  using sample_output = sample_shape_t<ops::conv2d_output_t<G, Shape<1, H, W, Ci>, Co>>;
  static constexpr index_t out_h = sample_output::extents[0], out_w = sample_output::extents[1];
  template <index_t N>
  using input = Shape<N, H, W, Ci>;
  template <index_t N>
  using output = Shape<N, out_h, out_w, Co>;
  template <index_t N>
  using Saved = NoSaved;  // backward needs only x
  // The op's own: the column matrix or the direct kernels' buffers, the bias gradient's partials.
  template <index_t N>
  static constexpr Scratch scratch(const ops::HostScratch& host) {
    const auto op = ops::conv2d_host_scratch<G, T, N, H, W, Ci, Co>(host);
    return {op.forward, op.backward};
  }

  explicit Conv2d(ParameterBinder<T, Space> b)
      : weight(b.template take<Shape<Co, kh, kw, Ci>>("weight", {Co, Ci, kh, kw}, Layout::conv_ohwi,
                                                      Init::uniform_fan_in, fan_in)),
        bias(b.template take<Shape<Co>>("bias", {Co}, Layout::same, Init::uniform_fan_in, fan_in)) {
  }

  template <index_t N>
  void forward(View<const T, input<N>, Space> x, const Saved<N>&, View<T, output<N>, Space> y,
               const Mode& = inference) const {
    ops::conv2d_forward<G>(x, weight.value, bias.value, y);
  }

  // Accumulates the parameter gradients and overwrites dx.
  template <index_t N>
  void backward(View<const T, input<N>, Space> x, const Saved<N>&,
                View<const T, output<N>, Space> dy, View<T, input<N>, Space> dx) const {
    backward_params(x, dy);
    ops::conv2d_backward_input<G>(weight.value, dy, dx);
  }

  // For a first layer, whose input needs no gradient.
  template <index_t N>
  void backward_params(View<const T, input<N>, Space> x, View<const T, output<N>, Space> dy) const {
    ops::conv2d_backward_params<G>(x, dy, weight.grad, bias.grad);
  }

  Param<T, Shape<Co, kh, kw, Ci>, Space> weight;
  Param<T, Shape<Co>, Space> bias;
};

}  // namespace ldm::nn
