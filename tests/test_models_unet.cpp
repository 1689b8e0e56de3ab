// UNet: structure (parameter counts and names as diffusers) and gradients of the whole model
// against finite differences on a small configuration in double.
#include <doctest/doctest.h>

#include <ldm/ldm.hpp>
#include <ldm/models/unet.hpp>
#include <set>

#include "support/gradcheck.hpp"

using namespace ldm;

namespace {
constexpr UNetConfig TinyUNet{.block_out_channels = {32, 64},
                              .layers_per_block = 2,
                              .attention = {false, true},
                              .attention_head_dim = 32};
constexpr UNetConfig SmallUNet{.block_out_channels = {4, 8},
                               .layers_per_block = 1,
                               .attention = {false, true},
                               .attention_head_dim = 4,
                               .norm_num_groups = 2};
constexpr UNetConfig SmallClassUNet{.block_out_channels = {4, 8},
                                    .layers_per_block = 1,
                                    .attention = {false, true},
                                    .attention_head_dim = 4,
                                    .norm_num_groups = 2,
                                    .num_class_embeds = 3};
}  // namespace

TEST_CASE("UNet: parameter counts match diffusers") {
  // diffusers 0.42: sum(p.numel() for p in UNet2DModel(<same config>).parameters())
  static_assert(models::UNet<float, host, 4, 8, TinyUNet>::parameter_count == 1003460);
  static_assert(models::UNet<float, host, 3, 4, SmallUNet>::parameter_count == 11767);
  static_assert(models::UNet<float, host, 3, 4, SmallClassUNet>::parameter_count == 11815);
}

TEST_CASE("unet-bench: parameter counts are docs/models.md's") {
  // diffusers 0.42.1 builds the same models with these counts. Only the counts: instantiating
  // the 256x256 passes here would cost minutes of compilation.
  using Bench = LatentDiffusion<configs::UNetBench>;
  static_assert(Bench::AE::parameter_count == 83653863);
  static_assert(Bench::UNet::parameter_count == 64145924);
  static_assert(Bench::latent_res == 32);
  static_assert(LatentDiffusion<configs::VaeBench>::AE::parameter_count == 83653863);
}

TEST_CASE("UNet: parameter names are diffusers' state-dict keys") {
  using U = models::UNet<float, host, 4, 8, TinyUNet>;
  nn::Owned<U> unet(1);
  std::set<std::string> names;
  for (const auto& p : unet.infos())
    names.insert(p.name);
  CHECK(names.size() == unet.infos().size());
  for (const char* expected :
       {"conv_in.weight", "time_embedding.linear_1.weight", "time_embedding.linear_2.bias",
        "down_blocks.0.resnets.1.time_emb_proj.weight", "down_blocks.0.downsamplers.0.conv.weight",
        "down_blocks.1.resnets.0.conv_shortcut.weight", "down_blocks.1.attentions.1.to_k.bias",
        "mid_block.resnets.0.norm1.weight", "mid_block.attentions.0.to_out.0.weight",
        "mid_block.resnets.1.conv2.bias", "up_blocks.0.resnets.2.conv_shortcut.weight",
        "up_blocks.0.attentions.2.group_norm.bias", "up_blocks.0.upsamplers.0.conv.weight",
        "up_blocks.1.resnets.0.conv1.weight", "conv_norm_out.weight", "conv_out.bias"})
    CHECK_MESSAGE(names.count(expected) == 1, std::string(expected));
  CHECK(names.count("down_blocks.1.downsamplers.0.conv.weight") == 0);
  CHECK(names.count("up_blocks.1.upsamplers.0.conv.weight") == 0);
  CHECK(names.count("down_blocks.0.attentions.0.to_q.weight") == 0);
}

namespace {
template <UNetConfig Cfg>
void check_unet_gradients(bool with_labels) {
  using U = models::UNet<double, host, 3, 4, Cfg>;
  constexpr index_t N = 2;
  nn::Owned<U> unet(3, /*dropout*/ 0.1f);
  unet.values() = randn<Shape<U::parameter_count>>(4) * 0.3;
  Tensor<double, typename U::template sample<N>> x, dx, y, g;
  x = randn<typename U::template sample<N>>(5);
  g = randn<typename U::template sample<N>>(6);
  Tensor<float, Shape<N>> t;
  t[0] = 3, t[1] = 801;
  Tensor<std::int32_t, Shape<N>> labels;
  labels[0] = 2, labels[1] = 0;
  typename U::template Saved<N> saved;
  const nn::Mode training{true, 11, 1};
  auto label_view = with_labels ? View<const std::int32_t, Shape<N>>(labels.data())
                                : View<const std::int32_t, Shape<N>>(nullptr);

  auto loss = [&] {
    unet->forward(x, t, saved, y.view(), training, label_view);
    return test::dot(y.data(), g.data(), y.size);
  };
  loss();
  unet.grads() = 0.0;
  unet->backward(x, saved, g, dx.view(), label_view);
  Tensor<double, Shape<U::parameter_count>> analytic;
  analytic = unet.grads();

  auto check = [&](const char* what, double* values, const double* grad, std::size_t n) {
    const double error = test::max_relative_error(grad, test::numerical_gradient(loss, values, n));
    MESSAGE(std::string(what) << ": largest relative error " << error);
    CHECK(error < 1e-6);
  };
  check("dx", x.data(), dx.data(), x.size);
  check("parameters", unet.values().data(), analytic.data(), U::parameter_count);
}
}  // namespace

TEST_CASE("UNet: gradients against finite differences (double, dropout in training)") {
  check_unet_gradients<SmallUNet>(false);
}

TEST_CASE("UNet with class embedding: gradients against finite differences") {
  check_unet_gradients<SmallClassUNet>(true);
}
