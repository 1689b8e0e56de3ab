#pragma once
/// @file
/// LatentDiffusion<Config>: the autoencoder, the UNet, the noise schedule, both optimisers and the
/// UNet's EMA, with the two training steps, sampling, and diffusers-format checkpoints.
///
/// @code{.cpp}
///   ldm::LatentDiffusion<ldm::configs::Tiny> model(/*seed*/ 1);
///   model.autoencoder_step(images);          // Tensor<float, Shape<32, 32, 32, 1>> in [-1, 1]
///   model.diffusion_step(images);
///   model.sample<16>(model.sampler(50), /*seed*/ 7, out.view());  // the folder's sampler, 50
///   steps model.save("run/checkpoint");
/// @endcode
///
/// Randomness: every draw is a Philox stream (seed, purpose << 40 | step), so a run is a pure
/// function of its seed and its data, and resuming from a checkpoint continues it exactly.

#include <array>
#include <bit>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <variant>

#include "ldm/diffusion/ddim.hpp"
#include "ldm/diffusion/ddpm.hpp"
#include "ldm/diffusion/sampler.hpp"
#include "ldm/diffusion/slerp.hpp"
#include "ldm/distributed/communicator.hpp"
#include "ldm/models/autoencoder_kl.hpp"
#include "ldm/models/memory_plan.hpp"
#include "ldm/models/unet.hpp"
#include "ldm/nn/finite.hpp"
#include "ldm/pipeline/checkpoint.hpp"
#include "ldm/pipeline/checkpoint_store.hpp"
#include "ldm/pipeline/class_conditioning.hpp"
#include "ldm/pipeline/inpainting_mask.hpp"
#include "ldm/pipeline/label_tokens.hpp"
#include "ldm/pipeline/lr_schedule_metadata.hpp"
#include "ldm/pipeline/samplers.hpp"
#include "ldm/pipeline/scheduler_config.hpp"
#include "ldm/pipeline/training_options.hpp"
#include "ldm/pipeline/workspaces.hpp"
#include "ldm/train/adamw.hpp"
#include "ldm/train/autoencoder_loss.hpp"
#include "ldm/train/clip_grad.hpp"
#include "ldm/train/diffusion_loss.hpp"
#include "ldm/train/ema.hpp"
#include "ldm/train/lr_schedule.hpp"
#include "ldm/train/nonfinite_guard.hpp"
#include "ldm/train/offset_noise.hpp"
#include "ldm/train/perceptual.hpp"
#include "ldm/version.hpp"

namespace ldm {

/// The after-step hook of LatentDiffusion::denoise() that does nothing.
struct NoStepHook {
  /// Does nothing with the evaluation's index and the latents.
  template <class Latents>
  void operator()(std::size_t, const Latents&) const {}
};

/// A caller's own key/value state saved with a checkpoint.
using RunInfo = std::map<std::string, std::string>;

namespace detail {
// Whether a configuration's unet is a UNetConditionConfig (cross-attention on a context).
template <class Config>
inline constexpr bool cross_attention_unet =
    std::is_same_v<std::remove_cvref_t<decltype(Config::unet)>, UNetConditionConfig>;
// The context's tokens of a configuration: its context_tokens when its unet is a
// UNetConditionConfig (cross-attention), else 0.
template <class Config>
constexpr index_t context_tokens_of() {
  if constexpr (cross_attention_unet<Config>) {
    static_assert(
        requires { Config::context_tokens; },
        "ldm::LatentDiffusion: a configuration whose unet is a UNetConditionConfig "
        "states its context's length: static constexpr index_t context_tokens = 77;");
    return Config::context_tokens;
  } else {
    return 0;
  }
}
// The channels of a configuration's context tokens: its UNet's cross_attention_dim, else 0.
template <class Config>
constexpr index_t cross_attention_dim_of() {
  if constexpr (cross_attention_unet<Config>)
    return Config::unet.cross_attention_dim;
  else
    return 0;
}
// The classes of a configuration's learned label-token table (pipeline/label_tokens.hpp): its
// label_classes, 0 when it states none.
template <class Config>
constexpr index_t label_classes_of() {
  if constexpr (requires { Config::label_classes; }) {
    static_assert(
        cross_attention_unet<Config>,
        "ldm::LatentDiffusion: label_classes asks for a learned label-token table, which the UNet "
        "reads by cross-attention: the configuration's unet must be a UNetConditionConfig (a "
        "UNetConfig takes classes by its num_class_embeds instead)");
    static_assert(Config::label_classes >= 1,
                  "ldm::LatentDiffusion: label_classes (the label-token table's classes) must be "
                  "at least 1");
    static_assert(Config::unet.num_class_embeds == 0,
                  "ldm::LatentDiffusion: label_classes (a label-token table) and the UNet's "
                  "num_class_embeds (a class embedding) are two ways of taking classes: state one");
    return Config::label_classes;
  } else {
    return 0;
  }
}
}  // namespace detail

/// A latent diffusion model: the autoencoder, the UNet, the noise schedule, both optimisers and
/// the UNet's EMA, with the two training steps, sampling, and diffusers-format checkpoints.
///
/// Batches are template arguments (`autoencoder_step<32>(x)`), so one object trains and samples
/// at any batch size; the buffers of each batch size are kept after its first call.
/// @tparam Config a configuration (see ldm::configs): image_channels, resolution, autoencoder (an
///         AutoencoderKLConfig, whose latent_channels are the UNet's in and out channels), unet (a
///         UNetConfig, or a UNetConditionConfig with context_tokens,
///         pipeline/context_conditioning.hpp, and optionally label_classes,
///         pipeline/label_tokens.hpp) and schedule (such as diffusion::LinearBetas<1000>)
/// @tparam Space ldm::host, or ldm::cuda in a .cu unit that links ldm::cuda
template <class Config, class Space = host>
class LatentDiffusion {
 public:
  using config = Config;  ///< The configuration.
  using space = Space;    ///< Where the weights and the work live.
  static_assert(
      !requires { Config::latent_channels; },
      "ldm::LatentDiffusion: latent_channels is stated once, in the configuration's "
      "autoencoder (AutoencoderKLConfig's .latent_channels); remove the configuration's "
      "own latent_channels");
  /// The autoencoder's type.
  using AE = models::AutoencoderKL<float, Space, Config::image_channels, Config::resolution,
                                   Config::autoencoder>;
  static constexpr index_t latent_res = AE::latent_res;  ///< The latents' height and width.
  /// The latents' channels: the autoencoder's latent_channels, the UNet's in and out channels.
  static constexpr index_t latent_channels = AE::latent_channels;
  /// The UNet's type: a models::UNetCondition on context_tokens tokens when Config::unet is a
  /// UNetConditionConfig.
  using UNet = models::UNet<float, Space, latent_channels, latent_res, Config::unet,
                            detail::context_tokens_of<Config>()>;
  /// A batch of N images: Shape<N, resolution, resolution, image_channels>, values in [-1, 1].
  template <index_t N>
  using images = typename AE::template images<N>;
  /// A batch of N latents: Shape<N, latent_res, latent_res, latent_channels>.
  template <index_t N>
  using latents = typename AE::template latents<N>;

  /// Whether the UNet embeds class labels itself (UNetConfig's num_class_embeds > 0).
  static constexpr bool class_embedding = Config::unet.num_class_embeds > 0;
  /// Whether the model learns a label-token table whose rows are the contexts of the UNet's
  /// cross-attention (the configuration's label_classes; pipeline/label_tokens.hpp).
  static constexpr bool label_tokens = detail::label_classes_of<Config>() > 0;
  /// Whether the model takes class labels: by the UNet's class embedding, or by a label-token
  /// table. Both train and sample alike (pipeline/class_conditioning.hpp).
  static constexpr bool class_conditional = class_embedding || label_tokens;
  /// The classes of a class-conditional model, labels 0 .. classes - 1 (0 for an unconditional
  /// one): num_class_embeds - 1, the last embedding being the null class, or label_classes.
  static constexpr index_t classes =
      class_embedding ? Config::unet.num_class_embeds - 1 : detail::label_classes_of<Config>();
  /// The label that means "no class" (pipeline/class_conditioning.hpp).
  static constexpr std::int32_t null_class = std::int32_t(classes);
  static_assert(!class_embedding || classes >= 1,
                "ldm::LatentDiffusion: a class-conditional UNetConfig's num_class_embeds is the "
                "number of classes + 1 (the last is the null class of guidance), so at least 2");
  /// A training micro-batch of N images with their labels, for a class-conditional model.
  template <index_t N>
  using labelled_images = pipeline::LabelledBatch<View<const float, images<N>, Space>>;

  /// Whether the UNet attends to a context by cross-attention (a UNetConditionConfig): the
  /// caller's contexts, or the rows of a label-token table (label_tokens).
  static constexpr bool context_conditional = UNet::conditional;
  /// The context's tokens (Config::context_tokens; 0 without cross-attention).
  static constexpr index_t context_tokens = UNet::context_tokens;
  /// A batch of N contexts: Shape<N, context_tokens, cross_attention_dim>.
  template <index_t N>
  using context = typename UNet::template context<N>;
  /// A training micro-batch of N images with their contexts, for a context-conditioned model.
  template <index_t N>
  using context_batch = pipeline::ContextBatch<View<const float, images<N>, Space>,
                                               View<const float, context<N>, Space>>;
  /// The learned label-token table's type (pipeline/label_tokens.hpp) when label_tokens, else an
  /// empty stand-in.
  using LabelTokens =
      std::conditional_t<label_tokens,
                         pipeline::LabelTokenTable<Space, classes, context_tokens,
                                                   detail::cross_attention_dim_of<Config>()>,
                         pipeline::NoLabelTokenTable>;
  static_assert(!(context_conditional && class_embedding),
                "ldm::LatentDiffusion: a UNetConditionConfig with num_class_embeds (classes and a "
                "context together) is not supported by the pipeline");

  /// New models with PyTorch's default initialisations, drawn from `seed`.
  /// @param seed every random draw of the run (initial weights, noise, timesteps, dropout) comes
  ///        from it
  /// @param options how to train; fixed for the object's life
  /// @throws ldm::Error naming the option when snr_gamma or noise_offset is negative or not
  ///         finite, or a learning-rate schedule is invalid (train::LRSchedule::validate)
  explicit LatentDiffusion(std::uint64_t seed, TrainingOptions options = {})
      : options_(checked(options)),
        seed_(seed),
        autoencoder_(seed ^ 0xA0A0A0A0ull),
        unet_(seed ^ 0x0B0B0B0Bull, options.dropout),
        ema_unet_(seed, options.dropout),
        autoencoder_optimizer_(options.autoencoder_optimizer, AE::parameter_count),
        unet_optimizer_(options.unet_optimizer, UNet::parameter_count),
        ema_(options.ema, span(unet_.values())),
        scheduler_{.schedule = Config::schedule::config,
                   .prediction_type = options.prediction_type,
                   // Latents are not confined to [-1, 1] as images are.
                   .clip_sample = false},
        schedule_(scheduler_.make_schedule()),
        autoencoder_guard_("the autoencoder", options.max_nonfinite_steps_in_a_row),
        unet_guard_("the UNet", options.max_nonfinite_steps_in_a_row),
        label_tokens_(seed ^ 0x7070707070ull, options.unet_optimizer, options.ema),
        null_context_(caller_context ? std::size_t(context<1>::size) : 0, 0.0f) {}

  /// LPIPS weights (the lpips package's VGG16 variant, tools/convert_lpips_weights.py) make LPIPS
  /// the perceptual term; without them the term is 1 - SSIM.
  /// @throws ldm::Error when the file cannot be read, is not a valid safetensors file or does not
  ///         hold the LPIPS tensors, or when the images are smaller than 16x16
  void load_lpips(const std::filesystem::path& weights) {
    if constexpr (lpips_possible) {
      auto lpips = std::make_unique<Lpips>();
      lpips->load(io::SafetensorsFile::open(weights));
      lpips_ = std::move(lpips);
    } else {
      fail(weights.string(), ": LPIPS needs images of at least 16x16; this configuration's are ",
           Config::resolution, "x", Config::resolution);
    }
  }
  /// Whether load_lpips() has given LPIPS weights.
  bool uses_lpips() const { return lpips_ != nullptr; }

  /// One optimisation step of the autoencoder on a batch of images in [-1, 1], with the
  /// perceptual term perceptual_term() names.
  template <index_t N>
  AutoencoderStepResult autoencoder_step(View<const float, images<N>, Space> x) {
    return autoencoder_step<N>(1, [x](index_t) { return x; });
  }

  /// One optimisation step of the autoencoder over an effective batch of micro_batches * N images,
  /// with the perceptual term perceptual_term() names: the gradients of the micro-batches are
  /// accumulated (each scaled by 1 / micro_batches, so that they add up to those of the mean over
  /// the effective batch), then clipped, checked and applied once, as one step on the whole batch.
  /// Micro-batch j's images are samples j * N .. j * N + N - 1 of that batch, and draw the
  /// reparameterisation noise and dropout masks those samples would: the step equals one on the
  /// whole batch to float rounding (the sums run in another order), whatever the split.
  /// @param micro_batches how many batches of N make the step (>= 1)
  /// @param batch_of batch_of(j) for j = 0, 1, ... micro_batches - 1 in that order returns
  ///        micro-batch j as a View<const float, images<N>, Space>, valid until the next call
  ///        (or as a labelled_images<N>, whose labels this step does not use)
  /// @return the losses are their means over the effective batch
  /// @throws ldm::Error when micro_batches < 1, or too many steps in a row were not finite
  template <index_t N, class MicroBatches>
  AutoencoderStepResult autoencoder_step(index_t micro_batches, MicroBatches&& batch_of) {
    distributed::SingleProcess<Space> alone;
    return autoencoder_step<N>(alone, micro_batches, batch_of);
  }

