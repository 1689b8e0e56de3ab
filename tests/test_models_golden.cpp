// The whole `tiny` AutoencoderKL and UNet2DModel against diffusers
// (tools/golden/make_model_golden.py): weights from the BF16 folders diffusers wrote
// (tests/golden/diffusers_tiny/), references computed in float64 from those weights; ldm runs in
// float32. Forward passes must agree to 1e-4 relative, training steps (losses and every parameter
// gradient) to 1e-3, and ten float32 AdamW steps of the UNet to 1e-3 per loss, PyTorch's float32
// run being the reference there.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <ldm/diffusion.hpp>
#include <ldm/ldm.hpp>
#include <ldm/models/autoencoder_kl.hpp>
#include <ldm/models/unet.hpp>
#include <ldm/train/adamw.hpp>
#include <ldm/train/autoencoder_loss.hpp>
#include <ldm/train/diffusion_loss.hpp>
#include <set>
#include <span>
#include <string>

#include "support/golden.hpp"

using namespace ldm;

namespace {
using TinyAE = models::AutoencoderKL<float, host, 1, 32,
                                     AutoencoderKLConfig{.block_out_channels = {32, 32, 64},
                                                         .layers_per_block = 1,
                                                         .latent_channels = 4}>;
using TinyUNet = models::UNet<float, host, 4, 8,
                              UNetConfig{.block_out_channels = {32, 64},
                                         .layers_per_block = 2,
                                         .attention = {false, true},
                                         .attention_head_dim = 32}>;
constexpr index_t N = 2;
constexpr double forward_tolerance = 1e-4, step_tolerance = 1e-3;

void expect_close(const std::string& what, double error, double tolerance) {
  MESSAGE(what << ": largest relative error " << error);
  CHECK(error <= tolerance);
}

double scalar_error(const io::SafetensorsFile& file, const std::string& name, double actual) {
  const double expected = test::read_all(file, name).at(0);
  return std::abs(actual - expected) / std::abs(expected);
}

// The folder's safetensors must hold exactly ldm's parameters, no more (require_only) and no fewer
// (load_parameters fails on a missing name).
template <class Owned>
void load_diffusers_weights(Owned& m, const std::string& folder) {
  auto file = io::SafetensorsFile::open(std::string(LDM_TEST_DATA_DIR) + "/golden/diffusers_tiny/" +
                                        folder + "/diffusion_pytorch_model.safetensors");
  std::set<std::string> names;
  for (const auto& info : m.infos())
    names.insert(info.name);
  file.require_only(names);
  test::load_parameters(file, m.infos(), m.values().data());
}

template <class Owned>
void expect_parameter_gradients(const io::SafetensorsFile& file, Owned& m) {
  const auto worst = test::parameter_gradient_error(file, m.infos(), m.grads().data());
  expect_close("parameter gradients (worst: " + worst.name + ")", worst.error, step_tolerance);
}
}  // namespace

TEST_CASE("tiny AutoencoderKL against diffusers: encode and decode") {
  auto golden = test::open_golden("tiny_autoencoder");
  nn::Owned<TinyAE> ae(0);
  load_diffusers_weights(ae, "vae");
  Tensor<float, TinyAE::images<N>> x, y;
  Tensor<float, TinyAE::latents<N>> mean, logvar, z;
  TinyAE::EncodeSaved<N> encode_saved;
  TinyAE::DecodeSaved<N> decode_saved;
  test::read_activation(golden, "encode.x", x.view());
  test::read_activation(golden, "decode.z", z.view());
  ae->encode(x, encode_saved, mean.view(), logvar.view());
  ae->decode(z, decode_saved, y.view());
  expect_close("encode mean", test::activation_error(golden, "encode.mean", mean.view()),
               forward_tolerance);
  expect_close("encode logvar", test::activation_error(golden, "encode.logvar", logvar.view()),
               forward_tolerance);
  expect_close("decode", test::activation_error(golden, "decode.output", y.view()),
               forward_tolerance);
}

