#pragma once
/// @file
/// The autoencoder's training objective and its gradients, with the conventions of diffusers'
/// train_autoencoderkl.py (without its discriminator):
/// @verbatim
///   z = mean + exp(logvar / 2) * eps                      (reparameterisation)
///   pixel      = sum over elements of |x_hat - x| (or squared) / N
///   perceptual = w_p * (C * H * W) * mean_n d_n            (d_n: LPIPS or 1 - SSIM of sample n;
///                                                           diffusers adds the per-sample distance
///                                                           to every element before summing)
///   kl         = w_kl * mean_n KL(N(mean_n, var_n) || N(0, 1))
/// @endverbatim
/// One deliberate difference: that script evaluates LPIPS under no_grad, which makes the term a
/// constant; here it is differentiated, as in LDM's LPIPSWithDiscriminator.

#include "ldm/nn/module.hpp"
#include "ldm/ops/loss.hpp"
#include "ldm/train/perceptual.hpp"

namespace ldm::train {

/// The pixel term's distance.
enum class PixelLoss {
  l1,  ///< |x_hat - x| (diffusers' default)
  l2   ///< (x_hat - x)^2
};

/// The autoencoder loss's terms and their weights (diffusers' train_autoencoderkl.py defaults).
struct AutoencoderLossConfig {
  PixelLoss pixel = PixelLoss::l1;  ///< The pixel term's distance.
  double perceptual_weight = 1.0;   ///< w_p; 0 leaves the perceptual term out.
  double kl_weight = 1e-6;          ///< w_kl.
};

/// The loss of one batch and its terms, as in this file's description (total is their sum).
struct AutoencoderLosses {
  /// @{
  /// The loss and its pixel, perceptual and KL terms.
  double total = 0, pixel = 0, perceptual = 0, kl = 0;
  /// @}
};

/// The peak of what autoencoder_loss_and_gradients allocates beyond its arguments and the Saved:
/// mean, logvar, stddev and z throughout; d_x_hat, d_term, dz, dmean and dlogvar from the
/// backward on; the autoencoder's own scratch; beside d_x_hat and d_term, the perceptual term's
/// own (`perceptual_scratch`: SsimTerm::scratch, say).
template <index_t N, class AE>
constexpr std::size_t autoencoder_loss_scratch(const ops::HostScratch& host,
                                               std::size_t perceptual_scratch = 0) {
  using T = typename AE::value_type;
  using Space = typename AE::space;
  using Latents = Tensor<T, typename AE::template latents<N>, Space>;
  using Images = Tensor<T, typename AE::template images<N>, Space>;
  const auto encode = AE::template encode_scratch<N>(host);
  const auto decode = AE::template decode_scratch<N>(host);
  return 4 * nn::bytes_of<Latents> + nn::peak(encode.forward, decode.forward,
                                              2 * nn::bytes_of<Images> + perceptual_scratch,
                                              2 * nn::bytes_of<Images> + 3 * nn::bytes_of<Latents> +
                                                  nn::peak(decode.backward, encode.backward));
}

/// Runs forward and backward for one batch and accumulates the gradients of every autoencoder
/// parameter. eps is the reparameterisation noise; images are in [-1, 1].
/// @param ae the autoencoder (a models::AutoencoderKL)
/// @param saved its activations for this batch size
/// @param x the images
/// @param eps standard normal noise, one per latent element
/// @param config the terms and weights
/// @param perceptual the structural term (see perceptual.hpp); used when perceptual_weight > 0
/// @param reconstruction receives the decoded images
/// @param mode training (dropout on, with its seed) or inference
/// @param gradient_scale the gradients accumulated are those of this multiple of the loss: 1 / k
///        for one of k equal micro-batches whose gradients add up to those of the whole batch's
template <index_t N, class AE, class Perceptual, class T = typename AE::value_type,
          class Space = host>
AutoencoderLosses autoencoder_loss_and_gradients(
    const AE& ae, typename AE::template Saved<N>& saved,
    View<const T, typename AE::template images<N>, Space> x,
    View<const T, typename AE::template latents<N>, Space> eps, const AutoencoderLossConfig& config,
    Perceptual& perceptual, View<T, typename AE::template images<N>, Space> reconstruction,
    const nn::Mode& mode = {true}, double gradient_scale = 1) {
  using Images = typename AE::template images<N>;
  using Latents = typename AE::template latents<N>;
  constexpr double per_sample = double(Images::size / N);

  Tensor<T, Latents, Space> mean(uninitialized), logvar(uninitialized), stddev(uninitialized),
      z(uninitialized);
  ae.encode(x, saved.encode, mean.view(), logvar.view(), mode);
  stddev = exp(logvar * T(0.5));
  z = mean + stddev * eps;
  ae.decode(z, saved.decode, reconstruction, mode);

  AutoencoderLosses losses;
  const View<const T, Images, Space> x_hat = reconstruction;
  Tensor<T, Images, Space> d_x_hat(uninitialized), d_term(uninitialized);
  if (config.pixel == PixelLoss::l1) {
    losses.pixel = ops::l1_forward(x_hat, x) * per_sample;
    ops::l1_backward(x_hat, x, per_sample * gradient_scale, d_x_hat.view());
  } else {
    losses.pixel = ops::mse_forward(x_hat, x) * per_sample;
    ops::mse_backward(x_hat, x, per_sample * gradient_scale, d_x_hat.view());
  }
  if (config.perceptual_weight > 0) {
    const double scale = config.perceptual_weight * per_sample;
    losses.perceptual = scale * perceptual.forward(x_hat, x);
    perceptual.backward(scale * gradient_scale, d_term.view());
    d_x_hat += d_term;
  }
  losses.kl = config.kl_weight * ops::kl_forward(View<const T, Latents, Space>(mean),
                                                 View<const T, Latents, Space>(logvar));
  losses.total = losses.pixel + losses.perceptual + losses.kl;

  Tensor<T, Latents, Space> dz(uninitialized), dmean(uninitialized), dlogvar(uninitialized);
  ae.decode_backward(View<const T, Latents, Space>(z), saved.decode, d_x_hat, dz.view());
  ops::kl_backward(View<const T, Latents, Space>(mean), View<const T, Latents, Space>(logvar),
                   config.kl_weight * gradient_scale, dmean.view(), dlogvar.view());
  // z depends on mean with slope 1 and on logvar with slope eps * stddev / 2.
  dmean += dz;
  dlogvar += dz * eps * stddev * T(0.5);
  ae.encode_backward(x, saved.encode, dmean, dlogvar);
  return losses;
}

}  // namespace ldm::train
