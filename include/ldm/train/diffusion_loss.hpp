#pragma once
/// @file
/// The denoiser's training objective and its gradients, as diffusers' train_unconditional.py:
/// @verbatim
///   x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise;  loss = mean((unet(x_t, t) - target)^2)
/// @endverbatim
/// with target = noise (epsilon prediction) or the velocity (v_prediction). x0 are latents already
/// scaled by the autoencoder's scaling_factor; noise and timesteps come from the caller, so that
/// the pipeline draws them from its Philox streams and tests can pass PyTorch's. With
/// DiffusionLossWeighting::snr_gamma > 0 each sample's squared error is weighted as min_snr.hpp
/// describes (diffusers' train_text_to_image.py with --snr_gamma). A UNet conditioned by
/// cross-attention also takes each sample's context.

#include <cstdint>

#include "ldm/diffusion/forward_process.hpp"
#include "ldm/nn/mode.hpp"
#include "ldm/nn/module.hpp"
#include "ldm/ops/loss.hpp"
#include "ldm/train/min_snr.hpp"

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

/// How diffusion_loss_and_gradients weighs the samples and scales the gradients.
struct DiffusionLossWeighting {
  /// Min-SNR-gamma's clamp of the signal-to-noise ratio (min_snr.hpp); 0 leaves the samples
  /// unweighted.
  double snr_gamma = 0;
  /// The gradients accumulated are those of this multiple of the loss: 1 / k for one of k equal
  /// micro-batches whose gradients add up to those of the mean over the whole batch.
  double gradient_scale = 1;
};

namespace detail {

// The loss and gradients, with the context (a View of the UNet's context<N>) read by the UNet's
// cross-attention when it has one, and its gradient written to dcontext when that is not null.
template <index_t N, class UNet, class ContextView, class ContextGrad>
double diffusion_loss_and_gradients(
    const UNet& unet, typename UNet::template Saved<N>& saved,
    View<const float, typename UNet::template sample<N>, typename UNet::space> x0,
    View<const float, typename UNet::template sample<N>, typename UNet::space> noise,
    View<const std::int32_t, Shape<N>, typename UNet::space> timesteps,
    const diffusion::Schedule& schedule, diffusion::PredictionType prediction_type,
    const nn::Mode& mode, View<const std::int32_t, Shape<N>, typename UNet::space> labels,
    const DiffusionLossWeighting& weighting, ContextView context, ContextGrad dcontext) {
  using Space = typename UNet::space;
  using Sample = typename UNet::template sample<N>;
  Tensor<float, Sample, Space> xt, target, prediction, d_prediction;
  diffusion::add_noise(schedule, x0, noise, timesteps, xt.view());
  diffusion::training_target(prediction_type, schedule, x0, noise, timesteps, target.view());
  Tensor<float, Shape<N>, Space> t;
  t = timesteps;
  if constexpr (UNet::conditional)
    unet.forward(xt, t, context, saved, prediction.view(), mode, labels);
  else
    unet.forward(xt, t, saved, prediction.view(), mode, labels);
  const View<const float, Sample, Space> p = prediction, y = target;
  double loss;
  if (weighting.snr_gamma > 0) {
    const auto weights = min_snr_weights(schedule, prediction_type, weighting.snr_gamma, timesteps);
    loss = weighted_mse_forward(p, y, View<const double, Shape<N>, Space>(weights));
    weighted_mse_backward(p, y, View<const double, Shape<N>, Space>(weights),
                          weighting.gradient_scale, d_prediction.view());
  } else {
    loss = ops::mse_forward(p, y);
    ops::mse_backward(p, y, weighting.gradient_scale, d_prediction.view());
  }
  if constexpr (UNet::conditional)
    unet.backward(xt, context, saved, d_prediction, View<float, Sample, Space>(nullptr), dcontext,
                  labels);
  else
    unet.backward(xt, saved, d_prediction, View<float, Sample, Space>(nullptr), labels);
  return loss;
}

struct NoContext {};

}  // namespace detail

/// Accumulates the gradients of every UNet parameter; returns the loss.
/// @param unet the denoiser (a models::UNet without a context)
/// @param saved its activations for this batch size
/// @param x0 clean latents, already scaled by the scaling factor
/// @param noise standard normal noise of the same shape
/// @param timesteps each sample's timestep, in [0, T)
/// @param schedule the noise schedule
/// @param prediction_type what the UNet learns to predict
/// @param mode training (dropout on, with its seed) or inference
/// @param labels each sample's class, for a class-conditional UNet only
/// @param weighting Min-SNR-gamma weighting and the gradients' scale
/// @throws ldm::Error when a timestep is not in [0, T), or the UNet is class-conditional and no
///         labels are given
template <index_t N, class UNet>
requires(!UNet::conditional) double diffusion_loss_and_gradients(
    const UNet& unet, typename UNet::template Saved<N>& saved,
    View<const float, typename UNet::template sample<N>, typename UNet::space> x0,
    View<const float, typename UNet::template sample<N>, typename UNet::space> noise,
    View<const std::int32_t, Shape<N>, typename UNet::space> timesteps,
    const diffusion::Schedule& schedule, diffusion::PredictionType prediction_type,
    const nn::Mode& mode = {true},
    View<const std::int32_t, Shape<N>, typename UNet::space> labels =
        View<const std::int32_t, Shape<N>, typename UNet::space>(nullptr),
    const DiffusionLossWeighting& weighting = {}) {
  return detail::diffusion_loss_and_gradients<N>(unet, saved, x0, noise, timesteps, schedule,
                                                 prediction_type, mode, labels, weighting,
                                                 detail::NoContext{}, detail::NoContext{});
}

/// The same for a UNet conditioned by cross-attention (models::UNetCondition), on each sample's
/// context (encoder_hidden_states).
/// @param context each sample's tokens, of the UNet's cross_attention_dim channels
/// @param dcontext receives the gradient of the loss (times weighting.gradient_scale) with respect
///        to the context, for a context that learns (a label-token table); null (the default)
///        for a frozen encoder's output, which gets none
/// @throws ldm::Error as the overload without a context
template <index_t N, class UNet>
requires UNet::conditional double diffusion_loss_and_gradients(
    const UNet& unet, typename UNet::template Saved<N>& saved,
    View<const float, typename UNet::template sample<N>, typename UNet::space> x0,
    View<const float, typename UNet::template sample<N>, typename UNet::space> noise,
    View<const std::int32_t, Shape<N>, typename UNet::space> timesteps,
    View<const float, typename UNet::template context<N>, typename UNet::space> context,
    const diffusion::Schedule& schedule, diffusion::PredictionType prediction_type,
    const nn::Mode& mode = {true},
    View<const std::int32_t, Shape<N>, typename UNet::space> labels =
        View<const std::int32_t, Shape<N>, typename UNet::space>(nullptr),
    const DiffusionLossWeighting& weighting = {},
    View<float, typename UNet::template context<N>, typename UNet::space> dcontext =
        View<float, typename UNet::template context<N>, typename UNet::space>(nullptr)) {
  return detail::diffusion_loss_and_gradients<N>(unet, saved, x0, noise, timesteps, schedule,
                                                 prediction_type, mode, labels, weighting, context,
                                                 dcontext);
}

}  // namespace ldm::train
