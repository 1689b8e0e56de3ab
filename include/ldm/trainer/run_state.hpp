#pragma once
/// @file
/// What a trainer's checkpoint records beyond the model: where the data stream is, how far
/// training got, and the settings a resumed run must keep to continue exactly. Kept as the
/// "trainer." keys of the checkpoint's RunInfo (LatentDiffusion::save()).

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "ldm/core/error.hpp"
#include "ldm/pipeline/latent_diffusion.hpp"

namespace ldm::train {

/// A trainer's own state in a checkpoint.
struct RunState {
  std::string phase = "autoencoder";  ///< autoencoder, or diffusion once the autoencoder is frozen
  std::int64_t batch = 0;             ///< Images per step.
  /// The micro-batch the gradients were accumulated over (the batch itself in checkpoints of
  /// earlier versions, which had no accumulation).
  std::int64_t micro_batch = 0;
  std::int64_t seed = 0;  ///< The run's seed.
  /// The processes that shared each step (checkpoints of earlier versions: 1).
  std::int64_t world_size = 1;
  std::string data;   ///< What the data was: "fashion-mnist", "folder:/abs/path"...
  bool flip = false;  ///< Whether the images were flipped at random.
  /// @{
  /// The diffusion loss's min-SNR-gamma and offset noise (0: off, as in earlier versions).
  double snr_gamma = 0, noise_offset = 0, label_dropout = 0;
  /// @}
  /// @{
  /// Each phase's data position (ShuffledBatches::epoch() and position()).
  std::uint64_t autoencoder_epoch = 0, autoencoder_position = 0;
  std::uint64_t diffusion_epoch = 0, diffusion_position = 0;
  /// @}
  double seconds = 0;  ///< Training time of all runs so far.
  /// @{
  /// The length of log.csv and validation.csv when the checkpoint was saved: a resumed run cuts
  /// off the rows of the steps it trains again. Absent from checkpoints of earlier versions.
  std::optional<std::uint64_t> log_bytes, validation_bytes;
  /// @}

  /// A number written so that reading it back gives the same double.
  static std::string exact(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", value);
    return text;
  }

  /// The state as RunInfo keys.
  RunInfo to_info() const {
    RunInfo info = {{"trainer.phase", phase},
                    {"trainer.batch", std::to_string(batch)},
                    {"trainer.micro_batch", std::to_string(micro_batch)},
                    {"trainer.seed", std::to_string(seed)},
                    {"trainer.world_size", std::to_string(world_size)},
                    {"trainer.data", data},
                    {"trainer.flip", flip ? "1" : "0"},
                    {"trainer.snr_gamma", exact(snr_gamma)},
                    {"trainer.noise_offset", exact(noise_offset)},
                    {"trainer.label_dropout", exact(label_dropout)},
                    {"trainer.autoencoder_epoch", std::to_string(autoencoder_epoch)},
                    {"trainer.autoencoder_position", std::to_string(autoencoder_position)},
                    {"trainer.diffusion_epoch", std::to_string(diffusion_epoch)},
                    {"trainer.diffusion_position", std::to_string(diffusion_position)},
                    {"trainer.seconds", std::to_string(seconds)}};
    if (log_bytes) info["trainer.log_bytes"] = std::to_string(*log_bytes);
    if (validation_bytes) info["trainer.validation_bytes"] = std::to_string(*validation_bytes);
    return info;
  }

  /// The state a checkpoint recorded.
  /// @param where the checkpoint, for messages
  /// @throws ldm::Error naming the checkpoint and the key when a key is missing or not a number
  static RunState from_info(const RunInfo& info, const std::filesystem::path& where) {
    auto get = [&](const std::string& key) {
      const auto it = info.find("trainer." + key);
      if (it == info.end())
        fail(where.string(), ": not a checkpoint of this trainer (no 'trainer.", key,
             "' in its training state)");
      return it->second;
    };
    auto number = [&](const std::string& key) -> std::uint64_t {
      const std::string text = get(key);
      try {
        return std::stoull(text);
      } catch (const std::exception&) {
        fail_expected(where.string() + ": trainer." + key, "a whole number", text);
      }
    };
    RunState state;
    state.phase = get("phase");
    state.batch = std::int64_t(number("batch"));
    state.micro_batch =
        info.contains("trainer.micro_batch") ? std::int64_t(number("micro_batch")) : state.batch;
    state.seed = std::int64_t(number("seed"));
    state.world_size = info.contains("trainer.world_size") ? std::int64_t(number("world_size")) : 1;
    state.data = get("data");
    state.flip = info.contains("trainer.flip") && number("flip") != 0;
    auto real = [&](const std::string& key) {
      if (!info.contains("trainer." + key)) return 0.0;
      const std::string text = get(key);
      try {
        return std::stod(text);
      } catch (const std::exception&) {
        fail_expected(where.string() + ": trainer." + key, "a number", text);
      }
    };
    state.snr_gamma = real("snr_gamma");
    state.noise_offset = real("noise_offset");
    state.label_dropout = real("label_dropout");
    state.autoencoder_epoch = number("autoencoder_epoch");
    state.autoencoder_position = number("autoencoder_position");
    state.diffusion_epoch = number("diffusion_epoch");
    state.diffusion_position = number("diffusion_position");
    state.seconds = std::stod(get("seconds"));
    if (info.contains("trainer.log_bytes")) state.log_bytes = number("log_bytes");
    if (info.contains("trainer.validation_bytes"))
      state.validation_bytes = number("validation_bytes");
    return state;
  }
};

}  // namespace ldm::train
