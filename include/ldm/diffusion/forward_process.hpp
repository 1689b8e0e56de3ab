#pragma once
/// @file
/// The forward process x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps over a batch with one timestep
/// per sample, the training targets of the two parameterisations (epsilon, and
/// v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0), and the inverse maps samplers use to read x0 and
/// eps back from a model's output.
///
/// Timesteps are a View<const std::int32_t, Shape<N>> on the host (a Tensor<std::int32_t,
/// Shape<N>> passes as one), N being the batch of the data. Their coefficients are looked up in
/// double and broadcast over each sample inside one fused expression.
///
/// Precision: these expressions evaluate in double and round to float once, on store. Reading x0
/// back, (x_t - sqrt(1 - abar) eps) / sqrt(abar), cancels terms up to 1 / sqrt(abar) (~150 near
/// t = T) times larger than the result; in float that costs ~7 bits, in double nothing visible. A
/// handful of operations per element keeps the loop bound by memory either way.

#include <array>
#include <cassert>
#include <cmath>
#include <cstdint>
#include <string_view>
#include <utility>

#include "ldm/core/copy.hpp"
#include "ldm/core/macros.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/tensor.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/expr/assign.hpp"
#include "ldm/expr/broadcast.hpp"
#include "ldm/expr/elementwise.hpp"
#include "ldm/expr/host_executor.hpp"
#include "ldm/expr/node.hpp"

namespace ldm::diffusion {

/// What the model predicts. diffusers' third kind, "sample", is not supported.
enum class PredictionType {
  epsilon,      ///< the noise that was added
  v_prediction  ///< the velocity v = sqrt(abar_t) eps - sqrt(1 - abar_t) x0
};

/// PredictionType's names in diffusers' configs, under the key prediction_type.
constexpr EnumNames<PredictionType, 2> diffusers_names(PredictionType) {
  return {"prediction_type",
          {{{"epsilon", PredictionType::epsilon}, {"v_prediction", PredictionType::v_prediction}}}};
}

/// At noise level abar, x0 and eps are linear in the sample x_t and the model's output:
///   x0  = x0_from_sample  * x_t + x0_from_output  * output,
///   eps = eps_from_sample * x_t + eps_from_output * output.
struct Parameterisation {
  /// @{
  /// The coefficients of the two linear maps above.
  double x0_from_sample, x0_from_output, eps_from_sample, eps_from_output;
  /// @}
};

/// The Parameterisation of a prediction type at noise level `alpha_cumprod` (abar_t, in (0, 1]).
inline Parameterisation parameterisation(PredictionType type, double alpha_cumprod) {
  const double a = std::sqrt(alpha_cumprod), s = std::sqrt(1 - alpha_cumprod);
  switch (type) {
    case PredictionType::epsilon:  // x_t = a x0 + s eps
      return {1 / a, -s / a, 0, 1};
    case PredictionType::v_prediction:  // v = a eps - s x0, a^2 + s^2 = 1
      return {a, -s, s, a};
  }
  assert(false && "a prediction type without a parameterisation");
  return {};
}

/// The bound predicted_x0 clamps to: clip_sample_range when clipping (diffusers' clip_sample),
/// infinity otherwise, which lets one expression serve both.
/// @throws ldm::Error when clipping with a clip_sample_range that is not positive
inline double clip_bound(bool clip_sample, double clip_sample_range) {
  if (!clip_sample) return INFINITY;
  if (!(clip_sample_range > 0))
    fail_expected("clip_sample_range", "a positive value", clip_sample_range);
  return clip_sample_range;
}

namespace detail {
// An operand evaluated in double: with a double scalar, `a * in_double(x)` runs in double where
// `a * x` would run in x's float.
template <class A>
struct InDouble {
  using shape = typename A::shape;
  using space = typename A::space;
  using eval_type = double;
  static constexpr bool is_expression_node = true;

