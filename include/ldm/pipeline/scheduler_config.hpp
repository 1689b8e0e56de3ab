#pragma once
// scheduler/scheduler_config.json as diffusers' schedulers read it. `_class_name` names the
// scheduler (the sampler ldm uses by default); each class reads its own fields
// (scheduler_fields()), and every one of them either changes sampling (and training) exactly as it
// does in diffusers, or is refused with an ldm::Error naming the file, the field and its value.
// Nothing is ignored silently:
// - honoured by every class: num_train_timesteps, beta_schedule (linear, scaled_linear,
//   squaredcos_cap_v2), beta_start, beta_end, trained_betas, prediction_type (epsilon,
//   v_prediction), timestep_spacing (leading, trailing, linspace), steps_offset;
// - honoured by DDIM and DDPM: clip_sample, clip_sample_range; by DDIM: set_alpha_to_one, and
//   eta (ldm's: diffusers passes it to step(), so its own files never hold it);
// - honoured by Euler and Heun: use_karras_sigmas; by Euler: sigma_min, sigma_max,
//   final_sigmas_type (zero, sigma_min), and s_churn, s_tmin, s_tmax, s_noise (ldm's, as eta);
//   by Heun: clip_sample, clip_sample_range;
// - honoured by DPMSolverMultistep and UniPCMultistep: solver_order, solver_type,
//   lower_order_final, use_karras_sigmas, final_sigmas_type; by DPMSolverMultistep:
//   euler_at_final, lambda_min_clipped (-infinity is left out of the file, as JSON cannot hold
//   it, and read from diffusers' "-Infinity"); by UniPCMultistep: disable_corrector. solver_type is
//   read as diffusers reads it, which maps the other class's names to its default;
// - accepted only at the value ldm implements: thresholding (false), rescale_betas_zero_snr
//   (false), variance_type (fixed_small or null, the same to DDPM), interpolation_type (linear),
//   timestep_type (discrete), use_exponential_sigmas and use_beta_sigmas (false);
//   algorithm_type (dpmsolver++), predict_x0 (true), use_lu_lambdas, use_flow_sigmas and
//   use_dynamic_shifting (false), time_shift_type (exponential), solver_p and shift_terminal
//   (null), and UniPC's sigma_min and sigma_max (null);
// - read by diffusers only with thresholding on, so checked as numbers and otherwise unused, as
//   there: dynamic_thresholding_ratio, sample_max_value; and by flow sigmas only: flow_shift;
// - metadata: the other fields whose names start with '_' (_diffusers_version...).
// A field that the class does not read is refused, naming the class.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/diffusion/ddim.hpp"
#include "ldm/diffusion/ddpm.hpp"
#include "ldm/diffusion/dpm_solver_multistep.hpp"
#include "ldm/diffusion/euler_ancestral_discrete.hpp"
#include "ldm/diffusion/euler_discrete.hpp"
#include "ldm/diffusion/forward_process.hpp"
#include "ldm/diffusion/heun_discrete.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/diffusion/unipc_multistep.hpp"
#include "ldm/io/json.hpp"
#include "ldm/version.hpp"

