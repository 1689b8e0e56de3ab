#pragma once
/// @file
/// The config.json files of diffusers' AutoencoderKL, UNet2DModel and UNet2DConditionModel, written
/// from a compiled
/// configuration, and checked against it when a checkpoint is loaded: a field that changes the
/// architecture must match (a field the file leaves out has diffusers' default), and a mismatch
/// names the field and both values. The schedulers' file is scheduler_config.hpp's.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/io/json.hpp"
#include "ldm/models/config.hpp"
#include "ldm/models/config_traits.hpp"
#include "ldm/version.hpp"

namespace ldm::pipeline {

using json = io::Json;  ///< The JSON type of configs.

/// The diffusers version whose config format these files follow.
inline constexpr const char* diffusers_version = "0.42.1";

/// How latents relate to the autoencoder's posterior means, as in diffusers' pipelines:
/// latents = (z - shift_factor) * scaling_factor, and back z = latents / scaling_factor +
/// shift_factor.
struct LatentScaling {
  /// Positive and finite.
  double scaling_factor = 0.18215;
  /// 0 where the config has none (null), as diffusers' pipelines then apply no shift.
  double shift_factor = 0;
};

/// block_out_channels as a JSON list.
/// @tparam Channels the configuration's block_out_channels, resolved (detail::level_values)
template <class Channels>
json channel_list() {
  json list = json::array();
  for (auto c : Channels::values)
    list.push_back(c);
  return list;
}

/// The fields every model config.json ldm writes has of its own: the class, the version of
/// diffusers whose format it follows, ldm's version, and the model's input and output.
/// @param class_name _class_name
/// @param channels in_channels and out_channels
/// @param resolution sample_size
inline json model_config_base(const std::string& class_name, index_t channels, index_t resolution) {
  return json{{"_class_name", class_name},      {"_diffusers_version", diffusers_version},
              {"_ldm_version", version.string}, {"sample_size", resolution},
              {"in_channels", channels},        {"out_channels", channels}};
}

/// The defaults of diffusers' AutoencoderKL constructor: what a config.json that leaves a field
/// out gets when diffusers loads it. `sample_size` is left out here: it shapes no layer, so a file
/// is checked against it only when it states one (the resolution the model was made for).
inline json autoencoder_defaults() {
  return json{{"in_channels", 3},
              {"out_channels", 3},
              {"down_block_types", {"DownEncoderBlock2D"}},
              {"up_block_types", {"UpDecoderBlock2D"}},
              {"block_out_channels", {64}},
              {"layers_per_block", 1},
              {"act_fn", "silu"},
              {"latent_channels", 4},
              {"norm_num_groups", 32},
              {"scaling_factor", 0.18215},
              {"shift_factor", nullptr},
              {"latents_mean", nullptr},
              {"latents_std", nullptr},
              {"force_upcast", true},
              {"use_quant_conv", true},
              {"use_post_quant_conv", true},
              {"mid_block_add_attention", true}};
}

/// The config.json diffusers writes for an AutoencoderKL of configuration Config.
/// @param image_channels in_channels and out_channels
/// @param resolution sample_size
/// @param scaling the latents' scaling_factor and shift_factor
template <AutoencoderKLConfig Config>
json autoencoder_config(index_t image_channels, index_t resolution, const LatentScaling& scaling) {
  using Cfg = detail::autoencoder_traits<Config>;
  json down = json::array(), up = json::array();
  for (int l = 0; l < Cfg::levels; ++l)
    down.push_back("DownEncoderBlock2D"), up.push_back("UpDecoderBlock2D");
  // Every field ldm does not vary is diffusers' default: the architecture ldm implements.
  json config = autoencoder_defaults();
  config.update(model_config_base("AutoencoderKL", image_channels, resolution));
  config.update(
      json{{"down_block_types", down},
           {"up_block_types", up},
           {"block_out_channels", channel_list<typename Cfg::block_out_channels>()},
           {"layers_per_block", Cfg::layers_per_block},
           {"latent_channels", Cfg::latent_channels},
           {"norm_num_groups", Cfg::norm_num_groups},
           {"scaling_factor", scaling.scaling_factor},
           {"shift_factor", scaling.shift_factor != 0 ? json(scaling.shift_factor) : json()}});
  return config;
}

/// The fields the config.json files of a UNet2DModel and a UNet2DConditionModel share: the
/// model_config_base(), the blocks and the normalisation.
/// @tparam Cfg the configuration's traits (detail::unet_traits, detail::unet_condition_traits)
/// @param class_name _class_name
/// @param attention what prefixes the names of the down and up blocks of a level with attention
///        ("Attn", "CrossAttn"); the up blocks mirror the down ones
/// @param channels in_channels and out_channels: the latents' channels
/// @param resolution sample_size: the latents' height and width
/// @param dropout the ResNet blocks' dropout
template <class Cfg>
json unet_shared_config(const std::string& class_name, const std::string& attention,
                        index_t channels, index_t resolution, double dropout) {
  json down = json::array(), up = json::array();
  for (int l = 0; l < Cfg::levels; ++l) {
    down.push_back((Cfg::attention_levels::contains(l) ? attention : "") + "DownBlock2D");
    const int mirrored = Cfg::levels - 1 - l;
    up.push_back((Cfg::attention_levels::contains(mirrored) ? attention : "") + "UpBlock2D");
  }
  json config = model_config_base(class_name, channels, resolution);
  config.update(json{{"flip_sin_to_cos", Cfg::flip_sin_to_cos},
                     {"freq_shift", Cfg::freq_shift},
                     {"down_block_types", down},
                     {"up_block_types", up},
                     {"block_out_channels", channel_list<typename Cfg::block_out_channels>()},
                     {"layers_per_block", Cfg::layers_per_block},
                     {"dropout", dropout},
                     {"norm_num_groups", Cfg::norm_num_groups},
                     {"norm_eps", Cfg::norm_eps},
                     {"num_class_embeds",
                      Cfg::num_class_embeds > 0 ? json(Cfg::num_class_embeds) : json(nullptr)}});
  return config;
}

/// The config.json diffusers writes for a UNet2DModel of configuration Config.
/// @param channels in_channels and out_channels: the latents' channels
/// @param resolution sample_size: the latents' height and width
/// @param dropout the ResNet blocks' dropout
template <UNetConfig Config>
json unet_config(index_t channels, index_t resolution, double dropout) {
  using Cfg = detail::unet_traits<Config>;
  json config = unet_shared_config<Cfg>("UNet2DModel", "Attn", channels, resolution, dropout);
  config.update(json{{"center_input_sample", false},
                     {"time_embedding_dim", nullptr},
                     {"time_embedding_type", "positional"},
                     {"mid_block_type", "UNetMidBlock2D"},
                     {"mid_block_scale_factor", 1},
                     {"downsample_padding", 1},
                     {"downsample_type", "conv"},
                     {"upsample_type", "conv"},
                     {"act_fn", "silu"},
                     {"attention_head_dim", Cfg::attention_head_dim},
                     {"attn_norm_num_groups", nullptr},
                     {"resnet_time_scale_shift", "default"},
                     {"add_attention", true},
                     {"class_embed_type", nullptr}});
  return config;
}

/// A per-level field as diffusers writes it: an int for one value, else a list.
/// @tparam PerLevel the field, resolved (detail::level_values)
template <class PerLevel>
json per_level_json() {
  if (PerLevel::values.size() == 1) return json(PerLevel::values[0]);
  json list = json::array();
  for (auto v : PerLevel::values)
    list.push_back(v);
  return list;
}

/// The defaults of diffusers' UNet2DConditionModel constructor (`sample_size` left out, as in
/// autoencoder_defaults()): what the older config.json files, which state fewer fields, get.
inline json unet_condition_defaults() {
  return json{
      {"in_channels", 4},
      {"out_channels", 4},
      {"center_input_sample", false},
      {"flip_sin_to_cos", true},
      {"freq_shift", 0},
      {"down_block_types",
       {"CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"}},
      {"mid_block_type", "UNetMidBlock2DCrossAttn"},
      {"up_block_types",
       {"UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"}},
      {"only_cross_attention", false},
      {"block_out_channels", {320, 640, 1280, 1280}},
      {"layers_per_block", 2},
      {"downsample_padding", 1},
      {"mid_block_scale_factor", 1},
      {"dropout", 0.0},
      {"act_fn", "silu"},
      {"norm_num_groups", 32},
      {"norm_eps", 1e-5},
      {"cross_attention_dim", 1280},
      {"transformer_layers_per_block", 1},
      {"reverse_transformer_layers_per_block", nullptr},
      {"encoder_hid_dim", nullptr},
      {"encoder_hid_dim_type", nullptr},
      {"attention_head_dim", 8},
      {"num_attention_heads", nullptr},
      {"dual_cross_attention", false},
      {"use_linear_projection", false},
      {"class_embed_type", nullptr},
      {"addition_embed_type", nullptr},
      {"addition_time_embed_dim", nullptr},
      {"num_class_embeds", nullptr},
      {"upcast_attention", false},
      {"resnet_time_scale_shift", "default"},
      {"resnet_skip_time_act", false},
      {"resnet_out_scale_factor", 1.0},
      {"time_embedding_type", "positional"},
      {"time_embedding_dim", nullptr},
      {"time_embedding_act_fn", nullptr},
      {"timestep_post_act", nullptr},
      {"time_cond_proj_dim", nullptr},
      {"conv_in_kernel", 3},
      {"conv_out_kernel", 3},
      {"projection_class_embeddings_input_dim", nullptr},
      {"attention_type", "default"},
      {"class_embeddings_concat", false},
      {"mid_block_only_cross_attention", nullptr},
      {"cross_attention_norm", nullptr},
      {"addition_embed_type_num_heads", 64}};
}

/// The config.json diffusers writes for a UNet2DConditionModel of configuration Config.
/// attention_head_dim keeps diffusers' meaning (heads per level; see UNetConditionConfig). A
/// per-level field is written as an int when Config gives one value, so a file that lists the
/// same value for every level does not match it: give the field the form the file uses.
/// @param channels in_channels and out_channels: the latents' channels
/// @param resolution sample_size: the latents' height and width
/// @param dropout the ResNet blocks' dropout
template <UNetConditionConfig Config>
json unet_condition_config(index_t channels, index_t resolution, double dropout) {
  using Cfg = detail::unet_condition_traits<Config>;
  // Every field ldm does not vary is diffusers' default: the architecture ldm implements.
  json config = unet_condition_defaults();
  config.update(
      unet_shared_config<Cfg>("UNet2DConditionModel", "CrossAttn", channels, resolution, dropout));
  config.update(json{{"cross_attention_dim", Cfg::cross_attention_dim},
                     {"transformer_layers_per_block",
                      per_level_json<typename Cfg::transformer_layers_per_block>()},
                     {"attention_head_dim", per_level_json<typename Cfg::attention_head_dim>()},
                     {"use_linear_projection", Cfg::use_linear_projection}});
  return config;
}

/// The defaults of diffusers' UNet2DModel constructor (`sample_size` left out, as above).
inline json unet_defaults() {
  return json{{"in_channels", 3},
              {"out_channels", 3},
              {"center_input_sample", false},
              {"time_embedding_type", "positional"},
              {"time_embedding_dim", nullptr},
              {"freq_shift", 0},
              {"flip_sin_to_cos", true},
              {"down_block_types",
               {"DownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"}},
              {"mid_block_type", "UNetMidBlock2D"},
              {"up_block_types", {"AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "UpBlock2D"}},
              {"block_out_channels", {224, 448, 672, 896}},
              {"layers_per_block", 2},
              {"mid_block_scale_factor", 1},
              {"downsample_padding", 1},
              {"downsample_type", "conv"},
              {"upsample_type", "conv"},
              {"dropout", 0.0},
              {"act_fn", "silu"},
              {"attention_head_dim", 8},
              {"norm_num_groups", 32},
              {"attn_norm_num_groups", nullptr},
              {"norm_eps", 1e-5},
              {"resnet_time_scale_shift", "default"},
              {"add_attention", true},
              {"class_embed_type", nullptr},
              {"num_class_embeds", nullptr},
              // Sizes the learned time embedding only, which time_embedding_type rules out.
              {"num_train_timesteps", nullptr}};
}

/// The UNet2DConditionModel fields that change no layer and no weight: `upcast_attention`
/// (whether a float16 model computes its attention in float32; ldm computes it in T).
inline const std::vector<std::string>& unet_condition_unchecked_fields() {
  static const std::vector<std::string> fields{"upcast_attention"};
  return fields;
}

/// The AutoencoderKL fields that change no layer and no weight, so a checkpoint is never refused
/// for them: the latent scaling (read by read_latent_scaling) and `force_upcast` (a precision
/// hint for float16 pipelines; ldm computes in float32).
inline const std::vector<std::string>& autoencoder_unchecked_fields() {
  static const std::vector<std::string> fields{"scaling_factor", "shift_factor", "latents_mean",
                                               "latents_std", "force_upcast"};
  return fields;
}

/// Checks a config.json against the compiled configuration: every field of `expected` must have
/// the same value in `found`, or, where `found` leaves it out, in `defaults` (what diffusers
/// would construct). Fields named in `ignored` (values learned or chosen at run time, and fields
/// that change no layer) and metadata fields (starting with '_', but for `_class_name`) are
/// skipped. A field that is in none of these is refused: it would belong to a model ldm does not
/// implement.
/// @param file the file's name, for messages
/// @param found the file's contents
/// @param expected the config the compiled model would write
/// @param defaults diffusers' constructor defaults for the fields a file may leave out
/// @param ignored fields not checked
/// @throws ldm::Error when `found` is not an object; naming the file, the field and both values at
///         the first mismatch; or naming the file and the field for a field ldm does not know
inline void require_matching_config(const std::string& file, const json& found,
                                    const json& expected, const json& defaults,
                                    const std::vector<std::string>& ignored = {}) {
  if (!found.is_object()) fail_expected(file, "a JSON object", found.type_name());
  for (const auto& [key, value] : expected.items()) {
    if (key.starts_with("_")) continue;
    if (std::find(ignored.begin(), ignored.end(), key) != ignored.end()) continue;
    const bool stated = found.contains(key);
    if (!stated && !defaults.contains(key)) continue;
    const json& actual = stated ? found.at(key) : defaults.at(key);
    const bool same = (value.is_number() && actual.is_number())
                          ? value.get<double>() == actual.get<double>()
                          : value == actual;
    if (same) continue;
    if (stated)
      fail(file, ": field '", key, "': the compiled configuration has ", value.dump(),
           ", the file has ", actual.dump());
    fail(file, ": field '", key, "' is missing, so diffusers' default ", actual.dump(),
         " applies, but the compiled configuration has ", value.dump());
  }
  for (const auto& [key, value] : found.items()) {
    if (key.starts_with("_") || expected.contains(key) || defaults.contains(key)) continue;
    if (std::find(ignored.begin(), ignored.end(), key) != ignored.end()) continue;
    fail(file, ": field '", key, "' (", value.dump().substr(0, 64), ") is not one of ",
         expected.value("_class_name", std::string("the model")),
         "'s that ldm knows; refused rather than ignored");
  }
  if (found.contains("_class_name") && found["_class_name"] != expected["_class_name"])
    fail(file, ": field '_class_name': expected ", expected["_class_name"].dump(), ", found ",
         found["_class_name"].dump());
}

/// The latent scaling an AutoencoderKL config.json states. A missing scaling_factor takes
/// AutoencoderKL's default, 0.18215, as diffusers does, and says so on stderr.
/// @param file names the file in messages.
/// @throws ldm::Error naming the file and the field when scaling_factor is not a positive finite
/// number, shift_factor is neither null nor a finite number, or latents_mean / latents_std are
/// set (per-channel latent statistics, which ldm does not apply).
inline LatentScaling read_latent_scaling(const json& config, const std::string& file) {
  LatentScaling scaling;
  auto where = [&](const char* key) { return file + ": field '" + key + "'"; };
  auto finite = [](const json& v) { return v.is_number() && std::isfinite(v.get<double>()); };
  if (!config.contains("scaling_factor")) {
    std::fprintf(stderr,
                 "ldm: %s has no 'scaling_factor'; using diffusers' AutoencoderKL default "
                 "0.18215\n",
                 file.c_str());
  } else {
    const json& value = config.at("scaling_factor");
    if (!finite(value) || !(value.get<double>() > 0))
      fail_expected(where("scaling_factor"), "a positive finite number", value.dump());
    scaling.scaling_factor = value.get<double>();
  }
  if (config.contains("shift_factor") && !config.at("shift_factor").is_null()) {
    const json& value = config.at("shift_factor");
    if (!finite(value))
      fail_expected(where("shift_factor"), "null or a finite number", value.dump());
    scaling.shift_factor = value.get<double>();
  }
  for (const char* key : {"latents_mean", "latents_std"})
    if (config.contains(key) && !config.at(key).is_null())
      fail_expected(where(key), "null (ldm applies no per-channel latent statistics)",
                    config.at(key).dump().substr(0, 64));
  return scaling;
}

}  // namespace ldm::pipeline
