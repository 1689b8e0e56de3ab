#pragma once
// diffusers' Timesteps (sinusoidal, no parameters) followed by TimestepEmbedding:
//   linear_2(silu(linear_1(sinusoid(t))))

#include "ldm/nn/linear.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/ops/activation.hpp"
#include "ldm/ops/embedding.hpp"

namespace ldm::nn {

template <class T, class Space, index_t In, index_t Out>
class TimestepEmbedding {
  using First = Linear<T, Space, In, Out>;
  using Second = Linear<T, Space, Out, Out>;

 public:
  using value_type = T;
  static constexpr index_t parameter_count = First::parameter_count + Second::parameter_count;

  template <index_t N>
  struct Saved {
    Tensor<T, Shape<N, In>, Space> sinusoid;
    Tensor<T, Shape<N, Out>, Space> hidden, activated;
  };

  // backward: dact and dhidden beside the linears'.
  template <index_t N>
  static constexpr Scratch scratch(const ops::HostScratch& host) {
    return {0, 2 * bytes_of<Tensor<T, Shape<N, Out>, Space>> +
                   peak(scratch_of<Second, N>(host).backward, scratch_of<First, N>(host).backward)};
  }

  // flip_sin_to_cos and freq_shift as diffusers' Timesteps (UNet2DModel: true and 0).
  TimestepEmbedding(ParameterBinder<T, Space> b, bool flip_sin_to_cos = true, double freq_shift = 0)
      : linear_1(b.scope("linear_1")),
        linear_2(b.scope("linear_2")),
        flip_sin_to_cos(flip_sin_to_cos),
        freq_shift(freq_shift) {}

  template <index_t N>
  void forward(View<const float, Shape<N>, Space> timesteps, Saved<N>& s,
               View<T, Shape<N, Out>, Space> y, const Mode& = inference) const {
    ops::timestep_embedding<In>(timesteps, flip_sin_to_cos, freq_shift, s.sinusoid.view());
    linear_1.forward(s.sinusoid, {}, s.hidden.view());
    s.activated = silu(s.hidden);
    linear_2.forward(s.activated, {}, y);
  }

  // Timesteps are not learned and backward does not read them: it only accumulates the
  // parameter gradients.
  template <index_t N>
  void backward(const Saved<N>& s, View<const T, Shape<N, Out>, Space> dy) const {
    Tensor<T, Shape<N, Out>, Space> dact, dhidden;
    linear_2.backward(s.activated, {}, dy, dact.view());
    ops::silu_backward(View<const T, Shape<N, Out>, Space>(s.hidden),
                       View<const T, Shape<N, Out>, Space>(dact), dhidden.view());
    linear_1.backward_params(s.sinusoid, dhidden);
  }

  First linear_1;
  Second linear_2;
  bool flip_sin_to_cos;
  double freq_shift;
};

}  // namespace ldm::nn