namespace ldm::pipeline {

/// The scheduler classes ldm implements, by diffusers' names.
inline constexpr std::string_view kSchedulerClasses[] = {
    "DDIMScheduler",          "DDPMScheduler",
    "EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler",
    "HeunDiscreteScheduler",  "DPMSolverMultistepScheduler",
    "UniPCMultistepScheduler"};

namespace detail {

// Lists of field names, one after the other.
template <std::size_t... N>
constexpr auto joined(const std::array<std::string_view, N>&... lists) {
  std::array<std::string_view, (N + ...)> all{};
  std::size_t k = 0;
  for (const auto list : {std::span<const std::string_view>(lists)...})
    for (std::string_view field : list)
      all[k++] = field;
  return all;
}

// The fields every class reads: the noise schedule, what the model predicts, the spacing.
inline constexpr auto kEveryClassFields = std::to_array<std::string_view>(
    {"num_train_timesteps", "beta_start", "beta_end", "beta_schedule", "trained_betas",
     "prediction_type", "timestep_spacing", "steps_offset"});
// The fields both multistep solvers read besides.
inline constexpr auto kMultistepFields = std::to_array<std::string_view>(
    {"solver_order", "thresholding", "dynamic_thresholding_ratio", "sample_max_value",
     "solver_type", "lower_order_final", "use_karras_sigmas", "use_exponential_sigmas",
     "use_beta_sigmas", "use_flow_sigmas", "flow_shift", "final_sigmas_type",
     "rescale_betas_zero_snr", "use_dynamic_shifting", "time_shift_type"});

}  // namespace detail

/// The config fields (metadata aside) that diffusers' scheduler `class_name` reads and ldm
/// honours or checks; empty for a class ldm does not implement.
inline std::span<const std::string_view> scheduler_fields(std::string_view class_name) {
  using detail::joined, detail::kEveryClassFields, detail::kMultistepFields;
  static constexpr auto ddim = joined(
      kEveryClassFields,
      std::to_array<std::string_view>({"clip_sample", "clip_sample_range", "set_alpha_to_one",
                                       "thresholding", "dynamic_thresholding_ratio",
                                       "sample_max_value", "rescale_betas_zero_snr", "eta"}));
  static constexpr auto ddpm =
      joined(kEveryClassFields,
             std::to_array<std::string_view>({"clip_sample", "clip_sample_range", "variance_type",
                                              "thresholding", "dynamic_thresholding_ratio",
                                              "sample_max_value", "rescale_betas_zero_snr"}));
  static constexpr auto euler = joined(
      kEveryClassFields,
      std::to_array<std::string_view>(
          {"use_karras_sigmas", "sigma_min", "sigma_max", "final_sigmas_type", "interpolation_type",
           "timestep_type", "use_exponential_sigmas", "use_beta_sigmas", "rescale_betas_zero_snr",
           "s_churn", "s_tmin", "s_tmax", "s_noise"}));
  static constexpr auto euler_ancestral =
      joined(kEveryClassFields, std::to_array<std::string_view>({"rescale_betas_zero_snr"}));
  static constexpr auto heun = joined(
      kEveryClassFields,
      std::to_array<std::string_view>({"use_karras_sigmas", "clip_sample", "clip_sample_range",
                                       "use_exponential_sigmas", "use_beta_sigmas"}));
  static constexpr auto dpm_solver_multistep =
      joined(kEveryClassFields, kMultistepFields,
             std::to_array<std::string_view>({"algorithm_type", "euler_at_final", "use_lu_lambdas",
                                              "lambda_min_clipped", "variance_type"}));
  static constexpr auto unipc_multistep =
      joined(kEveryClassFields, kMultistepFields,
             std::to_array<std::string_view>({"predict_x0", "disable_corrector", "solver_p",
                                              "sigma_min", "sigma_max", "shift_terminal"}));
  if (class_name == "DDIMScheduler") return ddim;
  if (class_name == "DDPMScheduler") return ddpm;
  if (class_name == "EulerDiscreteScheduler") return euler;
  if (class_name == "EulerAncestralDiscreteScheduler") return euler_ancestral;
  if (class_name == "HeunDiscreteScheduler") return heun;
  if (class_name == "DPMSolverMultistepScheduler") return dpm_solver_multistep;
  if (class_name == "UniPCMultistepScheduler") return unipc_multistep;
  return {};
}

/// The noise schedule and the sampler settings of a model folder's scheduler, under diffusers'
/// field names; the defaults are DDIMScheduler's (scheduler_defaults() gives another class's).
/// Each class reads only its own fields (scheduler_fields()); the others keep their defaults.
struct SchedulerSettings {
  /// The class diffusers builds from the file (one of kSchedulerClasses), and the sampler ldm
  /// uses by default (pipeline/samplers.hpp).
  std::string class_name = "DDIMScheduler";
  /// beta_schedule, num_train_timesteps, beta_start, beta_end.
  diffusion::ScheduleConfig schedule{};
  /// diffusers' `trained_betas`: when not empty, the betas themselves (num_train_timesteps of
  /// them), in place of schedule's beta_schedule, beta_start and beta_end.
  std::vector<double> trained_betas = {};
  /// What the UNet predicts; training and sampling both follow it.
  diffusion::PredictionType prediction_type = diffusion::PredictionType::epsilon;
  /// Whether the samplers clamp their estimate of x0 to [-clip_sample_range, clip_sample_range].
  bool clip_sample = true;
  /// The bound of clip_sample.
  double clip_sample_range = 1.0;
  /// DDIM's abar before t = 0: 1, or alphas_cumprod[0] (DDPM always uses 1).
  bool set_alpha_to_one = true;
  /// How the inference timesteps are spread over the training timesteps.
  diffusion::TimestepSpacing timestep_spacing = diffusion::TimestepSpacing::leading;
  /// Added to the `leading` timesteps (diffusers ignores it for the other spacings).
  int steps_offset = 0;
  /// DDIM's eta in [0, 1]: the share of DDPM's noise each step adds.
  double eta = 0;
  /// Euler's and Heun's: whether Karras et al.'s sigmas replace the spaced ones.
  bool use_karras_sigmas = false;
  /// @{
  /// Euler's bounds of the Karras sigmas (positive); none: the spaced sigmas' ends.
  std::optional<double> sigma_min = {}, sigma_max = {};
  /// @}
  /// Euler's final sigma.
  diffusion::FinalSigmasType final_sigmas_type = diffusion::FinalSigmasType::zero;
  /// @{
  /// Euler's churn (diffusion::EulerDiscreteConfig); s_churn 0 adds none.
  double s_churn = 0, s_tmin = 0, s_tmax = INFINITY, s_noise = 1;
  /// @}
  /// The multistep solvers' order: 1, 2 or 3.
  int solver_order = 2;
  /// The multistep solvers' variant: "midpoint" or "heun" (DPM-Solver++), "bh1" or "bh2" (UniPC).
  std::string solver_type = "midpoint";
  /// Whether the multistep solvers lower their order in the last steps.
  bool lower_order_final = true;
  /// Whether DPM-Solver++ takes a first-order last step whatever the step count.
  bool euler_at_final = false;
  /// DPM-Solver++'s bound below which the spacings skip a timestep's lambda.
  double lambda_min_clipped = -INFINITY;
  /// UniPC's steps whose sample is not corrected.
  std::vector<int> disable_corrector = {};

