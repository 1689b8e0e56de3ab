// AutoencoderKL: structure (parameter counts and names as diffusers), and gradients of the whole
// model against finite differences on a small configuration in double.
#include <doctest/doctest.h>

#include <ldm/ldm.hpp>
#include <ldm/models/autoencoder_kl.hpp>
#include <set>

#include "support/gradcheck.hpp"

using namespace ldm;

namespace {
// The `tiny` configuration of docs/models.md: 1x32x32 images, (32, 32, 64), one layer, 4 latents.
constexpr AutoencoderKLConfig TinyAE{
    .block_out_channels = {32, 32, 64}, .layers_per_block = 1, .latent_channels = 4};
// A configuration small enough for finite differences over every parameter.
constexpr AutoencoderKLConfig SmallAE{.block_out_channels = {4, 8},
                                      .layers_per_block = 1,
                                      .latent_channels = 2,
                                      .norm_num_groups = 2};
}  // namespace

TEST_CASE("AutoencoderKL: parameter counts match diffusers") {
  // diffusers 0.42: sum(p.numel() for p in AutoencoderKL(<same config>).parameters())
  static_assert(models::AutoencoderKL<float, host, 1, 32, TinyAE>::parameter_count == 731589);
  static_assert(models::AutoencoderKL<float, host, 3, 8, SmallAE>::parameter_count == 11325);
  static_assert(models::AutoencoderKL<float, host, 1, 32, TinyAE>::latent_res == 32 / 4);
}

TEST_CASE("AutoencoderKL: parameter names are diffusers' state-dict keys") {
  using AE = models::AutoencoderKL<float, host, 1, 32, TinyAE>;
  nn::Owned<AE> ae(1);
  std::set<std::string> names;
  for (const auto& p : ae.infos())
    names.insert(p.name);
  CHECK(names.size() == ae.infos().size());
  for (const char* expected : {"encoder.conv_in.weight",
                               "encoder.down_blocks.0.resnets.0.norm1.weight",
                               "encoder.down_blocks.1.resnets.0.conv1.bias",
                               "encoder.down_blocks.0.downsamplers.0.conv.weight",
                               "encoder.down_blocks.2.resnets.0.conv_shortcut.weight",
                               "encoder.mid_block.attentions.0.to_q.weight",
                               "encoder.mid_block.attentions.0.to_out.0.bias",
                               "encoder.mid_block.attentions.0.group_norm.weight",
                               "encoder.mid_block.resnets.1.norm2.bias",
                               "encoder.conv_norm_out.weight",
                               "encoder.conv_out.weight",
                               "quant_conv.weight",
                               "post_quant_conv.bias",
                               "decoder.conv_in.weight",
                               "decoder.up_blocks.0.resnets.1.conv2.weight",
                               "decoder.up_blocks.0.upsamplers.0.conv.weight",
                               "decoder.up_blocks.1.resnets.0.conv_shortcut.weight",
                               "decoder.up_blocks.2.resnets.1.norm1.bias",
                               "decoder.conv_norm_out.bias",
                               "decoder.conv_out.weight"})
    CHECK_MESSAGE(names.count(expected) == 1, std::string(expected));
  CHECK(names.count("encoder.down_blocks.2.downsamplers.0.conv.weight") == 0);
  CHECK(names.count("decoder.up_blocks.2.upsamplers.0.conv.weight") == 0);
}

TEST_CASE("AutoencoderKL: encode and decode gradients against finite differences (double)") {
  using AE = models::AutoencoderKL<double, host, 3, 8, SmallAE>;
  constexpr index_t N = 2;
  nn::Owned<AE> ae(3);
  ae.values() = randn<Shape<AE::parameter_count>>(4) * 0.3;
  Tensor<double, AE::images<N>> x, dx, y, gy;
  Tensor<double, AE::latents<N>> mean, logvar, gm, gl, z, dz;
  x = randn<AE::images<N>>(5);
  z = randn<AE::latents<N>>(6);
  gy = randn<AE::images<N>>(7);
  gm = randn<AE::latents<N>>(8);
  gl = randn<AE::latents<N>>(9);
  AE::EncodeSaved<N> es;
  AE::DecodeSaved<N> ds;

  // One scalar that depends on every parameter and both inputs.
  auto loss = [&] {
    ae->encode(x, es, mean.view(), logvar.view());
    ae->decode(z, ds, y.view());
    return test::dot(mean.data(), gm.data(), mean.size) +
           test::dot(logvar.data(), gl.data(), logvar.size) +
           test::dot(y.data(), gy.data(), y.size);
  };
  loss();
  ae.grads() = 0.0;
  ae->encode_backward(x, es, gm, gl, dx.view());
  ae->decode_backward(z, ds, gy, dz.view());
  Tensor<double, Shape<AE::parameter_count>> analytic;
  analytic = ae.grads();

  auto check = [&](const char* what, double* values, const double* grad, std::size_t n) {
    const double error = test::max_relative_error(grad, test::numerical_gradient(loss, values, n));
    MESSAGE(std::string(what) << ": largest relative error " << error);
    CHECK(error < 1e-6);
  };
  check("dx", x.data(), dx.data(), x.size);
  check("dz", z.data(), dz.data(), z.size);
  check("parameters", ae.values().data(), analytic.data(), AE::parameter_count);
}

#include <ldm/train/autoencoder_loss.hpp>

TEST_CASE("autoencoder training loss: gradients of the whole objective (double, L2 + KL)") {
  using AE = models::AutoencoderKL<double, host, 3, 8, SmallAE>;
  constexpr index_t N = 2;
  nn::Owned<AE> ae(13);
  ae.values() = randn<Shape<AE::parameter_count>>(14) * 0.3;
  Tensor<double, AE::images<N>> x, reconstruction;
  Tensor<double, AE::latents<N>> eps;
  x = clamp(randn<AE::images<N>>(15), -1.0, 1.0);
  eps = randn<AE::latents<N>>(16);
  AE::Saved<N> saved;
  train::NoPerceptual none;
  // A large KL weight so that its gradient is visible beside the pixel term's.
  const train::AutoencoderLossConfig config{train::PixelLoss::l2, 0.0, 0.1};

  auto loss = [&] {
    return train::autoencoder_loss_and_gradients<N>(*ae, saved, x, eps, config, none,
                                                    reconstruction.view())
        .total;
  };
  ae.grads() = 0.0;
  const auto losses = train::autoencoder_loss_and_gradients<N>(*ae, saved, x, eps, config, none,
                                                               reconstruction.view());
  MESSAGE("pixel " << losses.pixel << ", kl " << losses.kl);
  CHECK(losses.kl > 0);
  CHECK(losses.total == doctest::Approx(losses.pixel + losses.kl));
  Tensor<double, Shape<AE::parameter_count>> analytic;
  analytic = ae.grads();
  const double error = test::max_relative_error(
      analytic.data(), test::numerical_gradient(loss, ae.values().data(), AE::parameter_count));
  MESSAGE("parameters: largest relative error " << error);
  CHECK(error < 1e-6);
}
