#pragma once
/// @file
/// How LatentDiffusion trains (TrainingOptions, fixed at construction) and what each of its
/// training steps reports.

#include "ldm/diffusion/forward_process.hpp"
#include "ldm/train/adamw.hpp"
#include "ldm/train/autoencoder_loss.hpp"
#include "ldm/train/ema.hpp"
#include "ldm/train/lr_schedule.hpp"
#include "ldm/train/nonfinite_guard.hpp"

namespace ldm {

/// How LatentDiffusion trains: the optimisers, the losses, clipping, dropout, the prediction
/// type and the EMA. Fixed at construction.
struct TrainingOptions {
  train::AdamWConfig autoencoder_optimizer{.lr = 4e-4};  ///< AdamW of the autoencoder.
  train::AdamWConfig unet_optimizer{.lr = 4e-4};         ///< AdamW of the UNet.
  train::AutoencoderLossConfig autoencoder_loss{};  ///< The autoencoder loss's terms and weights.
  /// Both models' gradients are clipped to this global L2 norm before each step.
  double max_grad_norm = 1.0;
  float dropout = 0;  ///< The UNet's dropout probability in its ResNet blocks.
  /// What the UNet learns to predict (the noise, or v); samplers read its output the same way.
  diffusion::PredictionType prediction_type = diffusion::PredictionType::epsilon;
  /// The UNet's EMA. diffusers' train_unconditional.py: warm-up with power 3/4 up to 0.9999.
  train::EMAConfig ema{.decay = 0.9999, .use_ema_warmup = true, .power = 0.75};
  /// How many training steps of one model in a row may have a loss or gradient norm that is not
  /// finite before training stops with an ldm::Error (at least 1). Such steps are not applied.
  int max_nonfinite_steps_in_a_row = 3;
  /// Min-SNR-gamma weighting of the diffusion loss (train/min_snr.hpp), as diffusers'
  /// --snr_gamma (5 is the paper's choice); 0 leaves it off. Finite and >= 0.
  double snr_gamma = 0;
  /// Offset noise (train/offset_noise.hpp), as diffusers' --noise_offset (0.1 is common); 0
  /// leaves it off. Finite and >= 0.
  double noise_offset = 0;
  /// Classifier-free guidance training (pipeline/class_conditioning.hpp): the probability that a
  /// sample's class label is replaced by the null class. A class-conditional configuration only;
  /// 0.1 is common. In [0, 1].
  double label_dropout = 0;
  /// Classifier-free guidance training for a context-conditioned model
  /// (pipeline/context_conditioning.hpp): the probability that a sample's context is replaced by
  /// the model's null context. A configuration with a UNetConditionConfig only; 0.1 is common.
  /// In [0, 1].
  double context_dropout = 0;
  /// @{
  /// The learning-rate schedules (train/lr_schedule.hpp): each step uses the optimiser's lr
  /// times factor(optimiser steps taken). Constant schedules leave the optimisers' rates alone.
  train::LRSchedule autoencoder_lr_schedule{}, unet_lr_schedule{};
  /// @}
};

/// What LatentDiffusion::autoencoder_step() measured.
struct AutoencoderStepResult {
  train::AutoencoderLosses losses;  ///< The loss and its terms, before the step.
  double grad_norm = 0;             ///< The gradients' global L2 norm before clipping.
  /// True when a loss or the gradient norm was not finite, so that the step was not applied: the
  /// weights, the optimiser, the EMA and the step count are as before it.
  bool skipped = false;
  /// The autoencoder's skipped steps so far, this one included.
  train::SkippedSteps skipped_steps;
};
/// What LatentDiffusion::diffusion_step() measured.
struct DiffusionStepResult {
  /// @{
  /// The mean squared error of the UNet's prediction before the step; the gradients' global L2
  /// norm before clipping.
  double loss = 0, grad_norm = 0;
  /// @}
  /// True when the loss or the gradient norm was not finite, so that the step was not applied:
  /// the UNet's weights, its optimiser, the EMA and the step count are as before it.
  bool skipped = false;
  /// The UNet's skipped steps so far, this one included.
  train::SkippedSteps skipped_steps;
};

}  // namespace ldm
