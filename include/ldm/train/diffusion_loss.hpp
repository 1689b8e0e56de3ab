#pragma once
/// @file
/// The denoiser's training objective and its gradients, as diffusers' train_unconditional.py:
/// @verbatim
///   x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise;  loss = mean((unet(x_t, t) - target)^2)
/// @endverbatim
/// with target = noise (epsilon prediction) or the velocity (v_prediction). x0 are latents already
/// scaled by the autoencoder's scaling_factor; noise and timesteps come from the caller, so that
/// the pipeline draws them from its Philox streams and tests can pass PyTorch's.

#include <cstdint>

#include "ldm/diffusion/forward_process.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/ops/loss.hpp"

namespace ldm::train {

/// The peak of what diffusion_loss_and_gradients allocates beyond its arguments and the Saved:
/// xt, target, prediction, d_prediction and t throughout, beside the noise levels of add_noise and
/// training_target (N timesteps and four N doubles), then the UNet's forward and backward scratch.
template <index_t N, class UNet>
constexpr std::size_t diffusion_loss_scratch(const ops::HostScratch& host) {
  using Space = typename UNet::space;
  const auto unet = nn::scratch_of<UNet, N>(host);
  return 4 * nn::bytes_of<Tensor<float, typename UNet::template sample<N>, Space>> +
         nn::bytes_of<Tensor<float, Shape<N>, Space>> +
         nn::peak(nn::bytes_of<Tensor<std::int32_t, Shape<N>>> +
                      4 * nn::bytes_of<Tensor<double, Shape<N>>>,
                  unet.forward, unet.backward);
}

/// Accumulates the gradients of every UNet parameter; returns the loss.
/// @param unet the denoiser (a models::UNet)
/// @param saved its activations for this batch size
/// @param x0 clean latents, already scaled by the scaling factor
/// @param noise standard normal noise of the same shape
/// @param timesteps each sample's timestep, in [0, T)
/// @param schedule the noise schedule
/// @param prediction_type what the UNet learns to predict
/// @param mode training (dropout on, with its seed) or inference
/// @param labels each sample's class, for a class-conditional UNet only
/// @throws ldm::Error when a timestep is not in [0, T), or the UNet is class-conditional and no
///         labels are given
template <index_t N, class UNet>
double diffusion_loss_and_gradients(
    const UNet& unet, typename UNet::template Saved<N>& saved,
    View<const float, typename UNet::template sample<N>, typename UNet::space> x0,
    View<const float, typename UNet::template sample<N>, typename UNet::space> noise,
    View<const std::int32_t, Shape<N>, typename UNet::space> timesteps,
    const diffusion::Schedule& schedule, diffusion::PredictionType prediction_type,
    const nn::Mode& mode = {true},
    View<const std::int32_t, Shape<N>, typename UNet::space> labels =
        View<const std::int32_t, Shape<N>, typename UNet::space>(nullptr)) {
  using Space = typename UNet::space;
  using Sample = typename UNet::template sample<N>;
  Tensor<float, Sample, Space> xt, target, prediction, d_prediction;
  diffusion::add_noise(schedule, x0, noise, timesteps, xt.view());
  diffusion::training_target(prediction_type, schedule, x0, noise, timesteps, target.view());
  Tensor<float, Shape<N>, Space> t;
  t = timesteps;
  unet.forward(xt, t, saved, prediction.view(), mode, labels);
  const double loss = ops::mse_forward(View<const float, Sample, Space>(prediction),
                                       View<const float, Sample, Space>(target));
  ops::mse_backward(View<const float, Sample, Space>(prediction),
                    View<const float, Sample, Space>(target), 1.0, d_prediction.view());
  unet.backward(xt, saved, d_prediction, View<float, Sample, Space>(nullptr), labels);
  return loss;
}

}  // namespace ldm::train