  /// One optimisation step of a data-parallel run: this process's share of an effective batch of
  /// comm.size() * micro_batches * N images. Rank r's micro-batch j holds samples
  /// (r * micro_batches + j) * N ... of that batch and draws what they would in one process. The
  /// ranks' gradients and losses are summed in rank order (comm's all_reduce_sum), so clipping,
  /// the non-finite guard, AdamW and the step count are the same on every rank. Within a rank the
  /// micro-batches' gradients are each formed alone and added in order, so K ranks of one
  /// micro-batch each equal one process of K micro-batches bit for bit. Every rank must call it
  /// with the same micro_batches, in the same order as its other collective calls.
  /// @param comm the ranks (distributed::SingleProcess for one process)
  /// @param micro_batches how many batches of N this rank contributes (>= 1)
  /// @param batch_of as autoencoder_step(micro_batches, batch_of)'s: this rank's micro-batches
  /// @throws ldm::Error when micro_batches < 1, or too many steps in a row were not finite
  template <index_t N, class Comm, class MicroBatches>
  requires distributed::Communicator<Comm, Space> AutoencoderStepResult
  autoencoder_step(Comm& comm, index_t micro_batches, MicroBatches&& batch_of) {
    if (options_.autoencoder_loss.perceptual_weight == 0) {
      train::NoPerceptual none;
      return autoencoder_step_from<N>(comm, micro_batches, batch_of, none);
    }
    if constexpr (lpips_possible) {
      if (lpips_) {
        auto& term = workspaces_.get<train::LpipsTerm<Lpips, N>>();
        term.bind(*lpips_);
        return autoencoder_step_from<N>(comm, micro_batches, batch_of, term);
      }
    }
    if constexpr (ssim_possible) {
      return autoencoder_step_from<N>(comm, micro_batches, batch_of,
                                      workspaces_.get<train::SsimTerm<float, images<N>, Space>>());
    } else {
      train::NoPerceptual none;
      return autoencoder_step_from<N>(comm, micro_batches, batch_of, none);
    }
  }

  /// Which structural term autoencoder_step() uses, for a trainer to say when it starts.
  std::string perceptual_term() const {
    if (options_.autoencoder_loss.perceptual_weight == 0) return "none (perceptual weight 0)";
    if (lpips_) return "LPIPS (VGG16)";
    if (ssim_possible) return "1 - SSIM (no LPIPS weights loaded)";
    return "none (images smaller than SSIM's 11x11 window)";
  }

  /// The same with a perceptual term of the caller's (train/perceptual.hpp).
  /// A step whose loss or gradient norm is not finite is not applied (result.skipped); the next
  /// one draws the same noise, as if the skipped batch had never come.
  template <index_t N, class Perceptual>
  AutoencoderStepResult autoencoder_step(View<const float, images<N>, Space> x,
                                         Perceptual& perceptual) {
    return autoencoder_step<N>(
        1, [x](index_t) { return x; }, perceptual);
  }

  /// The accumulating step with a perceptual term of the caller's (train/perceptual.hpp).
  /// @throws ldm::Error when micro_batches < 1, or too many steps in a row were not finite
  template <index_t N, class MicroBatches, class Perceptual>
  AutoencoderStepResult autoencoder_step(index_t micro_batches, MicroBatches&& batch_of,
                                         Perceptual& perceptual) {
    distributed::SingleProcess<Space> alone;
    return autoencoder_step_from<N>(alone, micro_batches, batch_of, perceptual);
  }
  /// The posterior means of a batch, scaled by the scaling factor: what the UNet learns to make.
  /// @param x images in [-1, 1]
  /// @param z receives the latents
  /// @throws ldm::Error when the scaling factor is 0 or not finite, or the latents are not finite
  ///         (naming the cause: the images, or the first bad weight)
  template <index_t N>
  void encode(View<const float, images<N>, Space> x, View<float, latents<N>, Space> z) {
    require_usable_scaling_factor("encode");
    encode_unchecked<N>(x, z);
    if (!finite(z)) explain_nonfinite_output("encode", finite(x), "images", "latents");
  }

  /// Images from latents scaled as encode() makes them (divided by the scaling factor, then
  /// through the decoder).
  /// @param z latents
  /// @param x receives the images (about [-1, 1]; not clamped)
  /// @throws ldm::Error when the scaling factor is 0 or not finite, or the images are not finite
  ///         (naming the cause: the latents, or the first bad weight)
  template <index_t N>
  void decode(View<const float, latents<N>, Space> z, View<float, images<N>, Space> x) {
    require_usable_scaling_factor("decode");
    auto& w = workspaces_.get<DecodeWork<N>>();
    w.unscaled =
        z * float(1 / latent_scaling_.scaling_factor) + float(latent_scaling_.shift_factor);
    autoencoder_->decode(w.unscaled, w.saved, x);
    if (!finite(x)) explain_nonfinite_output("decode", finite(z), "latents", "images");
  }

  /// 1 / std of the posterior means of a batch, as LDM's scale_by_std; done by the first
  /// diffusion step unless set or loaded. Returns the factor, which is then used.
  /// @throws ldm::Error when the batch's latents have no spread (the factor would be infinite)
  template <index_t N>
  double measure_scaling_factor(View<const float, images<N>, Space> x) {
    auto& w = workspaces_.get<EncodeWork<N>>();
    Tensor<float, latents<N>, Space> mean;
    autoencoder_->encode(x, w.saved, mean.view(), w.logvar.view());
    const double m = ldm::mean(mean);
    const double variance = ldm::mean(square(mean - float(m)));
    if (!std::isfinite(variance)) {
      require_finite_autoencoder("measuring the scaling factor");
      fail("ldm::LatentDiffusion: the latents of this batch are not finite (variance ", variance,
           "), so they give no scaling factor");
    }
    if (!(variance > 0)) fail("ldm::LatentDiffusion: the latents of this batch have no spread");
    latent_scaling_.scaling_factor = 1 / std::sqrt(variance);
    scaling_measured_ = true;
    return latent_scaling_.scaling_factor;
  }

  /// One optimisation step of the UNet (and its EMA) with the autoencoder frozen, on a batch of
  /// images in [-1, 1]: each sample gets its own uniformly drawn timestep.
  /// A step whose loss or gradient norm is not finite is not applied (result.skipped); the next
  /// one draws the same noise and timesteps, as if the skipped batch had never come.
  /// @throws ldm::Error when too many steps in a row were not finite (naming the loss and the
  ///         step), or when this first step measures the scaling factor and the batch's latents
  ///         have no spread
  template <index_t N>
  DiffusionStepResult diffusion_step(View<const float, images<N>, Space> x) {
    return diffusion_step<N>(1, [x](index_t) { return x; });
  }

  /// The same for a class-conditional model, with each image's class: a label in [0, classes),
  /// or null_class for an image without one. TrainingOptions::label_dropout replaces labels by
  /// the null class, each sample by its own draw.
  /// @throws ldm::Error when there are not N labels or one is outside [0, classes]; as the step
  ///         without labels
  template <index_t N>
  DiffusionStepResult diffusion_step(View<const float, images<N>, Space> x,
                                     std::span<const std::int32_t> labels) {
    return diffusion_step<N>(1, [&](index_t) { return labelled_images<N>{x, labels}; });
  }

  /// The same for a context-conditioned model, with each image's context (say, a frozen text
  /// encoder's embeddings of its caption). TrainingOptions::context_dropout replaces contexts by
  /// the null context, each sample by its own draw. A context that is not finite makes the step
  /// one the non-finite guard skips.
  /// @throws ldm::Error as the step without a context
  template <index_t N>
  DiffusionStepResult diffusion_step(View<const float, images<N>, Space> x,
                                     View<const float, context<N>, Space> context_states) {
    return diffusion_step<N>(1, [&](index_t) { return context_batch<N>{x, context_states}; });
  }

  /// One optimisation step of the UNet (and its EMA) over an effective batch of micro_batches * N
  /// images, accumulated as autoencoder_step(micro_batches, batch_of) accumulates: sample n of
  /// micro-batch j draws the noise, offset noise, timestep and dropout masks sample j * N + n
  /// draws in one step on the whole batch, which this step equals to float rounding. When this
  /// first step measures the scaling factor, it measures it on micro-batch 0 only.
  /// @param micro_batches how many batches of N make the step (>= 1)
  /// @param batch_of batch_of(j) for j = 0, 1, ... micro_batches - 1 in that order returns
  ///        micro-batch j as a View<const float, images<N>, Space>, valid until the next call;
  ///        for a class-conditional model, as a labelled_images<N> (the labels too); for a
  ///        context-conditioned one, as a context_batch<N> (the contexts too)
  /// @return the loss is its mean over the effective batch
  /// @throws ldm::Error when micro_batches < 1; as the single-batch step
  template <index_t N, class MicroBatches>
  DiffusionStepResult diffusion_step(index_t micro_batches, MicroBatches&& batch_of) {
    distributed::SingleProcess<Space> alone;
    return diffusion_step<N>(alone, micro_batches, batch_of);
  }

  /// One optimisation step of the UNet in a data-parallel run, shared between the ranks as
  /// autoencoder_step(comm, micro_batches, batch_of) shares its step. The scaling factor, when
  /// this first step measures it, is rank 0's measure on its micro-batch 0 (the effective batch's
  /// first), handed to every rank.
  /// @throws ldm::Error when micro_batches < 1; as the single-batch step
  template <index_t N, class Comm, class MicroBatches>
  requires distributed::Communicator<Comm, Space> DiffusionStepResult
  diffusion_step(Comm& comm, index_t micro_batches, MicroBatches&& batch_of) {
    return diffusion_step_from<N>(comm, micro_batches, batch_of);
  }

  /// Makes a data-parallel run's ranks hold rank 0's state: its weights, EMA and both
  /// optimisers' moments are broadcast (with the label-token table's, or the null context); the
  /// step counters, optimiser steps and scaling factor are compared, and a rank that differs (it
  /// loaded another checkpoint) is an ldm::Error naming both values. A trainer calls it after
  /// construction and after load(), on every rank.
  /// @throws ldm::Error when a rank's counters or scaling factor are not rank 0's
  template <class Comm>
  requires distributed::Communicator<Comm, Space>
  void broadcast_state(Comm& comm) {
    auto all = [&](std::span<float> values) { comm.broadcast(values, 0); };
    all(span(autoencoder_.values()));
    all(span(unet_.values()));
    for (std::span<float> moment : autoencoder_optimizer_.moments())
      all(moment);
    for (std::span<float> moment : unet_optimizer_.moments())
      all(moment);
    all(ema_.shadow_buffer());
    if constexpr (label_tokens) label_tokens_.broadcast(comm);
    if constexpr (caller_context) {
      // Set by set_null_context() or loaded: the contexts of dropout and of guidance.
      Tensor<float, context<1>, Space> null_context;
      copy_elements<host, Space>(null_context_.data(), null_context.data(), null_context_.size());
      all({null_context.data(), null_context_.size()});
      null_context_ = host_vector<Space>(null_context.data(), null_context_.size());
    }
    char mine[256];
    std::snprintf(mine, sizeof mine,
                  "autoencoder step %llu, diffusion step %llu, optimiser steps %lld and %lld, EMA "
                  "step %lld, scaling factor %a (%s)",
                  (unsigned long long)autoencoder_steps_, (unsigned long long)diffusion_steps_,
                  (long long)autoencoder_optimizer_.steps(), (long long)unet_optimizer_.steps(),
                  (long long)ema_.optimization_step(), latent_scaling_.scaling_factor,
                  scaling_measured_ ? "measured" : "not measured");
    std::string rank0 = mine;
    comm.broadcast(rank0, 0);
    if (rank0 != mine)
      fail("rank ", comm.rank(), " holds ", mine, ", rank 0 ", rank0,
           ": the ranks loaded different checkpoints");
  }

  /// Images from noise: N latents drawn from `seed`, denoised by the EMA UNet (or the raw one)
  /// with any sampler (ldm/diffusion/sampler.hpp), decoded. The same sampler and seed give the
  /// same images. Weights, latents or images that are not finite are an ldm::Error naming the
  /// first culprit, and `out` is then not to be used.
  /// @param sampler the sampler and its steps, such as sampler(50) (the model folder's own) or a
  ///        diffusion::DDIM built from schedule() and scheduler().ddim()
  /// @param seed the initial noise and each step's noise (for the samplers that add some)
  /// @param out receives the images (about [-1, 1]; not clamped)
  /// @param use_ema false denoises with the UNet's raw weights
  /// @throws ldm::Error when a weight, the latents or the images are not finite
  template <index_t N, diffusion::Sampler S>
  void sample(const S& sampler, std::uint64_t seed, View<float, images<N>, Space> out,
              bool use_ema = true) {
    sample<N>(sampler, seed, {}, out, use_ema);
  }