  /// The betas these settings name.
  /// @throws ldm::Error when they are out of range (see diffusion::Schedule).
  diffusion::Schedule make_schedule() const { return diffusion::Schedule(schedule, trained_betas); }
  /// The settings of a sampler, as diffusers' classes read a config: each field of Config (the
  /// sampler's settings type, diffusion::DDIMConfig...) takes the setting of its name.
  /// @throws ldm::Error when Config has a solver_type and solver_type is not one of its names
  ///         ("midpoint" or "heun" for DPM-Solver++, "bh1" or "bh2" for UniPC)
  template <class Config>
  Config sampler_config() const {
    Config c{};
    c.prediction_type = prediction_type;
    c.timestep_spacing = timestep_spacing;
    c.steps_offset = steps_offset;
    if constexpr (requires { c.clip_sample; }) {
      c.clip_sample = clip_sample;
      c.clip_sample_range = clip_sample_range;
    }
    if constexpr (requires { c.set_alpha_to_one; }) c.set_alpha_to_one = set_alpha_to_one;
    if constexpr (requires { c.eta; }) c.eta = eta;
    if constexpr (requires { c.use_karras_sigmas; }) c.use_karras_sigmas = use_karras_sigmas;
    if constexpr (requires { c.sigma_min; }) {
      c.sigma_min = sigma_min;
      c.sigma_max = sigma_max;
    }
    if constexpr (requires { c.final_sigmas_type; }) c.final_sigmas_type = final_sigmas_type;
    if constexpr (requires { c.s_churn; }) {
      c.s_churn = s_churn;
      c.s_tmin = s_tmin;
      c.s_tmax = s_tmax;
      c.s_noise = s_noise;
    }
    if constexpr (requires { c.solver_order; }) c.solver_order = solver_order;
    // Each multistep class names its own solver types.
    if constexpr (requires { c.solver_type = diffusion::DPMSolverType{}; })
      c.solver_type = diffusion::parse_name<diffusion::DPMSolverType>(solver_type);
    if constexpr (requires { c.solver_type = diffusion::UniPCSolverType{}; })
      c.solver_type = diffusion::parse_name<diffusion::UniPCSolverType>(solver_type);
    if constexpr (requires { c.lower_order_final; }) c.lower_order_final = lower_order_final;
    if constexpr (requires { c.euler_at_final; }) c.euler_at_final = euler_at_final;
    if constexpr (requires { c.lambda_min_clipped; }) c.lambda_min_clipped = lambda_min_clipped;
    if constexpr (requires { c.disable_corrector; }) c.disable_corrector = disable_corrector;
    return c;
  }
  /// The DDIM sampler's settings.
  diffusion::DDIMConfig ddim() const { return sampler_config<diffusion::DDIMConfig>(); }
  /// The DDPM sampler's settings.
  diffusion::DDPMConfig ddpm() const { return sampler_config<diffusion::DDPMConfig>(); }
  /// The Euler sampler's settings.
  diffusion::EulerDiscreteConfig euler() const {
    return sampler_config<diffusion::EulerDiscreteConfig>();
  }
  /// The Euler ancestral sampler's settings.
  diffusion::EulerAncestralDiscreteConfig euler_ancestral() const {
    return sampler_config<diffusion::EulerAncestralDiscreteConfig>();
  }
  /// The Heun sampler's settings.
  diffusion::HeunDiscreteConfig heun() const {
    return sampler_config<diffusion::HeunDiscreteConfig>();
  }
  /// The DPM-Solver++ sampler's settings.
  /// @throws ldm::Error when solver_type is not "midpoint" or "heun"
  diffusion::DPMSolverMultistepConfig dpm_solver_multistep() const {
    return sampler_config<diffusion::DPMSolverMultistepConfig>();
  }
  /// The UniPC sampler's settings.
  /// @throws ldm::Error when solver_type is not "bh1" or "bh2"
  diffusion::UniPCMultistepConfig unipc_multistep() const {
    return sampler_config<diffusion::UniPCMultistepConfig>();
  }
};

/// The settings of a scheduler_config.json of class `class_name` that states no field: diffusers'
/// defaults for that class.
inline SchedulerSettings scheduler_defaults(const std::string& class_name) {
  SchedulerSettings s;
  s.class_name = class_name;
  if (class_name == "EulerDiscreteScheduler" || class_name == "EulerAncestralDiscreteScheduler" ||
      class_name == "HeunDiscreteScheduler" || class_name == "DPMSolverMultistepScheduler" ||
      class_name == "UniPCMultistepScheduler")
    s.timestep_spacing = diffusion::TimestepSpacing::linspace;
  if (class_name == "UniPCMultistepScheduler") s.solver_type = "bh2";
  if (class_name == "HeunDiscreteScheduler") {
    s.schedule.beta_start = 0.00085;
    s.schedule.beta_end = 0.012;
    s.clip_sample = false;
  }
  return s;
}

namespace detail {

// One field of a scheduler config, read with the type diffusers gives it; `where` names the file.
class SchedulerField {
 public:
  SchedulerField(const std::string& file, const std::string& key, const io::Json& value)
      : file_(file), where_(file + ": field '" + key + "'"), value_(value) {}

