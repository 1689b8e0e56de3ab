#pragma once
// What the `fashion` commands share: the `tiny` configuration and its model types, the sample
// grid command as a template over the memory space, and the training program (the library's
// trainer with Fashion-MNIST as its data and the Frechet distance as a validation measure).
// fashion.cpp instantiates them for the host; fashion/cuda.cu, built when CUDA is enabled, for
// ldm::cuda. So the host program compiles with the C++ compiler and only the GPU instantiations
// go through nvcc.

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <ldm/ldm.hpp>
#include <ldm/trainer.hpp>
#include <optional>
#include <string>
#include <vector>

namespace fashion {

namespace fs = std::filesystem;
using Config = ldm::configs::Tiny;
// `tiny` with its UNet conditioned on Fashion-MNIST's 10 classes (num_class_embeds 11: the last
// is the null class of classifier-free guidance): what `fashion train` trains by default.
struct ClassConfig : Config {
  /// Config's UNet with a class embedding.
  static constexpr ldm::UNetConfig unet = [] {
    ldm::UNetConfig with_classes = Config::unet;
    with_classes.num_class_embeds = 11;
    return with_classes;
  }();
};
// `tiny` with its UNet conditioned by cross-attention on a learned label-token table
// (`fashion train --conditioning cross-attention`; ldm/pipeline/label_tokens.hpp): each of the 10
// classes, and the null label of guidance, is a learned context of 4 tokens of 64 channels.
// Cross-attention sits where `tiny` has its self-attention, at the coarser level (4x4 latents)
// and in the mid block, with 2 heads of 32 channels as there: at 8x8 it would cost four times as
// much for a 28x28 garment's class, which a few tokens at the coarse level carry. 64 channels is
// the level's own width; 4 tokens give the attention something to choose between (one token
// would make its softmax constant, a mere per-class bias) at a cost that is noise beside the
// 16 query positions.
struct TokenConfig : Config {
  /// Config's UNet with cross-attention on 64-channel contexts.
  static constexpr ldm::UNetConditionConfig unet{.block_out_channels = {32, 64},
                                                 .layers_per_block = 2,
                                                 .cross_attention = {false, true},
                                                 .attention_head_dim = {2},
                                                 .cross_attention_dim = 64};
  /// Tokens per context.
  static constexpr ldm::index_t context_tokens = 4;
  /// Fashion-MNIST's classes: the label-token table has 11 rows.
  static constexpr ldm::index_t label_classes = 10;
};
template <class Space, class C = Config>
using ModelOn = ldm::LatentDiffusion<C, Space>;
using Model = ModelOn<ldm::host>;
constexpr ldm::index_t resolution = Config::resolution, image_channels = Config::image_channels;
using ImageSet = ldm::data::ImageSet<resolution, image_channels>;
using Clock = std::chrono::steady_clock;
using ldm::train::draw_samples;
using ldm::train::preview_batch;
using ldm::train::SamplingFlags;
template <ldm::index_t N>
using Images = Model::images<N>;

// The micro-batch the training steps are compiled for: the default --batch 32, which larger batches
// accumulate. On the host two accumulated micro-batches of 16 ran the UNet step 25% slower than
// one of 32 (docs/performance.md, "Batch size"), so the default batch is compiled whole.
constexpr ldm::index_t micro_batch = 32;

inline void write_grid(const fs::path& path, std::span<const float> images, ldm::index_t columns) {
  ldm::train::write_grid<Model>(path, images, columns);
}

struct SampleRequest {
  std::string model_folder, out;
  std::int64_t seed = 0;
  std::int64_t count = 0;         // 0: 64, or a row of 8 per class of a class-conditional model
  std::int64_t class_label = -1;  // --class: every image of this class; -1: a row per class
  SamplingFlags sampling;
};

// Which of fashion's configurations a model folder holds.
enum class FolderKind {
  unconditional,    // Config
  class_embedding,  // ClassConfig
  label_tokens,     // TokenConfig
};

// The configuration of a model folder, from its unet/config.json (the UNet's class, its
// num_class_embeds) and its label_tokens.safetensors; loading then checks the rest (and says what
// is missing from a folder that is not a checkpoint).
inline FolderKind folder_kind(const fs::path& where) {
  if (!ldm::pipeline::find_checkpoint(where)) return FolderKind::unconditional;
  const fs::path folder = ldm::pipeline::existing_checkpoint(where);
  const fs::path file = folder / "unet" / "config.json";
  if (!fs::exists(file)) return FolderKind::unconditional;
  const auto config = ldm::pipeline::read_json(file);
  if (config.value("_class_name", std::string()) == "UNet2DConditionModel") {
    if (fs::exists(folder / ldm::pipeline::label_tokens_file)) return FolderKind::label_tokens;
    ldm::fail(file.string(), ": a UNet2DConditionModel without ", ldm::pipeline::label_tokens_file,
              " beside it; fashion's cross-attention models (--conditioning cross-attention) "
              "attend to their learned label tokens, and it has no other contexts to give");
  }
  const auto found = config.value("num_class_embeds", ldm::pipeline::json());
  if (found.is_null()) return FolderKind::unconditional;
  if (found == ClassConfig::unet.num_class_embeds) return FolderKind::class_embedding;
  ldm::fail_expected(file.string() + ": field 'num_class_embeds'",
                     "null (unconditional) or " +
                         std::to_string(ClassConfig::unet.num_class_embeds) +
                         " (Fashion-MNIST's 10 classes and the null class)",
                     found.dump());
}

// Runs run.template operator()<C>() with the configuration of the model in `folder`.
template <class Run>
int with_folder_config(const fs::path& folder, const Run& run) {
  switch (folder_kind(folder)) {
    case FolderKind::class_embedding:
      return run.template operator()<ClassConfig>();
    case FolderKind::label_tokens:
      return run.template operator()<TokenConfig>();
    case FolderKind::unconditional:
      break;
  }
  return run.template operator()<Config>();
}

// The labels of the sample grid: every image of --class, or a row of 8 per class.
template <class Model>
std::vector<std::int32_t> sample_labels(const SampleRequest& request) {
  if constexpr (!Model::class_conditional) {
    if (request.class_label >= 0)
      ldm::fail(request.model_folder, " is not class-conditional: it takes no --class");
    return {};
  } else {
    if (request.class_label >= ldm::index_t(Model::classes))
      ldm::fail_expected("--class", "a class in [0, " + std::to_string(Model::classes) + ")",
                         request.class_label);
    if (request.class_label < 0) return ldm::train::labels_in_turn<Model>(request.count, 8);
    return std::vector<std::int32_t>(std::size_t(request.count + preview_batch),
                                     std::int32_t(request.class_label));
  }
}

// A grid of samples from a model folder.
template <class Space, class C = Config>
int sample(const SampleRequest& asked) {
  const auto start = Clock::now();
  using Model = ModelOn<Space, C>;
  SampleRequest request = asked;
  if (request.count == 0)
    request.count = Model::class_conditional && request.class_label < 0 ? 8 * Model::classes : 64;
  const auto labels = sample_labels<Model>(request);
  Model model(0);
  model.load(request.model_folder);
  std::printf("sampling %lld images from %s (%s, %d steps%s)...\n", (long long)request.count,
              request.model_folder.c_str(), request.sampling.name().c_str(), request.sampling.steps,
              Model::class_conditional
                  ? (", guidance " + ldm::cli::shown(request.sampling.guidance) +
                     (request.class_label < 0 ? ", a row per class"
                                              : ", class " + std::to_string(request.class_label)))
                        .c_str()
                  : "");
  const auto images = draw_samples(model, request.sampling, std::uint64_t(request.seed),
                                   ldm::index_t(request.count), labels);
  const fs::path out = request.out;
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  write_grid(out, images, 8);
  std::printf("wrote %s in %.1f s\n", out.c_str(),
              std::chrono::duration<double>(Clock::now() - start).count());
  return 0;
}

template <class C = Config>
using Program = ldm::train::Program<C>;

// `fashion train`: the library's trainer with the shipped model's settings (docs/fashion.md),
// Fashion-MNIST when no --data is given, and the Frechet distance of a few samples in the
// project classifier's feature space as a validation measure (fashion/train_program.cpp), for
// Config, ClassConfig and TokenConfig.
template <class C>
Program<C> train_program();

// The GPU instantiations, defined in fashion/cuda.cu (only in builds with CUDA). cuda_device()
// describes the GPU ("cuda:0, NVIDIA H200"), or is empty where there is none.
std::string cuda_device();
std::optional<int> train_on_cuda(const ldm::train::TrainerSettings& settings,
                                 const Program<Config>& program);
std::optional<int> train_on_cuda(const ldm::train::TrainerSettings& settings,
                                 const Program<ClassConfig>& program);
std::optional<int> train_on_cuda(const ldm::train::TrainerSettings& settings,
                                 const Program<TokenConfig>& program);
int sample_on_cuda(const SampleRequest& request);

}  // namespace fashion