  /// Images of the classes `condition` asks for, with its guidance
  /// (pipeline/class_conditioning.hpp); otherwise as sample(sampler, seed, out, use_ema), which
  /// draws a class-conditional model's images without a class. The initial noise does not depend on
  /// the condition, so one seed draws the same start for every class and guidance scale.
  /// @throws ldm::Error when the model is not class-conditional and labels or a guidance scale
  ///         other than 1 are given, when there are labels but not N, a label is outside
  ///         [0, classes], or the guidance scale is not finite; as sample(sampler, seed, out)
  template <index_t N, diffusion::Sampler S>
  void sample(const S& sampler, std::uint64_t seed, const pipeline::ClassConditioning& condition,
              View<float, images<N>, Space> out, bool use_ema = true) {
    require_usable_scaling_factor("sample");
    require_finite_autoencoder("sample");
    auto& w = workspaces_.get<SampleWork<N>>();
    w.x = sampler.init_noise_sigma() * initial_noise<latents<N>>(seed);
    denoise<N>(sampler, 0, seed, use_ema, condition, w.x.view());
    decode<N>(w.x, out);
  }

  /// Images of the contexts `condition` gives (pipeline/context_conditioning.hpp), with its
  /// guidance: one UNet pass on N with guidance 1, else one on 2N ([context, null context]).
  /// Otherwise as sample(sampler, seed, out, use_ema), which draws a context-conditioned model's
  /// images with the null context; the initial noise does not depend on the condition.
  /// @param condition its context converts to a View<const float, context<N>, Space>
  /// @throws ldm::Error when the guidance scale or a context value is not finite; as
  ///         sample(sampler, seed, out)
  template <index_t N, diffusion::Sampler S, class ContextView>
  void sample(const S& sampler, std::uint64_t seed,
              const pipeline::ContextConditioning<ContextView>& condition,
              View<float, images<N>, Space> out, bool use_ema = true) {
    require_usable_scaling_factor("sample");
    require_finite_autoencoder("sample");
    auto& w = workspaces_.get<SampleWork<N>>();
    w.x = sampler.init_noise_sigma() * initial_noise<latents<N>>(seed);
    denoise<N>(sampler, 0, seed, use_ema, condition, w.x.view());
    decode<N>(w.x, out);
  }

  /// The same with whichever sampler `sampler` holds.
  template <index_t N, class ContextView, class... Samplers>
  void sample(const std::variant<Samplers...>& sampler, std::uint64_t seed,
              const pipeline::ContextConditioning<ContextView>& condition,
              View<float, images<N>, Space> out, bool use_ema = true) {
    std::visit([&](const auto& s) { sample<N>(s, seed, condition, out, use_ema); }, sampler);
  }

  /// The same with whichever sampler `sampler` holds.
  template <index_t N, class... Samplers>
  void sample(const std::variant<Samplers...>& sampler, std::uint64_t seed,
              View<float, images<N>, Space> out, bool use_ema = true) {
    sample<N>(sampler, seed, {}, out, use_ema);
  }
  /// The same with whichever sampler `sampler` holds.
  template <index_t N, class... Samplers>
  void sample(const std::variant<Samplers...>& sampler, std::uint64_t seed,
              const pipeline::ClassConditioning& condition, View<float, images<N>, Space> out,
              bool use_ema = true) {
    std::visit([&](const auto& s) { sample<N>(s, seed, condition, out, use_ema); }, sampler);
  }

  /// The sampler of this model's scheduler (the loaded folder's scheduler_config.json, or the
  /// configuration's schedule with DDIM) taking `steps` steps, with `options` applied as
  /// diffusers' `from_config(config, **options)`: `{"_class_name": "DDPMScheduler"}` picks another
  /// sampler with the same schedule and prediction type, `{"eta": 0.5}` changes a setting.
  /// @throws ldm::Error when steps is not in [1, num_train_timesteps], or an option names a
  ///         class ldm does not implement, a field the class does not read, or a bad value
  pipeline::AnySampler sampler(int steps, const pipeline::json& options = nullptr) const {
    return pipeline::make_sampler(pipeline::with_options(scheduler_, options), steps);
  }

  /// The latents x denoised in place from evaluation `first` of `sampler` to its end, as
  /// sample() does after drawing them: the building block of image-to-image and inpainting.
  /// Evaluation i draws its noise from (seed, i + 1); `after_step(i, x)` runs after each step.
  /// @throws ldm::Error when `first` is past the sampler's evaluations, or a weight or the
  ///         denoised latents are not finite
  template <index_t N, diffusion::Sampler S, class AfterStep = NoStepHook>
  void denoise(const S& sampler, std::size_t first, std::uint64_t seed, bool use_ema,
               View<float, latents<N>, Space> x, const AfterStep& after_step = {}) {
    denoise<N>(sampler, first, seed, use_ema, {}, x, after_step);
  }

  /// The same towards the classes `condition` asks for, with its guidance, as sample() with a
  /// condition denoises.
  /// @throws ldm::Error as denoise() without a condition, and for a condition sample() refuses
  template <index_t N, diffusion::Sampler S, class AfterStep = NoStepHook>
  void denoise(const S& sampler, std::size_t first, std::uint64_t seed, bool use_ema,
               const pipeline::ClassConditioning& condition, View<float, latents<N>, Space> x,
               const AfterStep& after_step = {}) {
    denoise_conditioned<N>(sampler, first, seed, use_ema, condition, x, after_step);
  }

  /// The same towards the contexts `condition` gives, with its guidance, as sample() with a
  /// context condition denoises.
  /// @throws ldm::Error as denoise() without a condition, and for a condition sample() refuses
  template <index_t N, diffusion::Sampler S, class ContextView, class AfterStep = NoStepHook>
  void denoise(const S& sampler, std::size_t first, std::uint64_t seed, bool use_ema,
               const pipeline::ContextConditioning<ContextView>& condition,
               View<float, latents<N>, Space> x, const AfterStep& after_step = {}) {
    denoise_conditioned<N>(sampler, first, seed, use_ema, condition, x, after_step);
  }

  /// The null context of a context-conditioned model: what context dropout trains in place of a
  /// sample's context, the second half of guided sampling, and what the calls without a
  /// condition use. Zeros until set; save() writes it (null_context.safetensors) and load()
  /// reads it back (zeros for a folder without that file, such as diffusers').
  /// @param null_context one context (e.g. the text encoder's embedding of "")
  /// @throws ldm::Error when a value is not finite
  void set_null_context(View<const float, context<1>, Space> null_context) {
    static_assert(!label_tokens,
                  "ldm::LatentDiffusion::set_null_context: this model's null context is its "
                  "label-token table's last row, which it learns");
    static_assert(context_conditional,
                  "ldm::LatentDiffusion::set_null_context: the configuration's UNet has no "
                  "cross-attention (its unet is not a UNetConditionConfig)");
    auto values = host_vector<Space>(null_context.data(), std::size_t(context<1>::size));
    nn::require_finite_values(values, "set_null_context:");
    null_context_ = std::move(values);
  }
  /// The learned label-token table of a configuration with label_classes
  /// (pipeline/label_tokens.hpp): its values, gradients and EMA in host memory.
  const LabelTokens& label_token_table() const {
    static_assert(label_tokens,
                  "ldm::LatentDiffusion::label_token_table: the configuration states no "
                  "label_classes, so the model has no label-token table");
    return label_tokens_;
  }
  /// Replaces the label-token table's values (say, a text encoder's embeddings of the class
  /// names) and restarts its EMA from them.
  /// @param values (classes + 1) x context_tokens x cross_attention_dim values in host memory,
  ///        row by row, the null label's last
  /// @throws ldm::Error when there are not that many values or one is not finite
  void set_label_tokens(std::span<const float> values) {
    static_assert(label_tokens,
                  "ldm::LatentDiffusion::set_label_tokens: the configuration states no "
                  "label_classes, so the model has no label-token table");
    if (values.size() != std::size_t(LabelTokens::parameter_count))
      fail_expected("set_label_tokens: values",
                    std::to_string(LabelTokens::parameter_count) +
                        " ((classes + 1) x context_tokens x cross_attention_dim)",
                    values.size());
    nn::require_finite_values(values, "set_label_tokens:");
    label_tokens_.set(std::vector<float>(values.begin(), values.end()));
  }
  /// The null context in host memory (context_tokens x cross_attention_dim values, token-major;
  /// empty without cross-attention, or with a label-token table).
  const std::vector<float>& null_context() const { return null_context_; }

 private:
  template <index_t N, diffusion::Sampler S, class Condition, class AfterStep>
  void denoise_conditioned(const S& sampler, std::size_t first, std::uint64_t seed, bool use_ema,
                           const Condition& condition, View<float, latents<N>, Space> x,
                           const AfterStep& after_step) {
    denoise_with<N>(
        sampler, first, use_ema, x,
        [&](std::size_t i) {
          return randn<latents<N>>(seed, stream(Purpose::sampling_noise, i + 1));
        },
        after_step, condition);
  }

 public:
  /// A batch of mask images: Shape<N, resolution, resolution, 1>, 1 repaints and 0 keeps.
  template <index_t N>
  using masks = Shape<N, Config::resolution, Config::resolution, 1>;
  /// Masks on the latent grid: Shape<N, latent_res, latent_res, 1>.
  template <index_t N>
  using latent_masks = Shape<N, latent_res, latent_res, 1>;

  /// Image-to-image, as diffusers' StableDiffusionImg2ImgPipeline: the images are encoded (to
  /// their posterior means, as encode() does and as the UNet was trained, where diffusers draws a
  /// sample of the posterior unless told `sample_mode="argmax"`), noised to the sampler's
  /// noise_level(first) with sample()'s initial noise for `seed`, first =
  /// diffusion::first_evaluation(sampler, strength), denoised from there and decoded.
  /// @param strength in [0, 1]: how much of the trajectory runs (1: all of it, from the noisiest
  ///        timestep, where the image still weighs noise_level(0).signal); at least 1 / steps
  /// @param inputs the images to start from, in [-1, 1]
  /// @param seed the initial noise and each step's noise, as sample()'s
  /// @param out receives the images (about [-1, 1]; not clamped)
  /// @param use_ema false denoises with the UNet's raw weights
  /// @throws ldm::Error (before any work) when strength is not in [0, 1] or too small for one
  ///         step; when a weight, the latents or the images are not finite
  template <index_t N, diffusion::Sampler S>
  void img2img(const S& sampler, double strength, View<const float, images<N>, Space> inputs,
               std::uint64_t seed, View<float, images<N>, Space> out, bool use_ema = true) {
    const std::size_t first = diffusion::first_evaluation(sampler, strength);
    require_usable_scaling_factor("img2img");
    require_finite_autoencoder("img2img");
    auto& w = workspaces_.get<SampleWork<N>>();
    auto& z0 = workspaces_.get<EditWork<N>>().z0;
    encode<N>(inputs, z0.view());
    const diffusion::NoiseLevel level = sampler.noise_level(first);
    w.x = level.signal * diffusion::in_double(z0) +
          level.noise * diffusion::in_double(initial_noise<latents<N>>(seed));
    denoise<N>(sampler, first, seed, use_ema, w.x.view());
    decode<N>(w.x, out);
  }

  /// The same with whichever sampler `sampler` holds.
  template <index_t N, class... Samplers>
  void img2img(const std::variant<Samplers...>& sampler, double strength,
               View<const float, images<N>, Space> inputs, std::uint64_t seed,
               View<float, images<N>, Space> out, bool use_ema = true) {
    std::visit([&](const auto& s) { img2img<N>(s, strength, inputs, seed, out, use_ema); },
               sampler);
  }

  /// Inpainting with this (not inpainting-trained) UNet, as diffusers'
  /// StableDiffusionInpaintPipeline with a 4-channel UNet: the mask is brought to the latent grid
  /// (pipeline/inpainting_mask.hpp: binarised at 0.5, nearest), the images encoded (posterior
  /// means, as img2img()), and inpaint_latents() repaints the masked latents, which are decoded.
  /// Outside the mask the decoded images are the autoencoder's reconstructions, not the inputs.
  /// @param inputs the images, in [-1, 1]
  /// @param mask one channel per image: 1 (>= 0.5) repaints, 0 keeps; values in [0, 1]
  /// @param seed the initial noise and each step's noise, as sample()'s
  /// @param out receives the images (about [-1, 1]; not clamped)
  /// @param strength as img2img()'s; 1 starts from pure noise
  /// @param use_ema false denoises with the UNet's raw weights
  /// @throws ldm::Error (before any work) when strength is not in [0, 1] or too small for one
  ///         step, or a mask value is not in [0, 1]; when a weight, the latents or the images are
  ///         not finite
  template <index_t N, diffusion::Sampler S>
  void inpaint(const S& sampler, View<const float, images<N>, Space> inputs,
               View<const float, masks<N>, Space> mask, std::uint64_t seed,
               View<float, images<N>, Space> out, double strength = 1, bool use_ema = true) {
    diffusion::first_evaluation(sampler, strength);
    pipeline::require_mask_values(mask, "inpaint: mask");
    auto& e = workspaces_.get<EditWork<N>>();
    pipeline::latent_mask(mask, e.mask.view());
    require_usable_scaling_factor("inpaint");
    require_finite_autoencoder("inpaint");
    encode<N>(inputs, e.z0.view());
    auto& w = workspaces_.get<SampleWork<N>>();
    inpaint_latents<N>(sampler, e.z0, e.mask, seed, w.x.view(), strength, use_ema);
    decode<N>(w.x, out);
  }

  /// The same with whichever sampler `sampler` holds.
  template <index_t N, class... Samplers>
  void inpaint(const std::variant<Samplers...>& sampler, View<const float, images<N>, Space> inputs,
               View<const float, masks<N>, Space> mask, std::uint64_t seed,
               View<float, images<N>, Space> out, double strength = 1, bool use_ema = true) {
    std::visit([&](const auto& s) { inpaint<N>(s, inputs, mask, seed, out, strength, use_ema); },
               sampler);
  }

