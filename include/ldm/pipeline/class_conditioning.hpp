#pragma once
/// @file
/// Class conditioning and classifier-free guidance (Ho and Salimans, 2022) for LatentDiffusion.
///
/// A class-conditional configuration has UNetConfig's num_class_embeds = classes + 1: labels
/// 0 .. classes - 1 are the classes, and the last embedding (label `classes`) means "no class".
/// Training replaces a label by it with probability TrainingOptions::label_dropout, so that one
/// UNet learns both the conditional and the unconditional prediction. Guided sampling runs each
/// image twice in one batch, with its class and with none, and combines the two predictions as
/// diffusers' pipelines do: pred = pred_none + w (pred_class - pred_none). It happens before the
/// sampler's step, so every sampler takes guidance.
///
/// @code{.cpp}
///   model.diffusion_step<32>(images, labels);                    // labels: 32 int32 classes
///   model.sample<16>(model.sampler(50), seed, {.labels = wanted, .guidance_scale = 3}, out);
/// @endcode

#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include "ldm/pipeline/context_conditioning.hpp"

namespace ldm::pipeline {

/// A training micro-batch of images with each image's class, for a class-conditional model.
/// The autoencoder's step uses the images alone.
template <class ImagesView>
struct LabelledBatch {
  ImagesView images;                     ///< The images, in [-1, 1].
  std::span<const std::int32_t> labels;  ///< Each image's class (or the null class): one each.
};

/// Whether a micro-batch carries labels (a LabelledBatch).
template <class Batch>
inline constexpr bool is_labelled_batch = false;
/// A LabelledBatch carries labels.
template <class ImagesView>
inline constexpr bool is_labelled_batch<LabelledBatch<ImagesView>> = true;

/// The images of a training micro-batch, labelled, with contexts, or bare.
template <class Batch>
auto images_of(const Batch& batch) {
  if constexpr (is_labelled_batch<Batch> || is_context_batch<Batch>)
    return batch.images;
  else
    return batch;
}

/// What a class-conditional model is asked to draw.
struct ClassConditioning {
  /// Each image's class in [0, classes), or the null class for an unconditional image; empty
  /// draws every image unconditionally.
  std::vector<std::int32_t> labels;
  /// w in pred_none + w (pred_class - pred_none): 1 uses the conditional prediction alone (one
  /// UNet pass per step), 0 the unconditional; above 1 pushes the images towards their classes,
  /// at twice the UNet work (both predictions, as one batch).
  double guidance_scale = 1;
};

}  // namespace ldm::pipeline
