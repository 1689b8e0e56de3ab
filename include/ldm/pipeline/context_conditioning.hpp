#pragma once
/// @file
/// Cross-attention conditioning for LatentDiffusion: a configuration whose unet is a
/// UNetConditionConfig (diffusers' UNet2DConditionModel) also states its context's length,
/// `static constexpr index_t context_tokens = 77;`, and the caller gives each image's context
/// (encoder_hidden_states, such as a frozen text encoder's embeddings) of context_tokens tokens of
/// cross_attention_dim channels.
///
/// Classifier-free guidance as for classes (pipeline/class_conditioning.hpp), with the model's
/// null context in place of the null class: training replaces a sample's context by it with
/// probability TrainingOptions::context_dropout, and guided sampling runs [context, null context]
/// as one batch of 2N, combined as pred_null + w (pred_context - pred_null). The null context is
/// zeros unless set (LatentDiffusion::set_null_context, e.g. the text encoder's embedding of "");
/// save() writes it beside the weights, so a loaded model samples the same.
///
/// @code{.cpp}
///   model.diffusion_step<32>(images, context);        // context: Model::context<32>
///   model.sample<16>(model.sampler(50), seed, ldm::pipeline::ContextConditioning{ctx, 7.5}, out);
/// @endcode

namespace ldm::pipeline {

/// A training micro-batch of images with each image's context, for a model whose UNet is
/// conditioned by cross-attention. The autoencoder's step uses the images alone.
template <class ImagesView, class ContextView>
struct ContextBatch {
  ImagesView images;    ///< The images, in [-1, 1].
  ContextView context;  ///< Each image's context: Shape<N, tokens, cross_attention_dim>.
};

/// Whether a micro-batch carries contexts (a ContextBatch).
template <class Batch>
inline constexpr bool is_context_batch = false;
/// A ContextBatch carries contexts.
template <class ImagesView, class ContextView>
inline constexpr bool is_context_batch<ContextBatch<ImagesView, ContextView>> = true;

/// What a context-conditioned model is asked to draw: each image's context and the guidance.
template <class ContextView>
struct ContextConditioning {
  /// Each image's context (a View of Shape<N, tokens, cross_attention_dim>).
  ContextView context;
  /// w in pred_null + w (pred_context - pred_null): 1 uses the conditional prediction alone (one
  /// UNet pass per step), 0 the null context's; above 1 pushes the images towards their
  /// contexts, at twice the UNet work (both predictions, as one batch).
  double guidance_scale = 1;
};

/// Whether a sampling condition is a ContextConditioning.
template <class Condition>
inline constexpr bool is_context_conditioning = false;
/// A ContextConditioning is one.
template <class ContextView>
inline constexpr bool is_context_conditioning<ContextConditioning<ContextView>> = true;

}  // namespace ldm::pipeline