  /// inpaint() on the latent grid. The start is diffusers': at strength 1 pure noise times
  /// init_noise_sigma(), else the image latents noised to noise_level(first) (sample()'s initial
  /// noise for `seed` in both cases). After evaluation i the known part is the image latents
  /// noised with that same initial noise to noise_level(i + 1) (the clean latents after the last),
  /// and x = (1 - m) known + m x: where m is 0 the result is exactly `image_latents`.
  /// @param image_latents the images' latents, scaled as encode() makes them
  /// @param mask on the latent grid, values in [0, 1] (soft values blend)
  /// @param seed the initial noise and each step's noise, as sample()'s
  /// @param x receives the latents
  /// @param strength as img2img()'s
  /// @param use_ema false denoises with the UNet's raw weights
  /// @throws ldm::Error (before any work) when strength is not in [0, 1] or too small for one
  ///         step, or a mask value is not in [0, 1]; when a weight or the latents are not finite
  template <index_t N, diffusion::Sampler S>
  void inpaint_latents(const S& sampler, View<const float, latents<N>, Space> image_latents,
                       View<const float, latent_masks<N>, Space> mask, std::uint64_t seed,
                       View<float, latents<N>, Space> x, double strength = 1, bool use_ema = true) {
    const std::size_t first = diffusion::first_evaluation(sampler, strength);
    pipeline::require_mask_values(mask, "inpaint: mask");
    const auto noise = initial_noise<latents<N>>(seed);
    if (strength == 1) {
      x = sampler.init_noise_sigma() * noise;
    } else {
      const diffusion::NoiseLevel level = sampler.noise_level(first);
      x = level.signal * diffusion::in_double(image_latents) +
          level.noise * diffusion::in_double(noise);
    }
    const std::size_t evaluations = sampler.timesteps().size();
    const auto m = diffusion::in_double(
        broadcast<latents<N>, 3>(mask.template reshape<Shape<N, latent_res, latent_res>>()));
    denoise<N>(sampler, first, seed, use_ema, x,
               [&](std::size_t i, View<float, latents<N>, Space> y) {
                 const diffusion::NoiseLevel known =
                     i + 1 < evaluations ? sampler.noise_level(i + 1) : diffusion::NoiseLevel{1, 0};
                 y = (1.0 - m) * (known.signal * diffusion::in_double(image_latents) +
                                  known.noise * diffusion::in_double(noise)) +
                     m * diffusion::in_double(y);
               });
  }

  /// Frames between two seeds' samples: frame k starts from the spherical interpolation
  /// (diffusion/slerp.hpp) at positions[k] between the initial noises of sample<1>() for seed_a
  /// and seed_b, and every frame takes seed_a's step noise (for the samplers that add some), so
  /// that the frames differ only by where they start. Frame 0 at position 0 is then the image of
  /// sample<1>(sampler, seed_a); at position 1 that of seed_b for a sampler that adds no noise.
  /// @param positions N positions in [0, 1] (0: seed_a, 1: seed_b)
  /// @param out receives the frames (about [-1, 1]; not clamped)
  /// @param use_ema false denoises with the UNet's raw weights
  /// @throws ldm::Error (before any work) when positions does not hold N values in [0, 1]; when a
  ///         weight, the latents or the images are not finite
  template <index_t N, diffusion::Sampler S>
  void interpolate_seeds(const S& sampler, std::uint64_t seed_a, std::uint64_t seed_b,
                         std::span<const double> positions, View<float, images<N>, Space> out,
                         bool use_ema = true) {
    require_positions<N>(positions);
    require_usable_scaling_factor("interpolate_seeds");
    require_finite_autoencoder("interpolate_seeds");
    auto& e = workspaces_.get<EditWork<N>>();
    e.a = sampler.init_noise_sigma() * initial_noise<latents<1>>(seed_a);
    e.b = sampler.init_noise_sigma() * initial_noise<latents<1>>(seed_b);
    denoise_frames<N>(sampler, 0, seed_a, positions, use_ema, out);
  }

  /// The same with whichever sampler `sampler` holds.
  template <index_t N, class... Samplers>
  void interpolate_seeds(const std::variant<Samplers...>& sampler, std::uint64_t seed_a,
                         std::uint64_t seed_b, std::span<const double> positions,
                         View<float, images<N>, Space> out, bool use_ema = true) {
    std::visit(
        [&](const auto& s) { interpolate_seeds<N>(s, seed_a, seed_b, positions, out, use_ema); },
        sampler);
  }

  /// Frames between two images: both are encoded (posterior means) and noised as img2img() noises
  /// them, with the same initial noise; frame k is the spherical interpolation at positions[k]
  /// between the two noised latents, denoised from first_evaluation(sampler, strength) with the
  /// same step noise for every frame, and decoded. Denoising is what makes the frames images: the
  /// decoded blend of two clean latents is a cross-fade of the two pictures (encode(), slerp()
  /// and decode() give that, for whoever wants it). The frames at positions 0 and 1 are
  /// img2img<1>() of `a` and of `b` with the same strength and seed.
  /// @param strength as img2img()'s: how far from the two images the frames may go
  /// @param a the image at position 0, in [-1, 1]
  /// @param b the image at position 1, in [-1, 1]
  /// @param seed the initial noise and each step's noise, as img2img<1>()'s
  /// @param positions N positions in [0, 1]
  /// @param out receives the frames (about [-1, 1]; not clamped)
  /// @param use_ema false denoises with the UNet's raw weights
  /// @throws ldm::Error (before any work) when strength is not in [0, 1] or too small for one
  ///         step, or positions does not hold N values in [0, 1]; when a weight, the latents or
  ///         the images are not finite
  template <index_t N, diffusion::Sampler S>
  void interpolate_images(const S& sampler, double strength, View<const float, images<1>, Space> a,
                          View<const float, images<1>, Space> b, std::uint64_t seed,
                          std::span<const double> positions, View<float, images<N>, Space> out,
                          bool use_ema = true) {
    const std::size_t first = diffusion::first_evaluation(sampler, strength);
    require_positions<N>(positions);
    require_usable_scaling_factor("interpolate_images");
    require_finite_autoencoder("interpolate_images");
    auto& e = workspaces_.get<EditWork<N>>();
    const diffusion::NoiseLevel level = sampler.noise_level(first);
    const auto noise = diffusion::in_double(initial_noise<latents<1>>(seed));
    encode<1>(a, e.a.view());
    e.a = level.signal * diffusion::in_double(e.a) + level.noise * noise;
    encode<1>(b, e.b.view());
    e.b = level.signal * diffusion::in_double(e.b) + level.noise * noise;
    denoise_frames<N>(sampler, first, seed, positions, use_ema, out);
  }

  /// The same with whichever sampler `sampler` holds.
  template <index_t N, class... Samplers>
  void interpolate_images(const std::variant<Samplers...>& sampler, double strength,
                          View<const float, images<1>, Space> a,
                          View<const float, images<1>, Space> b, std::uint64_t seed,
                          std::span<const double> positions, View<float, images<N>, Space> out,
                          bool use_ema = true) {
    std::visit(
        [&](const auto& s) {
          interpolate_images<N>(s, strength, a, b, seed, positions, out, use_ema);
        },
        sampler);
  }

  /// A diffusers-style folder: vae/, unet/ (the EMA weights, as diffusers' training scripts save),
  /// scheduler/, and training_state.safetensors (raw UNet weights, optimiser moments, EMA, step
  /// counters) for an exact resume. `folder` becomes a link to a new numbered folder beside it,
  /// and the previous checkpoints stay until the new one is durable (pipeline/checkpoint_store.hpp:
  /// a crash at any point leaves a complete checkpoint that load() finds). `run_info` is the
  /// caller's own state (a trainer's data position, its time used...), kept in the same
  /// checkpoint and given back by run_info() after load(). `options` say how many to keep. Weights,
  /// optimiser moments or a scaling factor that are not finite (or a scaling factor of 0) are an
  /// ldm::Error naming the first, and nothing is written: the previous checkpoints stay.
  /// @throws ldm::Error when a folder or file cannot be created, written, synced or renamed; the
  ///         previous checkpoints are then left whole
  void save(const std::filesystem::path& folder, const RunInfo& run_info = {},
            const pipeline::CheckpointOptions& options = {}) {
    require_savable();
    pipeline::save_checkpoint(folder, options, [&](const std::filesystem::path& to) {
      pipeline::save_model_folder(to / "vae", vae_config(), autoencoder_.infos(),
                                  host_values(autoencoder_).data());
      ema_.copy_to(span(ema_unet_.values()));
      pipeline::save_model_folder(to / "unet", unet_json(), ema_unet_.infos(),
                                  host_values(ema_unet_).data());
      std::filesystem::create_directories(to / "scheduler");
      pipeline::write_text_atomically(
          to / "scheduler" / "scheduler_config.json",
          pipeline::scheduler_config(scheduler_, pipeline::diffusers_version).dump(2) + "\n");
      write_training_state(to / "training_state.safetensors", run_info);
      if constexpr (caller_context) write_null_context(to / null_context_file);
      if constexpr (label_tokens) label_tokens_.write(to / LabelTokens::file_name);
    });
  }

  /// Loads a folder written by save() (its newest complete checkpoint) or by diffusers (vae/, unet/
  /// and scheduler/; training state if there). A config that does not match the compiled
  /// configuration is refused, naming the field. The folder's scheduler (schedule, prediction type,
  /// sampler settings) and latent scaling replace the pipeline's, for sampling and for further
  /// training (see pipeline/scheduler_config.hpp for what is honoured and what refused).
  /// @throws ldm::Error when there is no such folder, a config.json is not valid JSON or does
  ///         not match the configuration, the scheduler config has a field ldm cannot honour, a
  ///         weights file is not valid safetensors, lacks a parameter, holds another tensor or a
  ///         tensor of another shape, or the training state lacks a tensor or a metadata number,
  ///         or holds learning-rate schedules that differ from the options' (naming the model,
  ///         the field and both values; a state without schedules counts as constant ones)
  void load(const std::filesystem::path& where) {
    const auto folder = pipeline::existing_checkpoint(where);
    const auto scheduler_file = folder / "scheduler" / "scheduler_config.json";
    const pipeline::SchedulerSettings scheduler = pipeline::parse_scheduler_config(
        pipeline::read_json(scheduler_file), scheduler_file.string());
    // Files are read into host memory, then copied to where the model lives.
    Tensor<float, Shape<AE::parameter_count>> vae_values;
    const pipeline::json vae = pipeline::load_model_folder(
        folder / "vae", vae_config(), pipeline::autoencoder_defaults(),
        pipeline::autoencoder_unchecked_fields(), autoencoder_.infos(), vae_values.data());
    const pipeline::LatentScaling scaling =
        pipeline::read_latent_scaling(vae, (folder / "vae" / pipeline::config_file).string());
    Tensor<float, Shape<UNet::parameter_count>> unet_values;
    pipeline::load_model_folder(folder / "unet", unet_json(), unet_defaults(), unet_unchecked(),
                                ema_unet_.infos(), unet_values.data());
    const std::vector<float> null_context = read_null_context(folder / null_context_file);
    std::vector<float> label_token_values;
    if constexpr (label_tokens)
      label_token_values = LabelTokens::read(folder / LabelTokens::file_name);
    if constexpr (caller_context)
      if (std::filesystem::exists(folder / pipeline::label_tokens_file))
        fail((folder / pipeline::label_tokens_file).string(),
             ": this folder's contexts are a learned label-token table; load it with a "
             "configuration that states label_classes (this one takes the caller's contexts)");
    const auto state = folder / "training_state.safetensors";
    const bool has_state = std::filesystem::exists(state);
    // Checked before anything changes, so that a refused checkpoint leaves the pipeline as it was.
    if (has_state) require_same_lr_schedules(state);
    scheduler_ = scheduler;
    schedule_ = scheduler.make_schedule();
    latent_scaling_ = scaling;
    scaling_measured_ = true;
    null_context_ = null_context;
    copy(vae_values.view(), autoencoder_.values());
    copy(unet_values.view(), ema_unet_.values());
    unet_.values() = ema_unet_.values();
    ema_ = train::EMA<Space>(options_.ema, span(unet_.values()));
    if constexpr (label_tokens) label_tokens_.set(label_token_values);
    if (has_state) read_training_state(state);
  }

