#pragma once
/// @file
/// The command-line flags of every command that draws samples (the trainer's sample grids,
/// `fashion sample`, `fashion eval`...): which sampler, how many steps, DDIM's eta, Karras sigmas.

#include <algorithm>
#include <string>

#include "ldm/cli/checks.hpp"
#include "ldm/cli/options.hpp"
#include "ldm/pipeline/samplers.hpp"
#include "ldm/pipeline/scheduler_config.hpp"

namespace ldm::train {

/// How to draw samples, as the flags --sampler, --sample-steps, --eta and --karras say.
struct SamplingFlags {
  std::string sampler;  ///< A name of pipeline::kSamplerNames; empty: the model's own.
  int steps = 50;       ///< Denoising steps.
  double eta = 0;       ///< DDIM's eta.
  bool karras = false;  ///< Karras et al.'s sigmas (use_karras_sigmas).
  /// Classifier-free guidance scale of a class-conditional model (1: its conditional prediction
  /// alone).
  double guidance = 3;

  /// Registers the flags: --sampler, --sample-steps, --eta, --karras and, unless told not to (a
  /// command for unconditional models only), --guidance.
  void add_to(cli::Options& options, bool with_guidance = true) {
    std::string names;
    for (const pipeline::SamplerName& s : pipeline::kSamplerNames)
      names += (names.empty() ? "" : ", ") + std::string(s.name);
    options.add("sampler", &sampler,
                "one of " + names + " (default: the model's scheduler; DDIM for a new model)");
    options.add("sample-steps", &steps, "denoising steps (ddpm: up to 1000)");
    options.add("eta", &eta, "DDIM's eta: 0 is deterministic, 1 is DDPM-like noise");
    options.add_switch("karras", &karras,
                       "Karras et al.'s sigmas (use_karras_sigmas): euler, heun, dpm++2m, unipc");
    if (with_guidance)
      options.add("guidance", &guidance,
                  "class-conditional models: the classifier-free guidance scale (1: none)");
  }

  /// The sampler as LatentDiffusion::sampler() takes it: diffusers' from_config options.
  pipeline::json options() const {
    pipeline::json o = pipeline::json::object();
    if (!sampler.empty()) o["_class_name"] = pipeline::sampler_class(sampler, "--sampler");
    if (eta != 0) o["eta"] = eta;
    if (karras) o["use_karras_sigmas"] = true;
    return o;
  }

  /// "dpm++2m (Karras sigmas)", for progress lines.
  std::string name() const {
    return (sampler.empty() ? "the model's sampler" : sampler) + (karras ? " (Karras sigmas)" : "");
  }

  /// Checks the flags before any work; the model's own num_train_timesteps is checked again once
  /// it is loaded.
  /// @param num_train_timesteps the compiled schedule's, the most steps any sampler can take
  /// @throws ldm::Error naming the flag, what it allows and the value given
  void validate(int num_train_timesteps) const {
    if (!sampler.empty()) pipeline::sampler_class(sampler, "--sampler");
    if (steps < 1 || steps > num_train_timesteps)
      fail_expected(
          "--sample-steps",
          "a count in [1, " + std::to_string(num_train_timesteps) + "] (the training timesteps)",
          steps);
    cli::require_in("--eta", eta, 0, 1);
    cli::require_in("--guidance", guidance, 0, 100);
    if (!sampler.empty() && sampler != "ddim" && eta != 0)
      fail("--eta ", cli::shown(eta), " is DDIM's; --sampler ", sampler,
           " does not take it (leave --eta at 0)");
    // With the sampler named, what it does not read is known before the model is loaded.
    if (!sampler.empty() && karras) {
      const std::string class_name = pipeline::sampler_class(sampler);
      const auto fields = pipeline::scheduler_fields(class_name);
      if (std::ranges::find(fields, "use_karras_sigmas") == fields.end())
        fail("--karras: --sampler ", sampler, " (", class_name,
             ") has no Karras sigmas; euler, heun, dpm++2m and unipc have");
    }
  }
};

}  // namespace ldm::train
