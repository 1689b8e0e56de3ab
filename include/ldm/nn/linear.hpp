#pragma once
// Linear as PyTorch's nn.Linear with bias, over the last axis of any activation shape.

#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"
#include "ldm/ops/linear.hpp"

namespace ldm::nn {

template <class T, class Space, index_t In, index_t Out>
class Linear {
 public:
  using value_type = T;
  static constexpr index_t parameter_count = Out * In + Out;
  template <index_t N>
  using Saved = NoSaved;  // backward needs only x
  // Over Rows rows: the bias gradient's partial sums.
  template <index_t Rows>
  static constexpr Scratch scratch(const ops::HostScratch&) {
    return {0, ops::linear_backward_scratch(Rows, Out)};
  }

  explicit Linear(ParameterBinder<T, Space> b)
      : weight(b.template take<Shape<Out, In>>("weight", {Out, In}, Layout::same,
                                               Init::uniform_fan_in, In)),
        bias(b.template take<Shape<Out>>("bias", {Out}, Layout::same, Init::uniform_fan_in, In)) {}

  // Over the last axis of any shape: every leading axis is a row.
  template <ShapeType SX, ShapeType SY>
  void forward(View<const T, SX, Space> x, const NoSaved&, View<T, SY, Space> y,
               const Mode& = inference) const {
    ops::linear_forward(x, weight.value, bias.value, y);
  }

  // Accumulates the parameter gradients and overwrites dx.
  template <ShapeType SX, ShapeType SY>
  void backward(View<const T, SX, Space> x, const NoSaved&, View<const T, SY, Space> dy,
                View<T, SX, Space> dx) const {
    backward_params(x, dy);
    ops::linear_backward_input(weight.value, dy, dx);
  }

  template <ShapeType SX, ShapeType SY>
  void backward_params(View<const T, SX, Space> x, View<const T, SY, Space> dy) const {
    ops::linear_backward_params(x, dy, weight.grad, bias.grad);
  }

  Param<T, Shape<Out, In>, Space> weight;
  Param<T, Shape<Out>, Space> bias;
};

}  // namespace ldm::nn