  /// What each call holds in memory at its peak (host bytes), by what holds it: everything this
  /// pipeline owns from its construction (both models' weights and gradients, both optimisers'
  /// moments, the EMA and the EMA UNet), plus the call's saved activations, its workspaces (kept
  /// by the pipeline after the first call at batch N) and the peak of its temporaries. A
  /// pipeline that has made other calls also keeps their workspaces: add their saved_activations
  /// and workspaces. `host` says what the host ops choose at run time (ops/host_scratch.hpp).
  /// The autoencoder step counts the perceptual term autoencoder_step() uses without LPIPS
  /// weights (1 - SSIM when the images allow it); loaded LPIPS weights and their activations are
  /// not counted.
  template <index_t N>
  static constexpr models::PeakMemory autoencoder_step_memory(const ops::HostScratch& host = {}) {
    models::PeakMemory m = resident_memory();
    m.saved_activations = nn::saved_bytes<typename AE::template Saved<N>>;
    m.workspaces = nn::saved_bytes<AutoencoderWork<N>> - m.saved_activations;
    std::size_t perceptual_scratch = 0;
    if constexpr (ssim_possible) {
      m.workspaces += train::SsimTerm<float, images<N>, Space>::bytes;
      perceptual_scratch = train::SsimTerm<float, images<N>, Space>::scratch;
    }
    m.temporaries = train::autoencoder_loss_scratch<N, AE>(host, perceptual_scratch);
    return m;
  }
  /// diffusion_step<N>()'s peak, counted as autoencoder_step_memory() counts.
  /// The first step also measures the scaling factor (an encode); every step encodes its batch.
  template <index_t N>
  static constexpr models::PeakMemory diffusion_step_memory(const ops::HostScratch& host = {}) {
    models::PeakMemory m = resident_memory();
    m.saved_activations = nn::saved_bytes<typename UNet::template Saved<N>> +
                          nn::saved_bytes<typename AE::template EncodeSaved<N>>;
    m.workspaces =
        nn::saved_bytes<EncodeWork<N>> + nn::saved_bytes<DiffusionWork<N>> - m.saved_activations;
    if constexpr (context_conditional) m.workspaces += nn::saved_bytes<ContextWork<N>>;
    if constexpr (label_tokens) m.workspaces += nn::saved_bytes<ContextGradWork<N>>;
    const std::size_t encode = AE::template encode_scratch<N>(host).forward;
    m.temporaries = nn::peak(nn::bytes_of<Tensor<float, latents<N>, Space>> + encode,
                             nn::bytes_of<Tensor<std::int32_t, Shape<N>>> +
                                 nn::peak(encode, train::diffusion_loss_scratch<N, UNet>(host)));
    return m;
  }
  /// sample<N>()'s peak with a sampler of type S, counted as autoencoder_step_memory() counts:
  /// the denoising loop (with the sampler's State), then the decode.
  template <index_t N, diffusion::Sampler S = diffusion::DDIM>
  static constexpr models::PeakMemory sampling_memory(const ops::HostScratch& host = {}) {
    models::PeakMemory m = resident_memory();
    m.saved_activations = nn::saved_bytes<typename UNet::template Saved<N>> +
                          nn::saved_bytes<typename AE::template DecodeSaved<N>>;
    m.workspaces = nn::saved_bytes<SampleWork<N>> + nn::saved_bytes<DecodeWork<N>> +
                   nn::saved_bytes<typename S::template State<latents<N>, Space>> -
                   m.saved_activations;
    if constexpr (context_conditional) m.workspaces += nn::saved_bytes<ContextWork<N>>;
    m.temporaries = nn::peak(nn::scratch_of<UNet, N>(host).forward,
                             AE::template decode_scratch<N>(host).forward);
    return m;
  }

  /// sample<N>()'s peak with a sampler of type S and guidance (a condition with labels or
  /// contexts and a guidance scale other than 1), counted as sampling_memory() counts: its
  /// buffers and the guided pass's (with the 2N contexts of a context-conditioned model), the
  /// UNet's activations and temporaries on 2N.
  template <index_t N, diffusion::Sampler S = diffusion::DDIM>
  static constexpr models::PeakMemory guided_sampling_memory(const ops::HostScratch& host = {}) {
    static_assert(class_conditional || context_conditional,
                  "ldm::LatentDiffusion::guided_sampling_memory: guidance needs a "
                  "class-conditional or context-conditioned configuration");
    models::PeakMemory m = sampling_memory<N, S>(host);
    constexpr std::size_t guided_saved = nn::saved_bytes<typename UNet::template Saved<2 * N>>;
    m.saved_activations += guided_saved;
    m.workspaces += nn::saved_bytes<GuidedWork<N>> - guided_saved;
    if constexpr (context_conditional) m.workspaces += nn::saved_bytes<ContextWork<2 * N>>;
    m.temporaries = nn::peak(nn::scratch_of<UNet, 2 * N>(host).forward,
                             AE::template decode_scratch<N>(host).forward);
    return m;
  }

  /// img2img<N>()'s and inpaint<N>()'s peak with a sampler of type S, counted as
  /// autoencoder_step_memory() counts: sampling_memory()'s, plus the encode's saved activations,
  /// workspaces and temporaries, the image latents and the latent mask, and the host copies that
  /// check the mask. interpolate_seeds<N>() stays within it; interpolate_images<N>() adds the
  /// workspaces of an encode of one image.
  template <index_t N, diffusion::Sampler S = diffusion::DDIM>
  static constexpr models::PeakMemory editing_memory(const ops::HostScratch& host = {}) {
    models::PeakMemory m = sampling_memory<N, S>(host);
    constexpr std::size_t encode_saved = nn::saved_bytes<typename AE::template EncodeSaved<N>>;
    m.saved_activations += encode_saved;
    m.workspaces += nn::saved_bytes<EncodeWork<N>> - encode_saved + nn::saved_bytes<EditWork<N>>;
    m.temporaries = nn::peak(
        m.temporaries, AE::template encode_scratch<N>(host).forward,
        nn::bytes_of<Tensor<float, masks<N>>> + nn::bytes_of<Tensor<float, latent_masks<N>>>);
    return m;
  }

  const AE& autoencoder() const { return *autoencoder_; }  ///< The autoencoder.
  /// The UNet with its training weights: the ones AdamW updates, saved in the training state
  /// (training_state.safetensors), not in unet/. After load() of a folder without a training
  /// state they are unet/'s weights.
  const UNet& training_unet() const { return *unet_; }
  /// The UNet with the EMA of its training weights, as of this call (it is not updated by later
  /// steps: call again): what sample() uses by default, what save() writes to unet/ and what
  /// diffusers loads from there. After load() these are unet/'s weights.
  const UNet& ema_unet() const {
    refresh_ema_unet();
    return *ema_unet_;
  }
  /// Was the only UNet accessor: the training weights. Say which you mean instead.
  [[deprecated("training_unet() or ema_unet()")]] const UNet& unet() const { return *unet_; }
  /// The autoencoder's parameters: diffusers' names, shapes, offsets in the flat buffer.
  const std::vector<nn::ParameterInfo>& autoencoder_parameters() const {
    return autoencoder_.infos();
  }
  /// The UNet's parameters: diffusers' names, shapes, offsets in the flat buffer.
  const std::vector<nn::ParameterInfo>& unet_parameters() const { return unet_.infos(); }
  /// The autoencoder's weights in host memory (a copy when the model is on a GPU).
  std::vector<float> autoencoder_values_host() const { return host_values(autoencoder_); }
  /// training_unet()'s weights in host memory (a copy when the model is on a GPU).
  std::vector<float> training_unet_values_host() const { return host_values(unet_); }
  /// ema_unet()'s weights in host memory (a copy when the model is on a GPU).
  std::vector<float> ema_unet_values_host() const { return ema_.shadow_host(); }
  /// Was the only UNet weights accessor: the training weights. Say which you mean instead.
  [[deprecated("training_unet_values_host() or ema_unet_values_host()")]] std::vector<float>
  unet_values_host() const {
    return host_values(unet_);
  }
  /// The factor latents are multiplied by (1 until measured, set or loaded).
  double scaling_factor() const { return latent_scaling_.scaling_factor; }
  /// Sets the scaling factor; the first diffusion step then no longer measures it.
  /// @throws ldm::Error when `value` is 0 or not finite.
  void set_scaling_factor(double value) {
    if (!usable_scaling_factor(value))
      fail_expected("set_scaling_factor", "a finite number other than 0", value);
    latent_scaling_.scaling_factor = value, scaling_measured_ = true;
  }
  /// The shift_factor of the loaded autoencoder config (0 where it has none).
  double shift_factor() const { return latent_scaling_.shift_factor; }
  /// The scheduler's settings: the compiled schedule and the options' prediction type for a
  /// new pipeline, the folder's after load().
  const pipeline::SchedulerSettings& scheduler() const { return scheduler_; }
  /// Autoencoder steps taken (counting those of a loaded training state).
  std::uint64_t autoencoder_steps() const { return autoencoder_steps_; }
  /// Diffusion steps taken (counting those of a loaded training state).
  std::uint64_t diffusion_steps() const { return diffusion_steps_; }
  /// The noise schedule: Config::schedule's, or the loaded folder's scheduler's.
  const diffusion::Schedule& schedule() const { return schedule_; }
  /// The options given at construction.
  const TrainingOptions& options() const { return options_; }
  /// The run_info the loaded checkpoint was saved with (empty without a training state).
  const RunInfo& run_info() const { return run_info_; }
  /// The autoencoder's optimiser (to change its learning rate between steps, which a schedule
  /// other than constant overrides at each step).
  train::AdamW<Space>& autoencoder_optimizer() { return autoencoder_optimizer_; }
  /// The UNet's optimiser (to change its learning rate between steps, which a schedule other
  /// than constant overrides at each step).
  train::AdamW<Space>& unet_optimizer() { return unet_optimizer_; }

 private:
  enum class Purpose : std::uint64_t {
    reparameterisation = 1,
    diffusion_noise,
    timesteps,
    sampling_noise,
    offset_noise,
    label_dropout,
    context_dropout
  };
  static std::uint64_t stream(Purpose purpose, std::uint64_t step) {
    return (std::uint64_t(purpose) << 40) | step;
  }
  // Whether the UNet's contexts come from the caller (with the null context of guidance), rather
  // than from a label-token table.
  static constexpr bool caller_context = context_conditional && !label_tokens;

  static const TrainingOptions& checked(const TrainingOptions& options) {
    if (!(std::isfinite(options.snr_gamma) && options.snr_gamma >= 0))
      fail_expected("TrainingOptions: snr_gamma", "a finite number >= 0 (0: off)",
                    options.snr_gamma);
    if (!(std::isfinite(options.noise_offset) && options.noise_offset >= 0))
      fail_expected("TrainingOptions: noise_offset", "a finite number >= 0 (0: off)",
                    options.noise_offset);
    if (!(options.label_dropout >= 0 && options.label_dropout <= 1))
      fail_expected("TrainingOptions: label_dropout", "a probability in [0, 1]",
                    options.label_dropout);
    if (options.label_dropout > 0 && !class_conditional)
      fail("TrainingOptions: label_dropout is ", options.label_dropout,
           ", but the configuration is not class-conditional (num_class_embeds 0, no "
           "label_classes)");
    if (!(options.context_dropout >= 0 && options.context_dropout <= 1))
      fail_expected("TrainingOptions: context_dropout", "a probability in [0, 1]",
                    options.context_dropout);
    if (options.context_dropout > 0 && !caller_context)
      fail("TrainingOptions: context_dropout is ", options.context_dropout,
           label_tokens ? ", but the configuration's contexts are its label-token table's rows: "
                          "label_dropout drops labels to the null row"
                        : ", but the configuration's UNet has no cross-attention (not a "
                          "UNetConditionConfig)");
    options.autoencoder_lr_schedule.validate("TrainingOptions: autoencoder_lr_schedule");
    options.unet_lr_schedule.validate("TrainingOptions: unet_lr_schedule");
    return options;
  }
  static void require_micro_batches(const char* call, index_t micro_batches) {
    if (micro_batches < 1)
      fail_expected(std::string(call) + ": micro_batches", ">= 1", micro_batches);
  }
  // The learning rate of the step after `taken` optimiser steps, set on the optimiser before it.
  // A constant schedule leaves the optimiser's rate alone, so that set_lr() between steps holds.
  static void schedule_lr(train::AdamW<Space>& optimizer, const train::AdamWConfig& base,
                          const train::LRSchedule& schedule) {
    if (schedule.type != train::LRScheduleType::constant)
      optimizer.set_lr(base.lr * schedule.factor(optimizer.steps()));
  }

  // The accumulating autoencoder step of rank comm.rank(): its micro-batches are the samples
  // from rank * micro_batches * N on of the effective batch, and every draw is indexed by the
  // sample's place in it.
  template <index_t N, class Comm, class MicroBatches, class Perceptual>
  AutoencoderStepResult autoencoder_step_from(Comm& comm, index_t micro_batches,
                                              MicroBatches& batch_of, Perceptual& perceptual) {
    require_micro_batches("autoencoder_step", micro_batches);
    auto& w = workspaces_.get<AutoencoderWork<N>>();
    const std::uint64_t step = autoencoder_steps_;
    const std::uint64_t first_sample =
        std::uint64_t(comm.rank()) * std::uint64_t(micro_batches * N);
    const double scale = 1.0 / (double(comm.size()) * double(micro_batches));
    // The losses' sums over this rank's micro-batches: total, pixel, perceptual, KL.
    std::array<double, 4> sums{};
    auto gradients = gradient_sum(autoencoder_.grads(), micro_batches);
    for (index_t j = 0; j < micro_batches; ++j) {
      gradients.start();
      const View<const float, images<N>, Space> x = pipeline::images_of(batch_of(j));
      const std::uint64_t first = first_sample + std::uint64_t(j * N);
      w.eps = randn<latents<N>>(seed_, stream(Purpose::reparameterisation, step),
                                first * std::uint64_t(latents<N>::size / N));
      const train::AutoencoderLosses part = train::autoencoder_loss_and_gradients<N>(
          *autoencoder_, w.saved, x, w.eps, options_.autoencoder_loss, perceptual,
          w.reconstruction.view(), nn::Mode{true, seed_, step, first}, scale);
      sums[0] += part.total, sums[1] += part.pixel, sums[2] += part.perceptual, sums[3] += part.kl;
      gradients.add(j);
    }
    gradients.finish();
    comm.all_reduce_sum(span(autoencoder_.grads()));
    comm.all_reduce_sum(std::span<double>(sums));
    const double parts = double(comm.size()) * double(micro_batches);
    AutoencoderStepResult result;
    auto& l = result.losses;
    l.total = sums[0] / parts, l.pixel = sums[1] / parts, l.perceptual = sums[2] / parts,
    l.kl = sums[3] / parts;
    result.grad_norm =
        train::clip_grad_norm<Space>(span(autoencoder_.grads()), options_.max_grad_norm);
    result.skipped = !autoencoder_guard_.admit(
        {{options_.autoencoder_loss.pixel == train::PixelLoss::l1 ? "L1 loss" : "L2 loss", l.pixel},
         {"perceptual loss", l.perceptual},
         {"KL loss", l.kl},
         {"total loss", l.total},
         {"gradient norm", result.grad_norm}},
        step + 1);
    result.skipped_steps = autoencoder_guard_.skipped();
    if (result.skipped) return result;
    schedule_lr(autoencoder_optimizer_, options_.autoencoder_optimizer,
                options_.autoencoder_lr_schedule);
    autoencoder_optimizer_.step(span(autoencoder_.values()), span(autoencoder_.grads()));
    ++autoencoder_steps_;
    return result;
  }