  [[noreturn]] void refuse(std::string_view expected) const {
    fail_expected(where_, expected, shown());
  }
  bool boolean() const {
    if (!value_.is_boolean()) refuse("true or false");
    return value_.get<bool>();
  }
  double number() const {
    if (!value_.is_number() || !std::isfinite(value_.get<double>())) refuse("a finite number");
    return value_.get<double>();
  }
  int whole(std::int64_t low, std::int64_t high) const {
    const std::string range =
        "a whole number in [" + std::to_string(low) + ", " + std::to_string(high) + "]";
    if (!value_.is_number_integer()) refuse(range);
    const auto v = value_.get<std::int64_t>();
    if (v < low || v > high) refuse(range);
    return int(v);
  }
  std::string text() const {
    if (!value_.is_string()) refuse("a string");
    return value_.get<std::string>();
  }
  // Parses a name with the enum's parser, whose message then gets the file in front.
  template <class Parse>
  auto named(const Parse& parse) const {
    try {
      return parse(text());
    } catch (const Error& e) {
      fail(file_, ": ", e.what());
    }
  }
  // The value as the message shows it, cut short so that a hostile file cannot flood it.
  std::string shown() const {
    std::string text = value_.dump();
    constexpr std::size_t kShown = 64;
    if (text.size() > kShown) text = text.substr(0, kShown) + "...";
    return text;
  }

