// The configurations as values: level_list, the resolution into the models' constants, and the
// config.json fields written from them.
#include <doctest/doctest.h>

#include <ldm/models/config_traits.hpp>
#include <ldm/pipeline/configs.hpp>
#include <ldm/pipeline/diffusers_config.hpp>
#include <type_traits>

using namespace ldm;

TEST_CASE("level_list: the entries given, zeros after them") {
  constexpr level_list<index_t> list = {32, 64};
  static_assert(list.size() == 2 && list[0] == 32 && list[1] == 64);
  static_assert(list.items[2] == 0 && list.items[max_levels - 1] == 0);
  constexpr level_list<bool> none;
  static_assert(none.size() == 0);
  index_t sum = 0;
  for (index_t c : list)
    sum += c;
  CHECK(sum == 96);
}

TEST_CASE("a configuration written twice is one template argument") {
  static constexpr UNetConfig again{.block_out_channels = {32, 64},
                                    .layers_per_block = 2,
                                    .attention = {false, true},
                                    .attention_head_dim = 32};
  static_assert(
      std::is_same_v<detail::unet_traits<again>, detail::unet_traits<configs::Tiny::unet>>);
  constexpr UNetConfig other = [] {
    UNetConfig u = again;
    u.num_class_embeds = 11;
    return u;
  }();
  static_assert(!std::is_same_v<detail::unet_traits<other>, detail::unet_traits<again>>);
}

TEST_CASE("the resolved constants are the configuration's, with diffusers' derived values") {
  using AE = detail::autoencoder_traits<configs::Tiny::autoencoder>;
  static_assert(AE::levels == 3 && AE::latent_factor == 4 && AE::latent_channels == 4);
  static_assert(AE::block_out_channels::first == 32 && AE::block_out_channels::last == 64);
  static_assert(AE::norm_num_groups == 32);
  using U = detail::unet_traits<configs::UNetBench::unet>;
  static_assert(U::levels == 3 && U::downsample_factor == 4 && U::time_embed_dim == 4 * 128);
  static_assert(!U::attention_levels::contains(0) && U::attention_levels::contains(1) &&
                U::attention_levels::contains(2));
  static_assert(U::num_class_embeds == 0);
  using SD = detail::unet_condition_traits<configs::StableDiffusion15UNet>;
  static_assert(SD::heads(0) == 8 && SD::heads(3) == 8 && SD::transformer_layers(2) == 1);
  static_assert(SD::attention_levels::contains(2) && !SD::attention_levels::contains(3));
  CHECK(SD::use_linear_projection == false);
}

TEST_CASE("config.json: the attention flags are the block types, one value is an int") {
  const auto unet = pipeline::unet_config<configs::Tiny::unet>(4, 8, 0.0);
  CHECK(unet["block_out_channels"] == ldm::io::Json::array({32, 64}));
  CHECK(unet["down_block_types"] == ldm::io::Json::array({"DownBlock2D", "AttnDownBlock2D"}));
  CHECK(unet["up_block_types"] == ldm::io::Json::array({"AttnUpBlock2D", "UpBlock2D"}));
  CHECK(unet["num_class_embeds"].is_null());
  const auto sd15 = pipeline::unet_condition_config<configs::StableDiffusion15UNet>(4, 64, 0.0);
  CHECK(sd15["attention_head_dim"] == 8);
  CHECK(sd15["down_block_types"] ==
        ldm::io::Json::array({"CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                              "CrossAttnDownBlock2D", "DownBlock2D"}));
  const auto sd21 = pipeline::unet_condition_config<configs::StableDiffusion21UNet>(4, 64, 0.0);
  CHECK(sd21["attention_head_dim"] == ldm::io::Json::array({5, 10, 20, 20}));
  CHECK(sd21["use_linear_projection"] == true);
  const auto vae = pipeline::autoencoder_config<configs::Tiny::autoencoder>(1, 32, {});
  CHECK(vae["latent_channels"] == 4);
  CHECK(vae["block_out_channels"] == ldm::io::Json::array({32, 32, 64}));
}