  // The accumulating diffusion step of rank comm.rank(), as autoencoder_step_from().
  template <index_t N, class Comm, class MicroBatches>
  DiffusionStepResult diffusion_step_from(Comm& comm, index_t micro_batches,
                                          MicroBatches& batch_of) {
    require_micro_batches("diffusion_step", micro_batches);
    auto& w = workspaces_.get<DiffusionWork<N>>();
    const std::uint64_t step = diffusion_steps_;
    const int T = schedule_.num_train_timesteps();
    const std::uint64_t first_sample =
        std::uint64_t(comm.rank()) * std::uint64_t(micro_batches * N);
    const train::DiffusionLossWeighting weighting{
        .snr_gamma = options_.snr_gamma,
        .gradient_scale = 1.0 / (double(comm.size()) * double(micro_batches))};
    // The loss's sum over this rank's micro-batches, and two 0s (NaN when a latent, or a context
    // value, was not finite).
    std::array<double, 3> sums{};
    auto gradients = gradient_sum(unet_.grads(), micro_batches);
    auto table_gradients = label_token_gradients(micro_batches);
    for (index_t j = 0; j < micro_batches; ++j) {
      gradients.start();
      table_gradients.start();
      const auto batch = batch_of(j);
      const View<const float, images<N>, Space> x = pipeline::images_of(batch);
      if (j == 0) {
        if (!scaling_measured_) {
          if (comm.rank() == 0) measure_scaling_factor<N>(x);
          share_scaling_factor(comm);
        }
        require_usable_scaling_factor("diffusion_step");
      }
      // Latents that are not finite are one more reason to skip the step, not an error by
      // themselves.
      encode_unchecked<N>(x, w.z0.view());
      if (!finite(w.z0)) sums[1] = NAN;
      const std::uint64_t first = first_sample + std::uint64_t(j * N);
      w.noise = randn<latents<N>>(seed_, stream(Purpose::diffusion_noise, step),
                                  first * std::uint64_t(latents<N>::size / N));
      train::add_offset_noise(w.noise.view(), options_.noise_offset, seed_,
                              stream(Purpose::offset_noise, step), first);
      Tensor<std::int32_t, Shape<N>> timesteps;
      for (index_t n = 0; n < N; ++n)
        timesteps[n] = std::min(
            T - 1,
            int(uniform(seed_, stream(Purpose::timesteps, step), first + std::uint64_t(n)) * T));
      copy(View<const std::int32_t, Shape<N>>(timesteps), w.timesteps.view());
      if constexpr (label_tokens) {
        // The labels (after label dropout) pick the table's rows; the context's gradient goes
        // back into those rows.
        static_assert(!pipeline::is_context_batch<std::remove_cvref_t<decltype(batch)>>,
                      "ldm::LatentDiffusion::diffusion_step: contexts given to a model whose "
                      "contexts are the rows of its label-token table: give labels "
                      "(labelled_images)");
        const auto labels = training_labels<N>(batch, step, first, w.labels);
        auto& c = workspaces_.get<ContextWork<N>>();
        label_tokens_.gather(labels, c.states.view(), false);
        auto& d = workspaces_.get<ContextGradWork<N>>();
        sums[0] += train::diffusion_loss_and_gradients<N>(
            *unet_, w.saved, w.z0, w.noise, w.timesteps, c.states, schedule_,
            scheduler_.prediction_type, nn::Mode{true, seed_, step, first},
            View<const std::int32_t, Shape<N>, Space>(nullptr), weighting, d.grads.view());
        label_tokens_.add_gradient(labels, View<const float, context<N>, Space>(d.grads));
      } else if constexpr (context_conditional) {
        const auto context_states = training_context<N>(batch, step, first);
        if (!finite(context_states)) sums[2] = NAN;
        sums[0] += train::diffusion_loss_and_gradients<N>(
            *unet_, w.saved, w.z0, w.noise, w.timesteps, context_states, schedule_,
            scheduler_.prediction_type, nn::Mode{true, seed_, step, first},
            View<const std::int32_t, Shape<N>, Space>(nullptr), weighting);
      } else {
        static_assert(!pipeline::is_context_batch<std::remove_cvref_t<decltype(batch)>>,
                      "ldm::LatentDiffusion::diffusion_step: contexts given to a model whose UNet "
                      "has no cross-attention (its unet is not a UNetConditionConfig)");
        sums[0] += train::diffusion_loss_and_gradients<N>(
            *unet_, w.saved, w.z0, w.noise, w.timesteps, schedule_, scheduler_.prediction_type,
            nn::Mode{true, seed_, step, first}, training_labels<N>(batch, step, first, w.labels),
            weighting);
      }
      gradients.add(j);
      table_gradients.add(j);
    }
    gradients.finish();
    table_gradients.finish();
    comm.all_reduce_sum(span(unet_.grads()));
    if constexpr (label_tokens) comm.all_reduce_sum(label_tokens_.grads());
    comm.all_reduce_sum(std::span<double>(sums));
    DiffusionStepResult result;
    result.loss = sums[0] / (double(comm.size()) * double(micro_batches));
    // The table learns with the UNet, so one norm clips both (torch's clip_grad_norm_ over all
    // the parameters the optimiser holds).
    if constexpr (label_tokens) {
      const std::span<float> both[] = {span(unet_.grads()), label_tokens_.grads()};
      result.grad_norm = train::clip_grad_norm<Space>(std::span<const std::span<float>>(both),
                                                      options_.max_grad_norm);
    } else {
      result.grad_norm = train::clip_grad_norm<Space>(span(unet_.grads()), options_.max_grad_norm);
    }
    if constexpr (caller_context)
      result.skipped = !unet_guard_.admit({{"input (the frozen autoencoder's latents)", sums[1]},
                                           {"input (the context)", sums[2]},
                                           {loss_name(), result.loss},
                                           {"gradient norm", result.grad_norm}},
                                          step + 1);
    else
      result.skipped = !unet_guard_.admit({{"input (the frozen autoencoder's latents)", sums[1]},
                                           {loss_name(), result.loss},
                                           {"gradient norm", result.grad_norm}},
                                          step + 1);
    result.skipped_steps = unet_guard_.skipped();
    if (result.skipped) return result;
    schedule_lr(unet_optimizer_, options_.unet_optimizer, options_.unet_lr_schedule);
    unet_optimizer_.step(span(unet_.values()), span(unet_.grads()));
    ema_.step(span(unet_.values()));
    if constexpr (label_tokens) {
      // At the UNet's rate, scheduled or set by the caller through unet_optimizer().
      label_tokens_.optimizer().set_lr(unet_optimizer_.config().lr);
      label_tokens_.optimizer().step(label_tokens_.values(), label_tokens_.grads());
      label_tokens_.ema().step(label_tokens_.values());
    }
    ++diffusion_steps_;
    return result;
  }

  // Rank 0's scaling factor on every rank, exactly (as a hexadecimal float).
  template <class Comm>
  void share_scaling_factor(Comm& comm) {
    char text[64];
    std::snprintf(text, sizeof text, "%a", latent_scaling_.scaling_factor);
    std::string factor = text;
    comm.broadcast(factor, 0);
    latent_scaling_.scaling_factor = std::strtod(factor.c_str(), nullptr);
    scaling_measured_ = true;
  }

  // A flat buffer of Count floats in Space: the sum of micro-batches' gradients.
  // Owner tells apart the buffers of two modules of one step (the UNet's and the table's) that
  // happen to hold as many values.
  template <index_t Count, class Owner = void>
  struct GradientBuffer {
    Tensor<float, Shape<Count>, Space> sum;
  };

  // The micro-batches' gradients of one module, each formed alone (from zeroed gradients) and
  // added in order, g0 + g1 + ..., the order in which the ranks' gradients are summed: so the
  // gradient does not depend on whether the micro-batches ran in one process or in several.
  // With one micro-batch the gradients are formed in place, as they always were.
  template <index_t Count, class Owner = void>
  class GradientSum {
   public:
    GradientSum(View<float, Shape<Count>, Space> grads, GradientBuffer<Count, Owner>* sum)
        : grads_(grads), sum_(sum) {}
    // Before micro-batch j's backward pass: the module's gradients start from zero.
    void start() { grads_ = 0.0f; }
    // After micro-batch j's backward pass: its gradients join the sum.
    void add(index_t j) {
      if (!sum_) return;
      if (j == 0)
        sum_->sum = grads_;
      else
        sum_->sum = sum_->sum + grads_;
    }
    // The sum becomes the module's gradients.
    void finish() {
      if (sum_) grads_ = sum_->sum;
    }

   private:
    View<float, Shape<Count>, Space> grads_;
    GradientBuffer<Count, Owner>* sum_;
  };
  template <class Owner = void, index_t Count>
  GradientSum<Count, Owner> gradient_sum(View<float, Shape<Count>, Space> grads,
                                         index_t micro_batches) {
    return {grads, micro_batches > 1 ? &workspaces_.get<GradientBuffer<Count, Owner>>() : nullptr};
  }

  // The label-token table's GradientSum; one that does nothing without a table.
  struct NoGradientSum {
    void start() {}
    void add(index_t) {}
    void finish() {}
  };
  auto label_token_gradients(index_t micro_batches) {
    if constexpr (label_tokens)
      return gradient_sum<LabelTokens>(label_tokens_.grads_view(), micro_batches);
    else
      return NoGradientSum{};
  }

  // A micro-batch's labels where the UNet (or the label-token table) reads them, after label
  // dropout (sample `first + n` draws its own): none for an unconditional model.
  template <index_t N, class Batch>
  View<const std::int32_t, Shape<N>, Space> training_labels(
      const Batch& batch, std::uint64_t step, std::uint64_t first,
      Tensor<std::int32_t, Shape<N>, Space>& out) {
    if constexpr (!class_conditional) {
      static_assert(!pipeline::is_labelled_batch<Batch>,
                    "ldm::LatentDiffusion::diffusion_step: labels given to a model whose UNet is "
                    "not class-conditional (its UNetConfig has num_class_embeds 0)");
      return View<const std::int32_t, Shape<N>, Space>(nullptr);
    } else {
      if constexpr (!pipeline::is_labelled_batch<Batch>) {
        fail("diffusion_step: this model is class-conditional (", classes,
             " classes): give each image's label (diffusion_step(x, labels), or micro-batches as "
             "labelled_images)");
      } else {
        if (batch.labels.size() != std::size_t(N))
          fail_expected("diffusion_step: labels", std::to_string(N) + " (one per image)",
                        batch.labels.size());
        Tensor<std::int32_t, Shape<N>> labels;
        for (index_t n = 0; n < N; ++n) {
          labels[n] = require_label("diffusion_step", n, batch.labels[std::size_t(n)]);
          if (options_.label_dropout > 0 &&
              uniform(seed_, stream(Purpose::label_dropout, step), first + std::uint64_t(n)) <
                  options_.label_dropout)
            labels[n] = null_class;
        }
        copy(View<const std::int32_t, Shape<N>>(labels), out.view());
        return out;
      }
    }
  }
  // A micro-batch's contexts where the UNet reads them, after context dropout (sample
  // `first + n` draws its own): the null context in place of a dropped sample's.
  template <index_t N, class Batch>
  View<const float, context<N>, Space> training_context(const Batch& batch, std::uint64_t step,
                                                        std::uint64_t first) {
    static_assert(pipeline::is_context_batch<Batch>,
                  "ldm::LatentDiffusion::diffusion_step: this model's UNet attends to a context: "
                  "give each image's context (diffusion_step(x, context), or micro-batches as "
                  "context_batch)");
    auto& c = workspaces_.get<ContextWork<N>>();
    c.states = View<const float, context<N>, Space>(batch.context);
    if (options_.context_dropout > 0)
      for (index_t n = 0; n < N; ++n)
        if (uniform(seed_, stream(Purpose::context_dropout, step), first + std::uint64_t(n)) <
            options_.context_dropout)
          put_null_context(c.states.data() + n * context<1>::size, 1);
    return c.states;
  }
  // `count` copies of the null context, one after another from `to` (in Space).
  void put_null_context(float* to, index_t count) const {
    for (index_t k = 0; k < count; ++k)
      copy_elements<host, Space>(null_context_.data(), to + k * context<1>::size,
                                 null_context_.size());
  }

  // A class label as given: a class, or the null class.
  static std::int32_t require_label(const char* call, index_t n, std::int32_t label) {
    if (label < 0 || label > null_class)
      fail_expected(std::string(call) + ": label " + std::to_string(n),
                    "a class in [0, " + std::to_string(classes) + "), or " +
                        std::to_string(null_class) + " (no class)",
                    label);
    return label;
  }

