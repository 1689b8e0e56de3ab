#pragma once
/// @file
/// What a training program adds to the generic trainer: its name and help, its defaults, its own
/// data when no --data is given, extra validation measures, and where its GPU code lives.

#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "ldm/trainer/settings.hpp"
#include "ldm/trainer/training_data.hpp"

namespace ldm::train {

/// A named number a validation pass measured ("psnr", 24.3).
using Measure = std::pair<std::string, double>;

/// A training program built on the trainer: everything is optional.
/// @tparam Config the configuration it trains (see ldm::configs)
template <class Config>
struct Program {
  /// The data a program trains on.
  using Data = TrainingData<Config::resolution, Config::image_channels>;

  std::string name = "train";  ///< The program's name, for --help, --version and messages.
  /// What --help says the program does.
  std::string description = "Trains a latent diffusion model on a folder of images (--data).";
  TrainerSettings defaults{};  ///< The flags' defaults.
  /// The data when --data is not given (such as Fashion-MNIST); without it --data is required.
  std::function<Data()> default_data{};
  /// Measures of `validation_samples` samples (host floats, NHWC, about [-1, 1]) beside the
  /// reconstruction PSNR and SSIM, such as a Fréchet distance.
  std::function<std::vector<Measure>(std::span<const float> samples)> sample_measures{};
  index_t validation_samples = 64;  ///< Samples drawn for sample_measures.
  /// Runs the training on the GPU, for programs whose GPU instantiation is compiled in a .cu unit
  /// of their own (a .cu unit that calls ldm::train::main() needs none); it returns nothing when
  /// there is no CUDA device, and the run then goes to the host.
  std::function<std::optional<int>(const TrainerSettings&, const Program&)> run_on_cuda{};
};

}  // namespace ldm::train