  A a;
  LDM_HD double eval(index_t i) const { return double(a.eval(i)); }
};
}  // namespace detail

/// An operand evaluated in double: with a double scalar, `a * in_double(x)` runs in double where
/// `a * x` would run in x's float.
template <class X>
requires(expr::Operand<X> && !expr::Arithmetic<X>) auto in_double(const X& x) {
  return detail::InDouble<expr::node_t<X>>{expr::as_node(x)};
}
/// A number as a double.
template <expr::Arithmetic X>
double in_double(X x) {
  return double(x);
}

/// x0 read back from a model's output, clamped to [-clip_bound, clip_bound], as a double
/// expression node for a sampler's step.
template <class Sample, class Output>
auto predicted_x0(const Parameterisation& p, const Sample& sample, const Output& model_output,
                  double clip_bound) {
  return ldm::clamp(
      p.x0_from_sample * in_double(sample) + p.x0_from_output * in_double(model_output),
      -clip_bound, clip_bound);
}
/// eps read back from a model's output (unclamped), as a double expression node.
template <class Sample, class Output>
auto predicted_eps(const Parameterisation& p, const Sample& sample, const Output& model_output) {
  return p.eps_from_sample * in_double(sample) + p.eps_from_output * in_double(model_output);
}

namespace detail {
template <ShapeType S, class X, int... Axes>
auto per_sample(const X& x, std::integer_sequence<int, Axes...>) {
  return broadcast<S, (Axes + 1)...>(x);
}
}  // namespace detail

/// A Shape<N> value per sample, repeated over the rest of a batch of shape S.
template <ShapeType S, class X>
auto per_sample(const X& x) {
  return detail::per_sample<S>(x, std::make_integer_sequence<int, S::rank - 1>{});
}

/// sqrt(abar_t) and sqrt(1 - abar_t) of each sample's timestep, in the space of the batch. The
/// schedule lives on the host, so the timesteps are read there (N numbers).
template <index_t N, class Space = host>
struct NoiseLevels {
  /// @{
  /// sqrt(abar_t) and sqrt(1 - abar_t), one per sample.
  Tensor<double, Shape<N>, Space> signal, noise;
  /// @}
};

/// The NoiseLevels of each sample's timestep.
/// @throws ldm::Error when a timestep is not in [0, T)
template <index_t N, class Space>
NoiseLevels<N, Space> noise_levels(const Schedule& schedule,
                                   View<const std::int32_t, Shape<N>, Space> timesteps) {
  const Tensor<std::int32_t, Shape<N>> t = to_host(timesteps);
  Tensor<double, Shape<N>> signal, noise;
  for (index_t i = 0; i < N; ++i) {
    const double alpha_cumprod = schedule.alpha_cumprod(t[i]);
    signal[i] = std::sqrt(alpha_cumprod);
    noise[i] = std::sqrt(1 - alpha_cumprod);
  }
  NoiseLevels<N, Space> levels;
  copy(View<const double, Shape<N>>(signal), levels.signal.view());
  copy(View<const double, Shape<N>>(noise), levels.noise.view());
  return levels;
}

/// x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise, sample by sample. x_t may alias x0 or noise.
/// @throws ldm::Error when a timestep is not in [0, T)
template <ShapeType S, class Space>
void add_noise(const Schedule& schedule, View<const float, S, Space> x0,
               View<const float, S, Space> noise,
               View<const std::int32_t, Shape<batch_of<S>>, Space> timesteps,
               View<float, S, Space> xt) {
  const auto levels = noise_levels(schedule, timesteps);
  xt = per_sample<S>(levels.signal) * x0 + per_sample<S>(levels.noise) * noise;
}

/// What a model of the given parameterisation learns to output for x_t = add_noise(x0, noise):
/// the noise itself, or the velocity sqrt(abar_t) noise - sqrt(1 - abar_t) x0.
/// @throws ldm::Error for v_prediction when a timestep is not in [0, T)
template <ShapeType S, class Space>
void training_target(PredictionType type, const Schedule& schedule, View<const float, S, Space> x0,
                     View<const float, S, Space> noise,
                     View<const std::int32_t, Shape<batch_of<S>>, Space> timesteps,
                     View<float, S, Space> target) {
  switch (type) {
    case PredictionType::epsilon:
      target = noise;
      return;
    case PredictionType::v_prediction: {
      const auto levels = noise_levels(schedule, timesteps);
      target = per_sample<S>(levels.signal) * noise - per_sample<S>(levels.noise) * x0;
      return;
    }
  }
}

}  // namespace ldm::diffusion