  // The diffusion loss as the non-finite guard names it.
  const char* loss_name() const {
    const bool epsilon = scheduler_.prediction_type == diffusion::PredictionType::epsilon;
    if (options_.snr_gamma > 0)
      return epsilon ? "Min-SNR-weighted epsilon MSE loss"
                     : "Min-SNR-weighted v-prediction MSE loss";
    return epsilon ? "epsilon MSE loss" : "v-prediction MSE loss";
  }
  // The noise sample() starts from (before init_noise_sigma), which image-to-image and inpainting
  // mix with the image latents: one stream per seed, so image n of a batch gets the same noise
  // from every call.
  template <ShapeType S>
  static auto initial_noise(std::uint64_t seed) {
    return randn<S>(seed, stream(Purpose::sampling_noise, 0));
  }

  // denoise() with the noise of evaluation i given by noise_of(i) (an operand of latents<N>).
  template <index_t N, diffusion::Sampler S, class NoiseOf, class AfterStep,
            class Condition = pipeline::ClassConditioning>
  void denoise_with(const S& sampler, std::size_t first, bool use_ema,
                    View<float, latents<N>, Space> x, const NoiseOf& noise_of,
                    const AfterStep& after_step, const Condition& condition = {}) {
    const std::size_t evaluations = sampler.timesteps().size();
    if (first >= evaluations)
      fail_expected("denoise: first evaluation",
                    "one of the sampler's " + std::to_string(evaluations), first);
    const UNet& unet = use_ema ? ema_unet() : *unet_;
    require_finite(
        use_ema ? "sample: the UNet's EMA weights" : "sample: the UNet's training weights",
        use_ema ? ema_unet_ : unet_);
    auto& w = workspaces_.get<SampleWork<N>>();
    const double guidance = prepare_condition<N>(condition, use_ema);
    typename S::template State<latents<N>, Space> state{};
    for (std::size_t i = first; i < evaluations; ++i) {
      predict<N>(unet, x, float(sampler.timesteps()[i]), sampler.input_scale(i), guidance);
      sampler.step(i, state, View<const float, latents<N>, Space>(w.eps),
                   View<const float, latents<N>, Space>(x), noise_of(i), x);
      after_step(i, x);
    }
    if (!finite(x))
      fail("sample: the denoised latents hold a NaN or an infinity, though the weights are finite");
  }

  // Checks a sampling call's condition and puts its labels where predict() reads them: in w for
  // one UNet pass, in GuidedWork as [labels, null classes] for guidance; with a label-token
  // table, their rows (of the EMA table when use_ema) where the contexts are read, in
  // ContextWork<N> or ContextWork<2N>. Returns the guidance scale predict() applies, 1 for one
  // pass.
  template <index_t N>
  double prepare_condition(const pipeline::ClassConditioning& condition, bool use_ema) {
    auto& w = workspaces_.get<SampleWork<N>>();
    if constexpr (!class_conditional) {
      if (!condition.labels.empty() || condition.guidance_scale != 1)
        fail(
            "sample: this model's UNet is not class-conditional (num_class_embeds 0): it takes "
            "no labels and no guidance scale (found ",
            condition.labels.size(), " labels and guidance scale ", condition.guidance_scale, ")");
      // A context-conditioned model draws without a condition from its null context.
      if constexpr (caller_context)
        put_null_context(workspaces_.get<ContextWork<N>>().states.data(), N);
      return 1;
    } else {
      if (!std::isfinite(condition.guidance_scale))
        fail_expected("sample: guidance_scale", "a finite number", condition.guidance_scale);
      const auto& wanted = condition.labels;
      if (!wanted.empty() && wanted.size() != std::size_t(N))
        fail_expected("sample: labels", std::to_string(N) + " (one per image) or none",
                      wanted.size());
      Tensor<std::int32_t, Shape<2 * N>> labels;
      for (index_t n = 0; n < N; ++n) {
        labels[n] =
            wanted.empty() ? null_class : require_label("sample", n, wanted[std::size_t(n)]);
        labels[N + n] = null_class;
      }
      if constexpr (label_tokens)
        if (use_ema) label_tokens_.refresh_ema();
      // Without classes the guided combination is the unconditional prediction itself.
      if (wanted.empty() || condition.guidance_scale == 1) {
        copy(View<const std::int32_t, Shape<N>>(labels.data()), w.labels.view());
        if constexpr (label_tokens)
          label_tokens_.gather(View<const std::int32_t, Shape<N>, Space>(w.labels),
                               workspaces_.get<ContextWork<N>>().states.view(), use_ema);
        return 1;
      }
      auto& g = workspaces_.get<GuidedWork<N>>();
      copy(View<const std::int32_t, Shape<2 * N>>(labels), g.labels.view());
      if constexpr (label_tokens)
        label_tokens_.gather(View<const std::int32_t, Shape<2 * N>, Space>(g.labels),
                             workspaces_.get<ContextWork<2 * N>>().states.view(), use_ema);
      return condition.guidance_scale;
    }
  }

  // Checks a context condition and puts its contexts where predict() reads them: in ContextWork<N>
  // for one UNet pass, in ContextWork<2N> as [contexts, null contexts] for guidance. Returns the
  // guidance scale predict() applies, 1 for one pass.
  template <index_t N, class ContextView>
  double prepare_condition(const pipeline::ContextConditioning<ContextView>& condition, bool) {
    static_assert(context_conditional,
                  "ldm::LatentDiffusion::sample: a context given to a model whose UNet has no "
                  "cross-attention (its unet is not a UNetConditionConfig)");
    static_assert(!label_tokens,
                  "ldm::LatentDiffusion::sample: a context given to a model whose contexts are "
                  "the rows of its label-token table: give labels (ClassConditioning)");
    if (!std::isfinite(condition.guidance_scale))
      fail_expected("sample: guidance_scale", "a finite number", condition.guidance_scale);
    const View<const float, context<N>, Space> given(condition.context);
    if (!finite(given)) fail("sample: the context holds a NaN or an infinity");
    if (condition.guidance_scale == 1) {
      workspaces_.get<ContextWork<N>>().states = given;
      return 1;
    }
    auto& both = workspaces_.get<ContextWork<2 * N>>().states;
    both.template batch<N>(0) = given;
    put_null_context(both.data() + N * context<1>::size, N);
    return condition.guidance_scale;
  }

  // One inference pass of the UNet on M samples, with the contexts at `context_states` (in
  // Space) when it attends to one.
  template <index_t M>
  static void unet_forward(const UNet& unet, View<const float, latents<M>, Space> x,
                           View<const float, Shape<M>, Space> t, const float* context_states,
                           typename UNet::template Saved<M>& saved,
                           View<float, latents<M>, Space> y,
                           View<const std::int32_t, Shape<M>, Space> labels) {
    if constexpr (context_conditional)
      unet.forward(x, t, View<const float, context<M>, Space>(context_states), saved, y,
                   nn::inference, labels);
    else
      unet.forward(x, t, saved, y, nn::inference, labels);
  }

  // The UNet's prediction for the latents x at timestep t (its input scaled by input_scale, as
  // the sampler asks) into w.eps: one pass on N, or with guidance one pass on 2N whose first half
  // has the classes and second the null class, combined as diffusers' pipelines combine them.
  template <index_t N>
  void predict(const UNet& unet, View<float, latents<N>, Space> x, float t, double input_scale,
               double guidance) {
    auto& w = workspaces_.get<SampleWork<N>>();
    const auto labels =
        View<const std::int32_t, Shape<N>, Space>(class_embedding ? w.labels.data() : nullptr);
    if (guidance == 1) {
      const float* context_states = nullptr;
      if constexpr (context_conditional)
        context_states = workspaces_.get<ContextWork<N>>().states.data();
      w.t = t;
      if (input_scale == 1) {
        unet_forward<N>(unet, x, w.t, context_states, w.saved, w.eps.view(), labels);
      } else {
        w.input = input_scale * x;
        unet_forward<N>(unet, w.input, w.t, context_states, w.saved, w.eps.view(), labels);
      }
      return;
    }
    if constexpr (class_conditional || context_conditional) {
      auto& g = workspaces_.get<GuidedWork<N>>();
      g.input.template batch<N>(0) = input_scale * x;
      g.input.template batch<N>(N) = input_scale * x;
      g.t = t;
      const float* context_states = nullptr;
      if constexpr (context_conditional)
        context_states = workspaces_.get<ContextWork<2 * N>>().states.data();
      unet_forward<2 * N>(unet, g.input, g.t, context_states, g.saved, g.output.view(),
                          View<const std::int32_t, Shape<2 * N>, Space>(
                              class_embedding ? g.labels.data() : nullptr));
      const auto with_class = View<const float, latents<N>, Space>(g.output.template batch<N>(0));
      const auto without = View<const float, latents<N>, Space>(g.output.template batch<N>(N));
      w.eps = without + float(guidance) * (with_class - without);
    }
  }

  template <index_t N>
  static void require_positions(std::span<const double> positions) {
    if (positions.size() != std::size_t(N))
      fail_expected("interpolate: positions", std::to_string(N) + " (one per frame)",
                    positions.size());
    for (std::size_t k = 0; k < positions.size(); ++k)
      if (!(positions[k] >= 0 && positions[k] <= 1))
        fail_expected("interpolate: positions[" + std::to_string(k) + "]", "a value in [0, 1]",
                      positions[k]);
  }

  // The frames between EditWork's endpoints a and b (latents at evaluation `first`), denoised
  // with the same step noise for every frame (seed's for one image), decoded into out.
  template <index_t N, diffusion::Sampler S>
  void denoise_frames(const S& sampler, std::size_t first, std::uint64_t seed,
                      std::span<const double> positions, bool use_ema,
                      View<float, images<N>, Space> out) {
    auto& e = workspaces_.get<EditWork<N>>();
    auto& w = workspaces_.get<SampleWork<N>>();
    const double cosine = diffusion::angle_cosine(View<const float, latents<1>, Space>(e.a),
                                                  View<const float, latents<1>, Space>(e.b));
    for (index_t k = 0; k < N; ++k) {
      const diffusion::SlerpWeights weights =
          diffusion::slerp_weights(cosine, positions[std::size_t(k)]);
      w.x.template batch<1>(k) =
          weights.a * diffusion::in_double(e.a) + weights.b * diffusion::in_double(e.b);
    }
    using One = sample_shape_t<latents<N>>;
    denoise_with<N>(
        sampler, first, use_ema, w.x.view(),
        [&](std::size_t i) {
          return broadcast<latents<N>, 0>(randn<One>(seed, stream(Purpose::sampling_noise, i + 1)));
        },
        NoStepHook{});
    decode<N>(w.x, out);
  }
  // A flat buffer as the optimisers take it: a span of Space's memory.
  template <index_t Count>
  static std::span<float> span(View<float, Shape<Count>, Space> v) {
    return {v.data(), std::size_t(Count)};
  }
  template <class T, ShapeType S>
  static bool finite(View<T, S, Space> v) {
    return nn::all_finite<Space>(v.data(), std::size_t(S::size));
  }
  template <class T, ShapeType S>
  static bool finite(const Tensor<T, S, Space>& t) {
    return finite(t.view());
  }

  void refresh_ema_unet() const { ema_.copy_to(span(ema_unet_.values())); }

  template <index_t N>
  void encode_unchecked(View<const float, images<N>, Space> x, View<float, latents<N>, Space> z) {
    auto& w = workspaces_.get<EncodeWork<N>>();
    autoencoder_->encode(x, w.saved, z, w.logvar.view());
    z = (z - float(latent_scaling_.shift_factor)) * float(latent_scaling_.scaling_factor);
  }

  // A scaling factor of 0 would make every latent 0 and every decoded image one colour.
  static bool usable_scaling_factor(double factor) { return std::isfinite(factor) && factor != 0; }
  void require_usable_scaling_factor(const char* call) const {
    const double factor = latent_scaling_.scaling_factor;
    if (!usable_scaling_factor(factor))
      fail(call, ": the scaling factor is ", factor,
           "; it must be a finite number other than 0 (vae/config.json's scaling_factor)");
  }
  template <class Module>
  static void require_finite(const std::string& what, const nn::Owned<Module, Space>& owned) {
    nn::require_finite_parameters<Space>(what, owned.infos(), owned.values().data(),
                                         Module::parameter_count);
  }
  void require_finite_autoencoder(const char* call) const {
    require_finite(std::string(call) + ": the autoencoder", autoencoder_);
  }
  // After `call` gave a non-finite output from `input` (finite or not): an error naming the
  // cause, the input or the first bad weight.
  [[noreturn]] void explain_nonfinite_output(const char* call, bool input_finite, const char* input,
                                             const char* output) const {
    if (!input_finite) fail(call, ": the ", input, " hold a NaN or an infinity");
    require_finite_autoencoder(call);
    fail(call, ": the ", output, " hold a NaN or an infinity, though the ", input,
         " and the weights are finite");
  }
  // Everything save() writes: the weights, the EMA, the optimisers' moments, the scaling factor.
  void require_savable() const {
    require_usable_scaling_factor("save");
    require_finite_autoencoder("save");
    require_finite("save: the UNet's training weights", unet_);
    refresh_ema_unet();
    require_finite("save: the UNet's EMA weights", ema_unet_);
    auto moments = [](const char* what, const std::vector<nn::ParameterInfo>& infos,
                      const std::vector<float>& values) {
      nn::require_finite_parameters<host>(what, infos, values.data(), values.size());
    };
    moments("save: the autoencoder's AdamW exp_avg", autoencoder_.infos(),
            autoencoder_optimizer_.exp_avg_host());
    moments("save: the autoencoder's AdamW exp_avg_sq", autoencoder_.infos(),
            autoencoder_optimizer_.exp_avg_sq_host());
    moments("save: the UNet's AdamW exp_avg", unet_.infos(), unet_optimizer_.exp_avg_host());
    moments("save: the UNet's AdamW exp_avg_sq", unet_.infos(), unet_optimizer_.exp_avg_sq_host());
    if constexpr (label_tokens) label_tokens_.require_finite("save");
  }
  template <class Owned>
  static std::vector<float> host_values(const Owned& owned) {
    return host_vector<Space>(owned.values().data(), std::size_t(Owned::count));
  }

