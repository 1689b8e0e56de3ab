#pragma once
// The `fashion` commands' flags, checked as a whole before any data, model or output is touched:
// each message names the flag, the value given and what is allowed, so that a typo costs nothing
// instead of a training run.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>

#include "fashion/common.hpp"
#include "ldm/cli/writable.hpp"

namespace fashion {

// The most images `fashion sample` draws in one grid, and `fashion eval` in one measurement.
constexpr std::int64_t max_sample_count = 10'000;
constexpr std::int64_t max_eval_samples = 100'000;

inline void validate(const SamplingFlags& sampling) {
  sampling.validate(Config::schedule::config.num_train_timesteps);
}

inline void validate_device(const std::string& device) {
  ldm::cli::require_one_of("--device", device, "host", "cuda");
}

// --out names a PNG file whose folder can be written (created if need be).
inline void validate_png_out(const std::string& out) {
  if (out.empty()) ldm::fail_expected("--out", "a PNG file name", "an empty path");
  if (std::filesystem::is_directory(out))
    ldm::fail_expected("--out " + out, "a PNG file name", "a folder");
  ldm::cli::require_writable_folder(std::filesystem::path(out).parent_path(), "--out");
}

// --strength as image-to-image reads it: in [0, 1], and enough of --sample-steps for one step
// (the last int(steps * strength) steps run, as in diffusers).
inline void validate_strength(double strength, int steps) {
  ldm::cli::require_in("--strength", strength, 0, 1);
  if (int(steps * strength) < 1)
    ldm::fail_expected(
        "--strength",
        "at least 1 / --sample-steps (" + std::to_string(steps) + " steps), so that one step runs",
        ldm::cli::shown(strength));
}

inline void validate(const SampleRequest& request, const std::string& device) {
  validate(request.sampling);
  validate_device(device);
  if (request.count < 0 || request.count > max_sample_count)
    ldm::fail_expected("--count",
                       "a number of images in [1, " + std::to_string(max_sample_count) +
                           "], or 0 for the default grid",
                       request.count);
  ldm::cli::require_at_least("--seed", request.seed, 0);
  validate_png_out(request.out);
}

}  // namespace fashion
