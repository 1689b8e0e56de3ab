#pragma once
/// @file
/// What a training run is told: the trainer's command-line flags as one struct, with their help
/// texts and the checks made before any data, model or output is touched.

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "ldm/cli/checks.hpp"
#include "ldm/cli/options.hpp"
#include "ldm/cli/writable.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/train/lr_schedule.hpp"
#include "ldm/trainer/sampling_flags.hpp"

namespace ldm::train {

/// A training run's settings; each field is the flag of the same name (`--autoencoder-steps`).
/// A program's defaults are the values it constructs this with (ldm::train::Program::defaults).
struct TrainerSettings {
  std::string out = "runs/train";  ///< Folder of the checkpoints, images and logs.
  /// A folder of images, or empty for the program's own data (Program::default_data).
  std::string data;
  std::string on_unreadable = "skip";  ///< skip or reject unreadable image files.
  /// The preprocessed copy of --data ("none": decode every run; empty: in the user's cache).
  std::string data_cache;
  std::string lpips;                      ///< LPIPS weights (safetensors); empty: 1 - SSIM.
  std::string device = "host";            ///< host or cuda.
  std::int64_t seed = 1;                  ///< Seed of the weights, the data order and all noise.
  std::int64_t autoencoder_steps = 2000;  ///< Autoencoder steps in all.
  std::int64_t diffusion_steps = 10000;   ///< Diffusion (UNet) steps in all.
  int batch = 32;              ///< Images per step: a multiple of the compiled micro-batch.
  int checkpoint_every = 500;  ///< Steps between checkpoints.
  int images_every = 500;      ///< Steps between image grids and loss.png.
  int validate_every = 1000;   ///< Steps between validation passes (0: none).
  /// @{
  /// AdamW's base learning rates.
  double autoencoder_lr = 4e-4, unet_lr = 4e-4;
  /// @}
  std::string lr_schedule = "constant";     ///< diffusers' get_scheduler name.
  std::int64_t lr_warmup_steps = 0;         ///< Warm-up steps of each phase's schedule.
  std::string prediction_type = "epsilon";  ///< epsilon or v_prediction.
  double snr_gamma = 0;                     ///< Min-SNR-gamma loss weighting (0: off).
  double noise_offset = 0;                  ///< Offset noise (0: off).
  /// Classifier-free guidance training: the share of labels replaced by the null class
  /// (class-conditional configurations only).
  double label_dropout = 0.1;
  bool flip = false;               ///< Random horizontal flips of the training images.
  double time_budget = 0;          ///< Seconds of training for this run (0: no limit).
  double autoencoder_share = 0.4;  ///< The autoencoder's share of time_budget.
  bool resume = false;             ///< Continue the run in `out`.
  SamplingFlags sampling;          ///< How the sample grids are drawn.

  /// Registers every flag, with this object's values as the defaults --help shows.
  /// @param micro_batch the compiled micro-batch, for --batch's help
  /// @param resolution,channels the images, for --data's help
  void add_to(cli::Options& options, index_t micro_batch, index_t resolution, index_t channels) {
    const std::string size = std::to_string(resolution) + "x" + std::to_string(resolution) + " " +
                             (channels == 1 ? "grey" : "RGB");
    options.add("out", &out, "folder for the checkpoints, images, log.csv and validation.csv");
    options.add(
        "data", &data,
        "a folder of PNG/JPEG/BMP/TGA/GIF images (centre-cropped, resized to " + size + ")");
    options.add("on-unreadable", &on_unreadable,
                "with --data: skip (and list) or reject unreadable files");
    options.add("data-cache", &data_cache,
                "with --data: the decoded images' cache file, reused while the folder is "
                "unchanged (default: under $XDG_CACHE_HOME or ~/.cache; none: no cache)");
    options.add_switch("flip", &flip, "random horizontal flips of the training images");
    options.add("seed", &seed, "seed of the weights, the data order and all noise");
    options.add("batch", &batch,
                "images per step: a multiple of " + std::to_string(micro_batch) +
                    " (the compiled micro-batch; larger batches accumulate gradients)");
    options.add("autoencoder-steps", &autoencoder_steps, "autoencoder steps in all");
    options.add("diffusion-steps", &diffusion_steps, "diffusion (UNet) steps in all");
    options.add("autoencoder-lr", &autoencoder_lr, "AdamW learning rate of the autoencoder");
    options.add("unet-lr", &unet_lr, "AdamW learning rate of the UNet");
    options.add("lr-schedule", &lr_schedule,
                "constant, constant_with_warmup, linear or cosine (diffusers' names), over each "
                "phase's steps");
    options.add("lr-warmup-steps", &lr_warmup_steps, "linear warm-up steps of each phase");
    options.add("prediction-type", &prediction_type,
                "what the UNet learns: epsilon or v_prediction");
    options.add("snr-gamma", &snr_gamma,
                "min-SNR-gamma loss weighting (Hang et al.; 5 is the usual choice; 0: off)");
    options.add("noise-offset", &noise_offset,
                "offset noise: a per-channel constant of this scale added to the noise (0: off)");
    options.add("label-dropout", &label_dropout,
                "class-conditional configurations: the share of labels dropped for classifier-free "
                "guidance");
    options.add("time-budget", &time_budget,
                "seconds of training for this run, 0 for no limit (then the step counts decide)");
    options.add("autoencoder-share", &autoencoder_share,
                "the autoencoder's share of --time-budget; the diffusion phase gets the rest");
    options.add("checkpoint-every", &checkpoint_every, "steps between checkpoints");
    options.add("images-every", &images_every,
                "steps between reconstruction / sample grids written during training");
    options.add("validate-every", &validate_every,
                "steps between validation passes written to validation.csv (0: none)");
    options.add_switch("resume", &resume,
                       "continue the run in --out from its checkpoint (same data and batch)");
    options.add("lpips", &lpips,
                "LPIPS (VGG16) weights as safetensors (tools/convert_lpips_weights.py); without "
                "them the structural term is 1 - SSIM");
    options.add("device", &device, "host, or cuda (a GPU, in a build with CUDA)");
    sampling.add_to(options);
  }

