#pragma once
/// @file
/// The config.json files of diffusers' AutoencoderKL, UNet2DModel and schedulers, written from a
/// compiled configuration, and checked against it when a checkpoint is loaded: a field that
/// changes the architecture must match, and a mismatch names the field and both values.

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ldm/core/error.hpp"
#include "ldm/diffusion/ddim.hpp"
#include "ldm/diffusion/schedule.hpp"
#include "ldm/models/config.hpp"
#include "ldm/version.hpp"

namespace ldm::pipeline {

using json = nlohmann::json;  ///< nlohmann::json, the JSON type of configs.

/// The diffusers version whose config format these files follow.
inline constexpr const char* diffusers_version = "0.42.1";

/// block_out_channels as a JSON list.
template <class Channels>
json channel_list() {
  json list = json::array();
  for (auto c : Channels::values)
    list.push_back(c);
  return list;
}

/// The config.json diffusers writes for an AutoencoderKL of configuration Cfg (an
/// AutoencoderKLConfig).
/// @param image_channels in_channels and out_channels
/// @param resolution sample_size
/// @param scaling_factor the latents' scaling factor
template <class Cfg>
json autoencoder_config(index_t image_channels, index_t resolution, double scaling_factor) {
  json down = json::array(), up = json::array();
  for (int l = 0; l < Cfg::levels; ++l)
    down.push_back("DownEncoderBlock2D"), up.push_back("UpDecoderBlock2D");
  return json{{"_class_name", "AutoencoderKL"},
              {"_diffusers_version", diffusers_version},
              {"_ldm_version", version.string},
              {"in_channels", image_channels},
              {"out_channels", image_channels},
              {"down_block_types", down},
              {"up_block_types", up},
              {"block_out_channels", channel_list<typename Cfg::block_out_channels>()},
              {"layers_per_block", Cfg::layers_per_block},
              {"act_fn", "silu"},
              {"latent_channels", Cfg::latent_channels},
              {"norm_num_groups", Cfg::norm_num_groups},
              {"sample_size", resolution},
              {"scaling_factor", scaling_factor},
              {"force_upcast", true},
              {"use_quant_conv", true},
              {"use_post_quant_conv", true},
              {"mid_block_add_attention", true}};
}

/// The config.json diffusers writes for a UNet2DModel of configuration Cfg (a UNetConfig).
/// @param channels in_channels and out_channels: the latents' channels
/// @param resolution sample_size: the latents' height and width
/// @param dropout the ResNet blocks' dropout
template <class Cfg>
json unet_config(index_t channels, index_t resolution, double dropout) {
  json down = json::array(), up = json::array();
  for (int l = 0; l < Cfg::levels; ++l) {
    down.push_back(Cfg::attention_levels::contains(l) ? "AttnDownBlock2D" : "DownBlock2D");
    const int mirrored = Cfg::levels - 1 - l;
    up.push_back(Cfg::attention_levels::contains(mirrored) ? "AttnUpBlock2D" : "UpBlock2D");
  }
  return json{{"_class_name", "UNet2DModel"},
              {"_diffusers_version", diffusers_version},
              {"_ldm_version", version.string},
              {"sample_size", resolution},
              {"in_channels", channels},
              {"out_channels", channels},
              {"center_input_sample", false},
              {"time_embedding_dim", nullptr},
              {"time_embedding_type", "positional"},
              {"freq_shift", Cfg::freq_shift},
              {"flip_sin_to_cos", Cfg::flip_sin_to_cos},
              {"down_block_types", down},
              {"mid_block_type", "UNetMidBlock2D"},
              {"up_block_types", up},
              {"block_out_channels", channel_list<typename Cfg::block_out_channels>()},
              {"layers_per_block", Cfg::layers_per_block},
              {"mid_block_scale_factor", 1},
              {"downsample_padding", 1},
              {"downsample_type", "conv"},
              {"upsample_type", "conv"},
              {"dropout", dropout},
              {"act_fn", "silu"},
              {"attention_head_dim", Cfg::attention_head_dim},
              {"norm_num_groups", Cfg::norm_num_groups},
              {"attn_norm_num_groups", nullptr},
              {"norm_eps", Cfg::norm_eps},
              {"resnet_time_scale_shift", "default"},
              {"add_attention", true},
              {"class_embed_type", nullptr},
              {"num_class_embeds",
               Cfg::num_class_embeds > 0 ? json(Cfg::num_class_embeds) : json(nullptr)}};
}

/// A DDIMScheduler config: what diffusers' pipelines load from scheduler/scheduler_config.json.
inline json scheduler_config(const diffusion::ScheduleConfig& schedule,
                             diffusion::PredictionType prediction_type) {
  return json{{"_class_name", "DDIMScheduler"},
              {"_diffusers_version", diffusers_version},
              {"_ldm_version", version.string},
              {"num_train_timesteps", schedule.num_train_timesteps},
              {"beta_start", schedule.beta_start},
              {"beta_end", schedule.beta_end},
              {"beta_schedule", std::string(diffusion::to_string(schedule.beta_schedule))},
              {"trained_betas", nullptr},
              {"clip_sample", false},
              {"set_alpha_to_one", true},
              {"steps_offset", 0},
              {"prediction_type", std::string(diffusion::to_string(prediction_type))},
              {"timestep_spacing", "leading"}};
}

/// Every field of `expected` that the file states must have the same value; fields the file
/// leaves out take diffusers' defaults, which are what `expected` holds for them. Fields listed
/// in `ignored` (values learned or chosen at run time, not architecture) are skipped.
/// @param file the file's name, for messages
/// @param found the file's contents
/// @param expected the config the compiled model would write
/// @param ignored fields not checked
/// @throws ldm::Error when `found` is not an object, a field differs (naming it and both values),
///         or _class_name names another model
inline void require_matching_config(const std::string& file, const json& found,
                                    const json& expected,
                                    const std::vector<std::string>& ignored = {}) {
  if (!found.is_object()) fail_expected(file, "a JSON object", found.type_name());
  for (const auto& [key, value] : expected.items()) {
    if (key.starts_with("_") || !found.contains(key)) continue;
    if (std::find(ignored.begin(), ignored.end(), key) != ignored.end()) continue;
    const json& actual = found.at(key);
    const bool same = (value.is_number() && actual.is_number())
                          ? value.get<double>() == actual.get<double>()
                          : value == actual;
    if (!same)
      fail(file, ": field '", key, "': the compiled configuration has ", value.dump(),
           ", the file has ", actual.dump());
  }
  if (found.contains("_class_name") && found["_class_name"] != expected["_class_name"])
    fail(file, ": field '_class_name': expected ", expected["_class_name"].dump(), ", found ",
         found["_class_name"].dump());
}

}  // namespace ldm::pipeline
