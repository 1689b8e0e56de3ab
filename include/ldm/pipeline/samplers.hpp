#pragma once
/// @file
/// Samplers by name: the sampler a model folder's scheduler config names (its `_class_name` and
/// fields, as diffusers' `from_pretrained` builds it), and the short names the command-line
/// programs take.

#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include "ldm/core/error.hpp"
#include "ldm/diffusion/ddim.hpp"
#include "ldm/diffusion/ddpm.hpp"
#include "ldm/diffusion/dpm_solver_multistep.hpp"
#include "ldm/diffusion/euler_ancestral_discrete.hpp"
#include "ldm/diffusion/euler_discrete.hpp"
#include "ldm/diffusion/heun_discrete.hpp"
#include "ldm/diffusion/unipc_multistep.hpp"
#include "ldm/pipeline/scheduler_config.hpp"

namespace ldm::pipeline {

/// Any sampler ldm implements; LatentDiffusion::sample() takes one as it takes each.
using AnySampler = std::variant<diffusion::DDIM, diffusion::DDPM, diffusion::EulerDiscrete,
                                diffusion::EulerAncestralDiscrete, diffusion::HeunDiscrete,
                                diffusion::DPMSolverMultistep, diffusion::UniPCMultistep>;

/// A sampler's short name (as a command line takes it) and its diffusers class.
struct SamplerName {
  std::string_view name;        ///< The short name: "ddim", "dpm++2m"...
  std::string_view class_name;  ///< diffusers' class: "DDIMScheduler"...
  std::string_view about;       ///< One line for a --help text.
};

/// Every sampler ldm implements, by short name.
inline constexpr SamplerName kSamplerNames[] = {
    {"ddim", "DDIMScheduler", "DDIM (deterministic at eta 0)"},
    {"ddpm", "DDPMScheduler", "DDPM's ancestral sampler (needs many steps)"},
    {"euler", "EulerDiscreteScheduler", "Euler's method on the probability-flow ODE"},
    {"euler_a", "EulerAncestralDiscreteScheduler", "Euler ancestral (adds noise at each step)"},
    {"heun", "HeunDiscreteScheduler", "Heun's second-order method (two evaluations a step)"},
    {"dpm++2m", "DPMSolverMultistepScheduler", "DPM-Solver++ multistep (good in 15-25 steps)"},
    {"unipc", "UniPCMultistepScheduler", "UniPC predictor-corrector (good in 10-20 steps)"},
};

/// The diffusers class of a short sampler name.
/// @throws ldm::Error naming `flag`, the names there are and the name found, for an unknown name
inline std::string sampler_class(std::string_view name, std::string_view flag = "sampler") {
  std::string names;
  for (const SamplerName& s : kSamplerNames) {
    if (s.name == name) return std::string(s.class_name);
    names += (names.empty() ? "" : ", ") + std::string(s.name);
  }
  fail_expected(flag, "one of " + names, "'" + std::string(name) + "'");
}

namespace detail {
// The sampler of type Sampler that `settings` describe, taking num_inference_steps steps.
template <class Sampler>
AnySampler make(const SchedulerSettings& settings, int num_inference_steps) {
  using Config = std::remove_cvref_t<decltype(std::declval<const Sampler&>().config())>;
  return Sampler(settings.make_schedule(), settings.sampler_config<Config>(), num_inference_steps);
}

// Every sampler class ldm implements, by diffusers' class name.
inline constexpr std::pair<std::string_view, AnySampler (*)(const SchedulerSettings&, int)>
    kSamplerClasses[] = {
        {"DDPMScheduler", make<diffusion::DDPM>},
        {"DDIMScheduler", make<diffusion::DDIM>},
        {"EulerDiscreteScheduler", make<diffusion::EulerDiscrete>},
        {"EulerAncestralDiscreteScheduler", make<diffusion::EulerAncestralDiscrete>},
        {"HeunDiscreteScheduler", make<diffusion::HeunDiscrete>},
        {"DPMSolverMultistepScheduler", make<diffusion::DPMSolverMultistep>},
        {"UniPCMultistepScheduler", make<diffusion::UniPCMultistep>},
};
}  // namespace detail

/// The sampler `settings.class_name` names, with its settings, taking num_inference_steps steps.
/// @throws ldm::Error when num_inference_steps is not in [1, num_train_timesteps] or the settings
///         are out of range
inline AnySampler make_sampler(const SchedulerSettings& settings, int num_inference_steps) {
  for (const auto& [class_name, make] : detail::kSamplerClasses)
    if (class_name == settings.class_name) return make(settings, num_inference_steps);
  fail_expected("scheduler class", "one of the schedulers ldm implements", settings.class_name);
}

/// The settings with `options` applied, as diffusers' `from_config(config, **options)`: a
/// `_class_name` option changes the class first (for_class()), then each other option replaces
/// that field. What the class does not read is refused, as in a scheduler_config.json.
/// @throws ldm::Error naming the option, for an unknown class, field or value
inline SchedulerSettings with_options(const SchedulerSettings& settings, const io::Json& options) {
  if (!options.is_null() && !options.is_object())
    fail_expected("sampler options", "a JSON object", options.type_name());
  SchedulerSettings s = settings;
  if (options.is_null()) return s;
  if (const io::Json* name = options.find("_class_name")) {
    if (!name->is_string()) fail_expected("sampler option _class_name", "a string", name->dump());
    s = for_class(s, name->get<std::string>());
  }
  io::Json config = scheduler_config(s, "");
  for (const auto& [key, value] : options.items())
    config[key] = value;
  return parse_scheduler_config(config, "sampler options");
}

}  // namespace ldm::pipeline