  /// Checks every flag, then creates `out` and checks that it can be written, before any data is
  /// loaded.
  /// @throws ldm::Error naming the flag, what it allows and the value given
  void validate(index_t micro_batch, int num_train_timesteps) const {
    sampling.validate(num_train_timesteps);
    cli::require_one_of("--device", device, "host", "cuda");
    if (batch < micro_batch || batch % micro_batch != 0)
      fail_expected("--batch",
                    "a multiple of " + std::to_string(micro_batch) +
                        " (the compiled micro-batch; larger batches accumulate gradients)",
                    batch);
    cli::require_at_least("--seed", seed, 0);
    cli::require_at_least("--autoencoder-steps", autoencoder_steps, 0);
    cli::require_at_least("--diffusion-steps", diffusion_steps, 0);
    cli::require_at_least("--checkpoint-every", checkpoint_every, 1);
    cli::require_at_least("--images-every", images_every, 1);
    cli::require_at_least("--validate-every", validate_every, 0);
    cli::require_positive("--autoencoder-lr", autoencoder_lr);
    cli::require_positive("--unet-lr", unet_lr);
    const LRScheduleType schedule = lr_schedule_type(lr_schedule, "--lr-schedule");
    cli::require_at_least("--lr-warmup-steps", lr_warmup_steps, 0);
    if (schedule == LRScheduleType::linear || schedule == LRScheduleType::cosine)
      for (const auto& [flag, steps] : {std::pair{"--autoencoder-steps", autoencoder_steps},
                                        std::pair{"--diffusion-steps", diffusion_steps}})
        if (steps > 0 && lr_warmup_steps > steps)
          fail("--lr-warmup-steps ", lr_warmup_steps, " is more than ", flag, " ", steps, ": the ",
               lr_schedule, " schedule would end inside its warm-up");
    cli::require_one_of("--prediction-type", prediction_type, "epsilon", "v_prediction");
    cli::require_non_negative("--snr-gamma", snr_gamma);
    cli::require_non_negative("--noise-offset", noise_offset);
    cli::require_in("--label-dropout", label_dropout, 0, 1);
    if (!(std::isfinite(time_budget) && time_budget >= 0))
      fail_expected("--time-budget", "seconds >= 0 (0 for no limit)", cli::shown(time_budget));
    cli::require_in("--autoencoder-share", autoencoder_share, 0, 1);
    cli::require_one_of("--on-unreadable", on_unreadable, "skip", "reject");
    if (out.empty()) fail_expected("--out", "a folder", "an empty path");
    cli::require_writable_folder(out, "--out");
  }

  /// The learning-rate schedule of a phase of `steps` steps (a phase of none takes no step, and
  /// its schedule is only recorded).
  LRSchedule schedule_over(std::int64_t steps) const {
    return {.type = lr_schedule_type(lr_schedule, "--lr-schedule"),
            .warmup_steps = steps > 0 ? lr_warmup_steps : 0,
            .total_steps = std::max<std::int64_t>(steps, 1)};
  }
};

}  // namespace ldm::train