  // What the pipeline owns from its construction, in bytes.
  static constexpr models::PeakMemory resident_memory() {
    constexpr std::size_t ae = sizeof(float) * std::size_t(AE::parameter_count),
                          unet = sizeof(float) * std::size_t(UNet::parameter_count);
    // The label-token table is counted with the UNet it learns with.
    std::size_t table = 0;
    if constexpr (label_tokens) table = sizeof(float) * std::size_t(LabelTokens::parameter_count);
    models::PeakMemory m;
    m.parameters = ae + unet + table;
    m.gradients = ae + unet + table;
    m.optimizer_state = 2 * (ae + unet + table);
    // The shadow, and ema_unet_'s weights and (unused) gradients; the same for the table.
    m.ema = 3 * (unet + table);
    return m;
  }

  template <index_t N>
  struct AutoencoderWork {
    typename AE::template Saved<N> saved;
    Tensor<float, latents<N>, Space> eps;
    Tensor<float, images<N>, Space> reconstruction;
  };
  template <index_t N>
  struct EncodeWork {
    typename AE::template EncodeSaved<N> saved;
    Tensor<float, latents<N>, Space> logvar;
  };
  template <index_t N>
  struct DecodeWork {
    typename AE::template DecodeSaved<N> saved;
    Tensor<float, latents<N>, Space> unscaled;
  };
  template <index_t N>
  struct DiffusionWork {
    typename UNet::template Saved<N> saved;
    Tensor<float, latents<N>, Space> z0, noise;
    Tensor<std::int32_t, Shape<N>, Space> timesteps, labels;
  };
  // What the editing calls keep beside SampleWork: the image latents and the latent mask of
  // img2img() and inpaint(), and the two endpoints of the interpolations.
  template <index_t N>
  struct EditWork {
    Tensor<float, latents<N>, Space> z0;
    Tensor<float, latent_masks<N>, Space> mask;
    Tensor<float, latents<1>, Space> a, b;
  };
  template <index_t N>
  struct SampleWork {
    typename UNet::template Saved<N> saved;
    Tensor<float, latents<N>, Space> x, input, eps;
    Tensor<float, Shape<N>, Space> t;
    Tensor<std::int32_t, Shape<N>, Space> labels;
  };
  // The contexts of M samples where the UNet reads them: a training micro-batch's (after context
  // dropout), sampling's, or guided sampling's [contexts, null contexts] (M = 2N).
  template <index_t M>
  struct ContextWork {
    Tensor<float, context<M>, Space> states;
  };
  // The gradient of a training micro-batch's contexts, for the label-token table.
  template <index_t M>
  struct ContextGradWork {
    Tensor<float, context<M>, Space> grads;
  };
  // Guided sampling's one UNet pass on both halves: with the classes, then with the null class.
  template <index_t N>
  struct GuidedWork {
    typename UNet::template Saved<2 * N> saved;
    Tensor<float, latents<2 * N>, Space> input, output;
    Tensor<float, Shape<2 * N>, Space> t;
    Tensor<std::int32_t, Shape<2 * N>, Space> labels;
  };

  pipeline::json vae_config() const {
    return pipeline::autoencoder_config<Config::autoencoder>(Config::image_channels,
                                                             Config::resolution, latent_scaling_);
  }
  pipeline::json unet_json() const {
    if constexpr (context_conditional)
      return pipeline::unet_condition_config<Config::unet>(latent_channels, latent_res,
                                                           options_.dropout);
    else
      return pipeline::unet_config<Config::unet>(latent_channels, latent_res, options_.dropout);
  }
  static pipeline::json unet_defaults() {
    return context_conditional ? pipeline::unet_condition_defaults() : pipeline::unet_defaults();
  }
  // The unet/config.json fields that change no weight: the dropout (a training setting) and, for
  // UNet2DConditionModel, its own.
  static std::vector<std::string> unet_unchecked() {
    std::vector<std::string> fields{"dropout"};
    if constexpr (context_conditional)
      for (const auto& field : pipeline::unet_condition_unchecked_fields())
        fields.push_back(field);
    return fields;
  }

  // Beside the weights, not in the training state: a folder without a training state (a
  // released model) must sample as the model that saved it.
  static constexpr const char* null_context_file = "null_context.safetensors";
  void write_null_context(const std::filesystem::path& path) const {
    io::SafetensorsWriter out;
    out.add("null_context", std::span<const float>(null_context_),
            {std::int64_t(context_tokens), std::int64_t(context<1>::extent(2))});
    out.set_metadata("format", "ldm null context 1 (what guidance and context dropout use)");
    out.write(path);
  }
  // The null context saved at `path`; zeros where there is none (diffusers' folders).
  std::vector<float> read_null_context(const std::filesystem::path& path) const {
    std::vector<float> values(null_context_.size(), 0.0f);
    if (!caller_context || !std::filesystem::exists(path)) return values;
    const auto file = io::SafetensorsFile::open(path);
    const std::int64_t shape[] = {std::int64_t(context_tokens),
                                  std::int64_t(context<1>::extent(2))};
    file.read<float>("null_context", values, shape);
    nn::require_finite_values(values, path.string() + ": null_context");
    return values;
  }

  void write_training_state(const std::filesystem::path& path, const RunInfo& run_info) const {
    io::SafetensorsWriter out;
    auto add = [&](const std::string& name, std::span<const float> data) {
      out.add(name, data, {std::int64_t(data.size())});
    };
    add("autoencoder.exp_avg", autoencoder_optimizer_.exp_avg_host());
    add("autoencoder.exp_avg_sq", autoencoder_optimizer_.exp_avg_sq_host());
    add("unet.parameters", host_values(unet_));
    add("unet.exp_avg", unet_optimizer_.exp_avg_host());
    add("unet.exp_avg_sq", unet_optimizer_.exp_avg_sq_host());
    add("unet.ema", ema_.shadow_host());
    if constexpr (label_tokens) label_tokens_.add_training_state(out);
    out.set_metadata("format", "ldm training state 1 (flat buffers in ldm's internal layouts)");
    out.set_metadata("ldm_version", version.string);
    out.set_metadata("seed", std::to_string(seed_));
    out.set_metadata("autoencoder_steps", std::to_string(autoencoder_steps_));
    out.set_metadata("autoencoder_optimizer_steps", std::to_string(autoencoder_optimizer_.steps()));
    out.set_metadata("diffusion_steps", std::to_string(diffusion_steps_));
    out.set_metadata("unet_optimizer_steps", std::to_string(unet_optimizer_.steps()));
    out.set_metadata("ema_optimization_step", std::to_string(ema_.optimization_step()));
    out.set_metadata("scaling_factor_measured", scaling_measured_ ? "1" : "0");
    pipeline::write_lr_schedule(out, "autoencoder_lr_schedule", options_.autoencoder_lr_schedule);
    pipeline::write_lr_schedule(out, "unet_lr_schedule", options_.unet_lr_schedule);
    for (const auto& [key, value] : run_info)
      out.set_metadata(std::string(run_info_prefix) + key, value);
    out.write(path);
  }

  void read_training_state(const std::filesystem::path& path) {
    const auto file = io::SafetensorsFile::open(path);
    auto number = [&](const char* key) -> std::uint64_t {
      const auto it = file.metadata().find(key);
      if (it == file.metadata().end()) fail(path.string(), ": metadata '", key, "' is missing");
      try {
        return std::stoull(it->second);
      } catch (const std::exception&) {
        fail_expected(path.string() + ": metadata '" + key + "'", "a whole number", it->second);
      }
    };
    auto read = [&](const char* name, std::size_t count) {
      std::vector<float> values(count);
      const std::int64_t shape[] = {std::int64_t(count)};
      file.read<float>(name, values, shape);
      return values;
    };
    constexpr auto ae_count = std::size_t(AE::parameter_count),
                   unet_count = std::size_t(UNet::parameter_count);
    autoencoder_optimizer_.restore(std::int64_t(number("autoencoder_optimizer_steps")),
                                   read("autoencoder.exp_avg", ae_count),
                                   read("autoencoder.exp_avg_sq", ae_count));
    const auto raw = read("unet.parameters", unet_count);
    copy_elements<host, Space>(raw.data(), unet_.values().data(), raw.size());
    unet_optimizer_.restore(std::int64_t(number("unet_optimizer_steps")),
                            read("unet.exp_avg", unet_count), read("unet.exp_avg_sq", unet_count));
    const auto ema = read("unet.ema", unet_count);
    require_same_as_unet_folder(ema, path);
    ema_.restore(std::int64_t(number("ema_optimization_step")), ema);
    if constexpr (label_tokens) {
      label_tokens_.read_training_state(file, unet_optimizer_.steps(), ema_.optimization_step());
      require_same_label_tokens(path);
    }
    seed_ = number("seed");
    autoencoder_steps_ = number("autoencoder_steps");
    diffusion_steps_ = number("diffusion_steps");
    scaling_measured_ = number("scaling_factor_measured") != 0;
    run_info_.clear();
    for (const auto& [key, value] : file.metadata())
      if (key.starts_with(run_info_prefix))
        run_info_[key.substr(std::string_view(run_info_prefix).size())] = value;
  }
  static constexpr const char* run_info_prefix = "run.";
  // As require_same_as_unet_folder(), for the table: label_tokens.safetensors holds its EMA,
  // and so does the training state (restored into the EMA here, the file's values before).
  void require_same_label_tokens(const std::filesystem::path& state) const {
    const auto restored = label_tokens_.ema_host();
    const auto file = LabelTokens::read(state.parent_path() / LabelTokens::file_name);
    for (std::size_t i = 0; i < file.size(); ++i)
      if (std::bit_cast<std::uint32_t>(file[i]) != std::bit_cast<std::uint32_t>(restored[i]))
        fail(state.string(), ": its EMA of the label tokens differs from ", LabelTokens::file_name,
             "'s (", restored[i], " against ", file[i], " at element ", i,
             "): that file was changed after this checkpoint was saved. Remove the training "
             "state to use it as it is (without an exact resume)");
  }

  void require_same_lr_schedules(const std::filesystem::path& path) const {
    const auto file = io::SafetensorsFile::open(path);
    pipeline::require_same_lr_schedule(file, path, "autoencoder_lr_schedule", "the autoencoder",
                                       options_.autoencoder_lr_schedule);
    pipeline::require_same_lr_schedule(file, path, "unet_lr_schedule", "the UNet",
                                       options_.unet_lr_schedule);
  }
  // save() writes the same EMA to unet/ and to the training state. Where they differ, unet/ was
  // changed since, and diffusers (which reads unet/) and ema_unet() would disagree: refused.
  // ema_unet_ holds unet/'s weights here.
  void require_same_as_unet_folder(const std::vector<float>& ema,
                                   const std::filesystem::path& state) const {
    const auto unet_folder = host_values(ema_unet_);
    for (const auto& info : ema_unet_.infos())
      for (index_t i = info.offset; i < info.offset + info.size; ++i)
        if (std::bit_cast<std::uint32_t>(unet_folder[std::size_t(i)]) !=
            std::bit_cast<std::uint32_t>(ema[std::size_t(i)]))
          fail(state.string(), ": its EMA of 'unet.", info.name, "' differs from unet/'s (",
               ema[std::size_t(i)], " against ", unet_folder[std::size_t(i)], " at its element ",
               i - info.offset,
               "): unet/ was changed after this checkpoint was saved. Remove the training state "
               "to use unet/ as it is (without an exact resume)");
  }

  // VGG16 pools four times: smaller images have no LPIPS (the trainer then uses SSIM).
  static constexpr bool lpips_possible = Config::resolution >= 16;
  static constexpr bool ssim_possible = Config::resolution >= 11;
  struct NoLpips {};
  using Lpips = std::conditional_t<
      lpips_possible,
      train::LPIPS<float, (lpips_possible ? Config::resolution : 16),
                   (lpips_possible ? Config::resolution : 16), Config::image_channels, Space>,
      NoLpips>;

  TrainingOptions options_;
  std::unique_ptr<Lpips> lpips_;
  std::uint64_t seed_;
  nn::Owned<AE, Space> autoencoder_;
  nn::Owned<UNet, Space> unet_;
  // The EMA's shadow as a module, refreshed by ema_unet().
  mutable nn::Owned<UNet, Space> ema_unet_;
  train::AdamW<Space> autoencoder_optimizer_, unet_optimizer_;
  train::EMA<Space> ema_;
  pipeline::SchedulerSettings scheduler_;
  diffusion::Schedule schedule_;
  // Measured by the first diffusion step unless set or loaded.
  pipeline::LatentScaling latent_scaling_{.scaling_factor = 1};
  bool scaling_measured_ = false;
  std::uint64_t autoencoder_steps_ = 0, diffusion_steps_ = 0;
  train::NonFiniteGuard autoencoder_guard_, unet_guard_;
  RunInfo run_info_;
  // The learned contexts of the labels, when the configuration states label_classes.
  LabelTokens label_tokens_;
  // The null context, context_tokens x cross_attention_dim values (none without cross-attention,
  // or with a label-token table, whose last row is the null label's context).
  std::vector<float> null_context_;
  pipeline::Workspaces workspaces_;
};

}  // namespace ldm
