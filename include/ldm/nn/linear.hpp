#pragma once
// Linear as PyTorch's nn.Linear, with a bias or (Bias::none) without, over the last axis of any
// activation shape.

#include <type_traits>

#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/nn/parameters.hpp"
#include "ldm/ops/linear.hpp"

namespace ldm::nn {

/// Whether a Linear has a bias (PyTorch's `bias=True`, the default) or not.
enum class Bias {
  with,  ///< weight and bias (nn.Linear's default)
  none   ///< weight only (bias=False)
};

/// y = x w^T (+ bias) over the last axis; parameters `weight` [Out, In] and, with Bias::with,
/// `bias` [Out].
template <class T, class Space, index_t In, index_t Out, Bias B = Bias::with>
class Linear {
  static constexpr bool has_bias = B == Bias::with;

 public:
  using value_type = T;
  static constexpr index_t parameter_count = Out * In + (has_bias ? Out : 0);
  template <index_t N>
  using Saved = NoSaved;  // backward needs only x
  // Over Rows rows: the bias gradient's partial sums.
  template <index_t Rows>
  static constexpr Scratch scratch(const ops::HostScratch&) {
    return {0, has_bias ? ops::linear_backward_scratch(Rows, Out) : 0};
  }

  explicit Linear(ParameterBinder<T, Space> b)
      : weight(b.template take<Shape<Out, In>>("weight", {Out, In}, Layout::same,
                                               Init::uniform_fan_in, In)),
        bias(take_bias(b)) {}

  // Over the last axis of any shape: every leading axis is a row.
  template <ShapeType SX, ShapeType SY>
  void forward(View<const T, SX, Space> x, const NoSaved&, View<T, SY, Space> y,
               const Mode& = inference) const {
    if constexpr (has_bias)
      ops::linear_forward(x, weight.value, bias.value, y);
    else
      ops::linear_forward(x, weight.value, y);
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
    if constexpr (has_bias)
      ops::linear_backward_params(x, dy, weight.grad, bias.grad);
    else
      ops::linear_backward_weight(x, dy, weight.grad);
  }

  Param<T, Shape<Out, In>, Space> weight;
  std::conditional_t<has_bias, Param<T, Shape<Out>, Space>, Absent> bias;

 private:
  static auto take_bias(const ParameterBinder<T, Space>& b) {
    if constexpr (has_bias)
      return b.template take<Shape<Out>>("bias", {Out}, Layout::same, Init::uniform_fan_in, In);
    else
      return Absent{};
  }
};

}  // namespace ldm::nn
