#pragma once
/// @file
/// The contract every sampler meets, so that one denoising loop drives any of them: sampling from
/// pure noise, image-to-image, inpainting, a user's own loop.
///
/// A sampler is what a diffusers scheduler is after set_timesteps(): built from a noise schedule,
/// its settings and a number of steps, it knows the timesteps at which the model is evaluated
/// and how to take a step from each evaluation. It is immutable. What a multistep sampler
/// remembers between evaluations (earlier model outputs, a half-finished Heun step) lives in a
/// State the caller owns and starts default-constructed, so one sampler can drive any number of
/// trajectories, and a trajectory can start at any evaluation (image-to-image starts part-way).
///
/// The loop, for evaluations i = first .. timesteps().size() - 1:
/// @verbatim
///   model_output = model(input_scale(i) * x, timesteps()[i])
///   step(i, state, model_output, x, noise_i, x)
/// @endverbatim
/// starting from x = init_noise_sigma() * noise with first = 0 (sampling), or from latents mixed
/// with noise at noise_level(first) (image-to-image, first = first_evaluation(sampler, strength)).
/// noise_i is a fresh standard-normal operand for each evaluation; samplers that add no noise
/// never read it, so a lazy operand such as ldm::randn<S>(seed, offset) costs them nothing.

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>

#include "ldm/core/error.hpp"
#include "ldm/core/shape.hpp"
#include "ldm/core/space.hpp"
#include "ldm/core/tensor.hpp"

namespace ldm::diffusion {

/// How much of the clean signal and how much noise a sample holds at one evaluation: the sample
/// is `signal * x0 + noise * eps` (before the sampler's input scaling). Variance-preserving
/// samplers (DDPM, DDIM, DPM-Solver, UniPC) have signal = sqrt(abar_t) and noise =
/// sqrt(1 - abar_t); the sigma samplers (Euler, Heun) have signal = 1 and noise = sigma.
struct NoiseLevel {
  double signal = 1;  ///< The clean latents' coefficient.
  double noise = 0;   ///< The noise's coefficient.
};

/// The State of a sampler that remembers nothing between evaluations.
struct NoState {};

/// What a step's noise operand may be: an operand of the sample's shape or a floating-point number,
/// but not an integer, which would be a seed missing its offset (the (seed, offset) overloads take
/// seeds).
template <class Noise>
concept NoiseOperand = !std::is_integral_v<Noise>;

/// What a sampler is: see this file's description for the loop that drives one.
/// - `timesteps()`: the timestep handed to the model at each evaluation, in order (a sampler that
///   evaluates the model twice per step lists a timestep twice; sigma samplers may give fractions);
/// - `num_inference_steps()`: the steps asked for; `evaluations_per_step()`: 2 for Heun, else 1,
///   so that step k begins at evaluation k * evaluations_per_step() (as diffusers' `order`);
/// - `init_noise_sigma()`: the standard deviation of the pure noise sampling starts from;
/// - `input_scale(i)`: the factor on the sample the model sees at evaluation i;
/// - `noise_level(i)`: what the sample at evaluation i holds, for noising an image to it;
/// - `State<S, Space>`: what the caller keeps for one trajectory of shape S (NoState when none);
/// - `step(i, state, model_output, sample, noise, prev_sample)`: the sample after evaluation i.
///   `noise` is any operand of shape S or a floating-point number; prev_sample may alias sample.
template <class T>
concept Sampler = requires(const T& sampler, std::size_t i,
                           typename T::template State<Shape<1>, host>& state,
                           View<const float, Shape<1>> in, View<float, Shape<1>> out) {
  { sampler.timesteps() } -> std::same_as<std::span<const double>>;
  { sampler.num_inference_steps() } -> std::same_as<int>;
  { sampler.evaluations_per_step() } -> std::same_as<int>;
  { sampler.init_noise_sigma() } -> std::same_as<double>;
  { sampler.input_scale(i) } -> std::same_as<double>;
  { sampler.noise_level(i) } -> std::same_as<NoiseLevel>;
  sampler.step(i, state, in, in, 0.0f, out);
};

/// The evaluation image-to-image starts at, as diffusers' img2img pipelines choose it: the last
/// int(num_inference_steps * strength) steps are run, so strength 1 runs them all from the most
/// noisy timestep and smaller strengths keep more of the image.
/// @throws ldm::Error when strength is not in [0, 1], or so small that no step would run
template <Sampler S>
std::size_t first_evaluation(const S& sampler, double strength) {
  if (!(strength >= 0 && strength <= 1)) fail_expected("strength", "a value in [0, 1]", strength);
  const int steps = sampler.num_inference_steps();
  const int run = std::min(int(steps * strength), steps);
  if (run < 1)
    fail_expected("strength",
                  "at least 1 / steps (" + std::to_string(steps) + " steps), so that one step runs",
                  strength);
  return std::size_t(steps - run) * std::size_t(sampler.evaluations_per_step());
}

}  // namespace ldm::diffusion