TEST_CASE("tiny AutoencoderKL against diffusers: training step (L1 + 1e-6 KL)") {
  auto golden = test::open_golden("tiny_autoencoder");
  nn::Owned<TinyAE> ae(0);
  load_diffusers_weights(ae, "vae");
  Tensor<float, TinyAE::images<N>> x, reconstruction;
  Tensor<float, TinyAE::latents<N>> eps;
  TinyAE::Saved<N> saved;
  test::read_activation(golden, "step.x", x.view());
  test::read_activation(golden, "step.eps", eps.view());
  train::NoPerceptual none;
  const train::AutoencoderLossConfig config{train::PixelLoss::l1, 0.0, 1e-6};
  ae.grads() = 0.0f;
  const auto losses = train::autoencoder_loss_and_gradients<N>(*ae, saved, x, eps, config, none,
                                                               reconstruction.view());
  expect_close("loss", scalar_error(golden, "step.loss", losses.total), step_tolerance);
  expect_close("pixel", scalar_error(golden, "step.pixel", losses.pixel), step_tolerance);
  expect_close("kl", scalar_error(golden, "step.kl", losses.kl), step_tolerance);
  expect_parameter_gradients(golden, ae);
}

TEST_CASE("tiny UNet against diffusers: forward") {
  auto golden = test::open_golden("tiny_unet");
  nn::Owned<TinyUNet> unet(0);
  load_diffusers_weights(unet, "unet");
  Tensor<float, TinyUNet::sample<N>> x, y;
  Tensor<float, Shape<N>> timesteps;
  TinyUNet::Saved<N> saved;
  test::read_activation(golden, "forward.x", x.view());
  test::read_activation(golden, "forward.timesteps", timesteps.view());
  unet->forward(x, timesteps, saved, y.view());
  expect_close("output", test::activation_error(golden, "forward.output", y.view()),
               forward_tolerance);
}

namespace {
struct DiffusionBatch {
  Tensor<float, TinyUNet::sample<N>> x0, noise;
  Tensor<std::int32_t, Shape<N>> timesteps;

  DiffusionBatch(const io::SafetensorsFile& golden, const std::string& prefix) {
    test::read_activation(golden, prefix + "x0", x0.view());
    test::read_activation(golden, prefix + "noise", noise.view());
    test::read_activation(golden, prefix + "timesteps", timesteps.view());
  }
};

double diffusion_step(nn::Owned<TinyUNet>& unet, TinyUNet::Saved<N>& saved,
                      const DiffusionBatch& batch, const diffusion::Schedule& schedule) {
  unet.grads() = 0.0f;
  return train::diffusion_loss_and_gradients<N>(*unet, saved, batch.x0, batch.noise,
                                                batch.timesteps, schedule,
                                                diffusion::PredictionType::epsilon);
}
}  // namespace

TEST_CASE("tiny UNet against diffusers: training step (epsilon, linear schedule)") {
  auto golden = test::open_golden("tiny_unet");
  nn::Owned<TinyUNet> unet(0);
  load_diffusers_weights(unet, "unet");
  TinyUNet::Saved<N> saved;
  const auto schedule = diffusion::Schedule::of<diffusion::LinearBetas<>>();
  const double loss = diffusion_step(unet, saved, DiffusionBatch(golden, "step."), schedule);
  expect_close("loss", scalar_error(golden, "step.loss", loss), step_tolerance);
  expect_parameter_gradients(golden, unet);
}

TEST_CASE("tiny UNet against diffusers: ten AdamW steps follow PyTorch's loss curve") {
  auto golden = test::open_golden("tiny_unet");
  nn::Owned<TinyUNet> unet(0);
  load_diffusers_weights(unet, "unet");
  TinyUNet::Saved<N> saved;
  const auto schedule = diffusion::Schedule::of<diffusion::LinearBetas<>>();
  train::AdamW optimizer({.lr = 1e-4, .weight_decay = 1e-2}, TinyUNet::parameter_count);
  const auto expected = test::read_all(golden, "adamw.losses");
  REQUIRE(expected.size() == 10);
  double worst = 0;
  for (std::size_t k = 0; k < expected.size(); ++k) {
    const double loss = diffusion_step(
        unet, saved, DiffusionBatch(golden, "adamw." + std::to_string(k + 1) + "."), schedule);
    optimizer.step(std::span<float>(unet.values().data(), TinyUNet::parameter_count),
                   std::span<const float>(unet.grads().data(), TinyUNet::parameter_count));
    const double error = std::abs(loss - expected[k]) / std::abs(expected[k]);
    CAPTURE(k);
    CAPTURE(loss);
    CHECK(error <= step_tolerance);
    worst = std::max(worst, error);
  }
  MESSAGE("loss curve: largest relative error " << worst);
}