 private:
  std::string file_, where_;
  const io::Json& value_;
};

}  // namespace detail

/// The settings a scheduler_config.json states; fields it leaves out keep diffusers' defaults.
/// @param file names the file in error messages.
/// @throws ldm::Error naming the file, the field and its value for a field that has the wrong
/// type or value, that asks for something ldm does not implement, or that ldm does not know.
inline SchedulerSettings parse_scheduler_config(const io::Json& config, const std::string& file) {
  if (!config.is_object()) fail_expected(file, "a JSON object", config.type_name());
  // More timesteps than this would only be a typo, and each one costs memory.
  constexpr std::int64_t kMaxTimesteps = 1'000'000;
  SchedulerSettings s;
  if (const io::Json* name = config.find("_class_name")) {
    const detail::SchedulerField field(file, "_class_name", *name);
    if (scheduler_fields(field.text()).empty()) {
      std::string classes;
      for (std::string_view c : kSchedulerClasses)
        classes += (classes.empty() ? "" : ", ") + std::string(c);
      field.refuse("one of the schedulers ldm implements: " + classes);
    }
    s = scheduler_defaults(field.text());
  }
  const auto fields = scheduler_fields(s.class_name);
  for (const auto& [key, value] : config.items()) {
    const detail::SchedulerField field(file, key, value);
    if (key.starts_with("_")) continue;  // metadata: _class_name, _diffusers_version...
    if (std::ranges::find(fields, key) == fields.end())
      field.refuse("no such field: " + s.class_name + " does not read it");
    if (key == "num_train_timesteps") {
      s.schedule.num_train_timesteps = field.whole(1, kMaxTimesteps);
    } else if (key == "beta_start") {
      s.schedule.beta_start = field.number();
    } else if (key == "beta_end") {
      s.schedule.beta_end = field.number();
    } else if (key == "beta_schedule") {
      s.schedule.beta_schedule = field.named(diffusion::parse_name<diffusion::BetaSchedule>);
    } else if (key == "trained_betas") {
      if (value.is_null()) continue;
      if (!value.is_array() || value.empty()) field.refuse("null or a list of betas");
      for (const auto& beta : value) {
        if (!beta.is_number()) field.refuse("null or a list of numbers");
        s.trained_betas.push_back(beta.get<double>());
      }
    } else if (key == "prediction_type") {
      s.prediction_type = field.named(diffusion::parse_name<diffusion::PredictionType>);
    } else if (key == "clip_sample") {
      s.clip_sample = field.boolean();
    } else if (key == "clip_sample_range") {
      s.clip_sample_range = field.number();
      if (!(s.clip_sample_range > 0)) field.refuse("a positive number");
    } else if (key == "set_alpha_to_one") {
      s.set_alpha_to_one = field.boolean();
    } else if (key == "timestep_spacing") {
      s.timestep_spacing = field.named(diffusion::parse_name<diffusion::TimestepSpacing>);
    } else if (key == "steps_offset") {
      s.steps_offset = field.whole(0, kMaxTimesteps);
    } else if (key == "thresholding") {
      if (field.boolean()) field.refuse("false (ldm's samplers have no dynamic thresholding)");
    } else if (key == "rescale_betas_zero_snr") {
      if (field.boolean()) field.refuse("false (ldm does not rescale betas to zero terminal SNR)");
    } else if (key == "variance_type") {
      // DDPM reads null as fixed_small and DPM-Solver reads both as "no learned variance", so
      // from_config can carry the field from one class to the other.
      if (!value.is_null() && !(value.is_string() && value.get<std::string>() == "fixed_small"))
        field.refuse("\"fixed_small\" or null (ldm's models predict no variance)");
    } else if (key == "dynamic_thresholding_ratio" || key == "sample_max_value") {
      field.number();
    } else if (key == "eta") {
      s.eta = field.number();
      if (!(s.eta >= 0 && s.eta <= 1)) field.refuse("a value in [0, 1]");
    } else if (key == "use_karras_sigmas") {
      s.use_karras_sigmas = !value.is_null() && field.boolean();  // diffusers reads null as false
    } else if ((key == "sigma_min" || key == "sigma_max") &&
               s.class_name == "UniPCMultistepScheduler") {
      if (!value.is_null()) field.refuse("null (ldm's UniPC takes the schedule's Karras bounds)");
    } else if (key == "sigma_min" || key == "sigma_max") {
      if (value.is_null()) continue;
      const double sigma = field.number();
      if (!(sigma > 0)) field.refuse("null or a positive number");
      (key == "sigma_min" ? s.sigma_min : s.sigma_max) = sigma;
    } else if (key == "final_sigmas_type") {
      s.final_sigmas_type = field.named(diffusion::parse_name<diffusion::FinalSigmasType>);
    } else if (key == "interpolation_type") {
      if (field.text() != "linear")
        field.refuse("\"linear\" (the only sigma interpolation ldm implements)");
    } else if (key == "timestep_type") {
      if (field.text() != "discrete")
        field.refuse("\"discrete\" (the only timestep_type ldm implements)");
    } else if (key == "s_churn") {
      s.s_churn = field.number();
      if (!(s.s_churn >= 0)) field.refuse("a number >= 0");
    } else if (key == "s_tmin" || key == "s_tmax" || key == "s_noise") {
      (key == "s_tmin" ? s.s_tmin : key == "s_tmax" ? s.s_tmax : s.s_noise) = field.number();
    } else if (key == "use_exponential_sigmas" || key == "use_beta_sigmas") {
      if (!value.is_null() && field.boolean())
        field.refuse("false (ldm implements the spaced and the Karras sigmas)");
    } else if (key == "solver_order") {
      s.solver_order = field.whole(1, 3);
    } else if (key == "solver_type") {
      // diffusers maps the other multistep class's names to its own default.
      const std::string type = field.text();
      const bool unipc = s.class_name == "UniPCMultistepScheduler";
      if (type == "midpoint" || type == "heun" || type == "bh1" || type == "bh2" ||
          type == "logrho")
        s.solver_type =
            unipc ? (type == "bh1" ? type : "bh2") : (type == "heun" ? type : "midpoint");
      else
        field.refuse(unipc ? "bh1 or bh2" : "midpoint or heun");
    } else if (key == "lower_order_final") {
      s.lower_order_final = field.boolean();
    } else if (key == "euler_at_final") {
      s.euler_at_final = field.boolean();
    } else if (key == "lambda_min_clipped") {
      // diffusers' default, as read_json() reads Python's bare -Infinity.
      s.lambda_min_clipped = value == "-Infinity" ? -INFINITY : field.number();
    } else if (key == "disable_corrector") {
      if (!value.is_array()) field.refuse("a list of step indices");
      for (const auto& index : value) {
        if (!index.is_number_integer() || index.get<std::int64_t>() < 0 ||
            index.get<std::int64_t>() > kMaxTimesteps)
          field.refuse("a list of step indices");
        s.disable_corrector.push_back(index.get<int>());
      }
    } else if (key == "algorithm_type") {
      if (field.text() != "dpmsolver++")
        field.refuse("\"dpmsolver++\" (the only DPM-Solver algorithm ldm implements)");
    } else if (key == "predict_x0") {
      if (!field.boolean()) field.refuse("true (ldm's UniPC predicts x0)");
    } else if (key == "use_lu_lambdas" || key == "use_flow_sigmas" ||
               key == "use_dynamic_shifting") {
      if (field.boolean()) field.refuse("false (ldm implements the spacings and Karras sigmas)");
    } else if (key == "time_shift_type") {
      if (field.text() != "exponential") field.refuse("\"exponential\"");
    } else if (key == "flow_shift") {
      field.number();
    } else if (key == "solver_p" || key == "shift_terminal") {
      if (!value.is_null()) field.refuse("null (ldm does not implement it)");
    }
  }
  try {
    s.make_schedule();
  } catch (const Error& e) {
    fail(file, ": ", e.what());
  }
  return s;
}

/// The scheduler_config.json diffusers would write for these settings: every field the class
/// reads, stated (DDIM's eta and Euler's churn only when not the default, as diffusers' files
/// never hold them).
/// @param diffusers_version the version whose format the file follows.
inline io::Json scheduler_config(const SchedulerSettings& s, const std::string& diffusers_version) {
  io::Json every_field{
      {"num_train_timesteps", s.schedule.num_train_timesteps},
      {"beta_start", s.schedule.beta_start},
      {"beta_end", s.schedule.beta_end},
      {"beta_schedule", std::string(diffusion::to_string(s.schedule.beta_schedule))},
      {"trained_betas", s.trained_betas.empty() ? io::Json(nullptr) : io::Json(s.trained_betas)},
      {"clip_sample", s.clip_sample},
      {"clip_sample_range", s.clip_sample_range},
      {"set_alpha_to_one", s.set_alpha_to_one},
      {"prediction_type", std::string(diffusion::to_string(s.prediction_type))},
      {"timestep_spacing", std::string(diffusion::to_string(s.timestep_spacing))},
      {"steps_offset", s.steps_offset},
      {"thresholding", false},
      {"rescale_betas_zero_snr", false},
      {"variance_type", "fixed_small"},
      {"use_karras_sigmas", s.use_karras_sigmas},
      {"sigma_min", s.sigma_min ? io::Json(*s.sigma_min) : io::Json(nullptr)},
      {"sigma_max", s.sigma_max ? io::Json(*s.sigma_max) : io::Json(nullptr)},
      {"final_sigmas_type", std::string(diffusion::to_string(s.final_sigmas_type))},
      {"interpolation_type", "linear"},
      {"timestep_type", "discrete"},
      {"use_exponential_sigmas", false},
      {"use_beta_sigmas", false},
      {"solver_order", s.solver_order},
      {"solver_type", s.solver_type},
      {"lower_order_final", s.lower_order_final},
      {"euler_at_final", s.euler_at_final},
      {"disable_corrector", s.disable_corrector},
      {"algorithm_type", "dpmsolver++"},
      {"predict_x0", true},
      {"use_lu_lambdas", false},
      {"use_flow_sigmas", false},
      {"flow_shift", 1.0},
      {"use_dynamic_shifting", false},
      {"time_shift_type", "exponential"},
      {"solver_p", nullptr},
      {"shift_terminal", nullptr}};
  if (s.class_name == "DPMSolverMultistepScheduler") every_field["variance_type"] = nullptr;
  if (std::isfinite(s.lambda_min_clipped)) every_field["lambda_min_clipped"] = s.lambda_min_clipped;
  io::Json config{{"_class_name", s.class_name},
                  {"_diffusers_version", diffusers_version},
                  {"_ldm_version", version.string}};
  for (std::string_view key : scheduler_fields(s.class_name))
    if (const io::Json* value = every_field.find(key)) config[std::string(key)] = *value;
  if (s.eta != 0) config["eta"] = s.eta;
  // Euler's churn, like eta: step() arguments in diffusers, stated only when not the default.
  if (s.s_churn != 0) config["s_churn"] = s.s_churn;
  if (s.s_tmin != 0) config["s_tmin"] = s.s_tmin;
  if (std::isfinite(s.s_tmax)) config["s_tmax"] = s.s_tmax;
  if (s.s_noise != 1) config["s_noise"] = s.s_noise;
  return config;
}

/// These settings as scheduler `class_name` reads them: the fields that class also reads (the
/// schedule, the prediction type, the spacing...) carry over and the others take its defaults,
/// as with diffusers' `from_config` of another class.
/// @throws ldm::Error when ldm does not implement the class
inline SchedulerSettings for_class(const SchedulerSettings& s, const std::string& class_name) {
  io::Json config = scheduler_config(s, "");
  io::Json converted{{"_class_name", class_name}};
  for (std::string_view key : scheduler_fields(class_name))
    if (const io::Json* value = config.find(key)) converted[std::string(key)] = *value;
  return parse_scheduler_config(converted, "scheduler class " + class_name);
}

}  // namespace ldm::pipeline
