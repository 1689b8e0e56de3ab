#pragma once
// The `fashion` commands' flags, checked as a whole before any data, model or output is touched:
// each message names the flag, the value given and what is allowed, so that a typo costs nothing
// instead of a training run.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>

#include "fashion/trainer.hpp"
#include "support/writable.hpp"

namespace fashion {

// The most images `fashion sample` draws in one grid, and `fashion eval` in one measurement.
constexpr std::int64_t max_sample_count = 10'000;
constexpr std::int64_t max_eval_samples = 100'000;

namespace detail {
inline std::string shown(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}
inline void require_in(const char* flag, double value, double low, double high) {
  if (!(std::isfinite(value) && value >= low && value <= high))
    ldm::fail_expected(flag, "a number in [" + shown(low) + ", " + shown(high) + "]", shown(value));
}
inline void require_positive(const char* flag, double value) {
  if (!(std::isfinite(value) && value > 0))
    ldm::fail_expected(flag, "a positive finite number", shown(value));
}
inline void require_at_least(const char* flag, std::int64_t value, std::int64_t low) {
  if (value < low) ldm::fail_expected(flag, "at least " + std::to_string(low), value);
}
inline void require_one_of(const char* flag, const std::string& value, const char* first,
                           const char* second) {
  if (value != first && value != second)
    ldm::fail_expected(flag, std::string(first) + " or " + second, "'" + value + "'");
}
}  // namespace detail

inline void validate(const SamplingFlags& sampling) {
  if (!sampling.sampler.empty()) ldm::pipeline::sampler_class(sampling.sampler, "--sampler");
  // The model's own num_train_timesteps is checked again once it is loaded.
  constexpr int T = Config::schedule::config.num_train_timesteps;
  if (sampling.steps < 1 || sampling.steps > T)
    ldm::fail_expected("--sample-steps",
                       "a count in [1, " + std::to_string(T) + "] (the training timesteps)",
                       sampling.steps);
  detail::require_in("--eta", sampling.eta, 0, 1);
  if (!sampling.sampler.empty() && sampling.sampler != "ddim" && sampling.eta != 0)
    ldm::fail("--eta ", detail::shown(sampling.eta), " is DDIM's; --sampler ", sampling.sampler,
              " does not take it (leave --eta at 0)");
  // With the sampler named, what it does not read is known before the model is loaded.
  if (!sampling.sampler.empty() && sampling.karras) {
    const std::string class_name = ldm::pipeline::sampler_class(sampling.sampler);
    const auto fields = ldm::pipeline::scheduler_fields(class_name);
    if (std::ranges::find(fields, "use_karras_sigmas") == fields.end())
      ldm::fail("--karras: --sampler ", sampling.sampler, " (", class_name,
                ") has no Karras sigmas; euler, heun, dpm++2m and unipc have");
  }
}

inline void validate_device(const std::string& device) {
  detail::require_one_of("--device", device, "host", "cuda");
}

// Also creates --out and checks that it can be written, before the data is loaded.
inline void validate(const TrainFlags& flags) {
  validate(flags.sampling);
  validate_device(flags.device);
  if (flags.batch != 16 && flags.batch != 32 && flags.batch != 64)
    ldm::fail_expected("--batch", "16, 32 or 64 (batch sizes are compiled in)", flags.batch);
  detail::require_at_least("--seed", flags.seed, 0);
  detail::require_at_least("--autoencoder-steps", flags.autoencoder_steps, 0);
  detail::require_at_least("--diffusion-steps", flags.diffusion_steps, 0);
  detail::require_at_least("--checkpoint-every", flags.checkpoint_every, 1);
  detail::require_at_least("--images-every", flags.images_every, 1);
  detail::require_positive("--autoencoder-lr", flags.autoencoder_lr);
  detail::require_positive("--unet-lr", flags.unet_lr);
  if (!(std::isfinite(flags.time_budget) && flags.time_budget >= 0))
    ldm::fail_expected("--time-budget", "seconds >= 0 (0 for no limit)",
                       detail::shown(flags.time_budget));
  detail::require_in("--autoencoder-share", flags.autoencoder_share, 0, 1);
  detail::require_one_of("--on-unreadable", flags.on_unreadable, "skip", "reject");
  if (flags.out.empty()) ldm::fail_expected("--out", "a folder", "an empty path");
  examples::require_writable_folder(flags.out, "--out");
}

// --out names a PNG file whose folder can be written (created if need be).
inline void validate_png_out(const std::string& out) {
  if (out.empty()) ldm::fail_expected("--out", "a PNG file name", "an empty path");
  if (std::filesystem::is_directory(out))
    ldm::fail_expected("--out " + out, "a PNG file name", "a folder");
  examples::require_writable_folder(std::filesystem::path(out).parent_path(), "--out");
}

// --strength as image-to-image reads it: in [0, 1], and enough of --sample-steps for one step
// (the last int(steps * strength) steps run, as in diffusers).
inline void validate_strength(double strength, int steps) {
  detail::require_in("--strength", strength, 0, 1);
  if (int(steps * strength) < 1)
    ldm::fail_expected(
        "--strength",
        "at least 1 / --sample-steps (" + std::to_string(steps) + " steps), so that one step runs",
        detail::shown(strength));
}

inline void validate(const SampleRequest& request, const std::string& device) {
  validate(request.sampling);
  validate_device(device);
  if (request.count < 1 || request.count > max_sample_count)
    ldm::fail_expected("--count",
                       "a number of images in [1, " + std::to_string(max_sample_count) + "]",
                       request.count);
  detail::require_at_least("--seed", request.seed, 0);
  validate_png_out(request.out);
}

}  // namespace fashion
