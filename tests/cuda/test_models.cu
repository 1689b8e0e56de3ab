// The whole `tiny` autoencoder and UNet training steps on the GPU against the host backend run in
// double with the same weights and inputs (loss, reconstruction and every parameter gradient), and
// LatentDiffusion trained on the GPU tracking the same run on the host.
#include "cuda/support.cuh"
#include "support/small_pipeline.hpp"

#include <string>
#include <vector>

using namespace ldm;  // `cuda` alone is ambiguous with libcu++'s namespace: say ldm::cuda

namespace {
using Tiny = configs::Tiny;
template <class T, class Space>
using TinyAE =
    models::AutoencoderKL<T, Space, Tiny::image_channels, Tiny::resolution, Tiny::autoencoder>;
template <class T, class Space>
using TinyUNet = models::UNet<T, Space, Tiny::autoencoder.latent_channels,
                              TinyAE<float, host>::latent_res, Tiny::unet>;
constexpr index_t N = 3;
// A whole network in float32 against double: sums over thousands of terms in another order.
constexpr double kStepTolerance = 1e-3;

// The device model's weights, converted, into the double host model: the same starting point.
template <class DeviceOwned, class HostOwned>
void copy_weights(const DeviceOwned& device, HostOwned& reference) {
  const auto values = to_host(device.values());
  reference.values() = values;
}

// Per parameter tensor: max |device - host| / max |host|, as the golden tests measure it.
template <class DeviceOwned, class HostOwned>
void check_parameter_gradients(DeviceOwned& device, HostOwned& reference) {
  const auto got = to_host(View<const float, Shape<DeviceOwned::count>, ldm::cuda>(device.grads()));
  const auto expected = reference.grads();
  std::string worst_name;
  double worst = 0;
  for (const auto& info : device.infos()) {
    double error = 0, scale = 0;
    for (index_t i = info.offset; i < info.offset + info.size; ++i) {
      error = std::max(error, std::abs(double(got[i]) - expected[i]));
      scale = std::max(scale, std::abs(expected[i]));
    }
    const double relative = scale > 0 ? error / scale : error;
    if (!(relative <= worst)) worst = relative, worst_name = info.name;
  }
  INFO("worst parameter gradient: " << worst_name << ", relative error " << worst);
  CHECK(worst <= kStepTolerance);
}
}  // namespace

TEST_CASE("tiny autoencoder training step: GPU float32 against the host in double") {
  using AE = TinyAE<float, ldm::cuda>;
  using Reference = TinyAE<double, host>;
  nn::Owned<AE, ldm::cuda> ae(7);
  nn::Owned<Reference> reference(7);
  copy_weights(ae, reference);

  const auto x = test::host_random<double, AE::images<N>>(1, 0.5);
  const auto eps = test::host_random<double, AE::latents<N>>(2);
  const train::AutoencoderLossConfig config{train::PixelLoss::l1, 0.0, 1e-6};
  train::NoPerceptual none;

  Reference::Saved<N> reference_saved;
  Tensor<double, AE::images<N>> reference_reconstruction;
  reference.grads() = 0.0;
  const auto expected = train::autoencoder_loss_and_gradients<N>(
      *reference, reference_saved, x, eps, config, none, reference_reconstruction.view());

  AE::Saved<N> saved;
  auto reconstruction = test::poisoned<float, AE::images<N>>();
  const auto dx = test::device_float(x.view());
  const auto deps = test::device_float(eps.view());
  ae.grads() = 0.0f;
  const auto got = train::autoencoder_loss_and_gradients<N>(*ae, saved, dx, deps, config, none,
                                                            reconstruction.view());
  CHECK(got.total == doctest::Approx(expected.total).epsilon(kStepTolerance));
  CHECK(got.kl == doctest::Approx(expected.kl).epsilon(kStepTolerance));
  test::check_close(View<const float, AE::images<N>, ldm::cuda>(reconstruction.view()),
                    reference_reconstruction.view(), kStepTolerance, "reconstruction");
  check_parameter_gradients(ae, reference);
}

TEST_CASE("tiny UNet training step: GPU float32 against the host in double") {
  using UNet = TinyUNet<float, ldm::cuda>;
  using Reference = TinyUNet<double, host>;
  nn::Owned<UNet, ldm::cuda> unet(9);
  nn::Owned<Reference> reference(9);
  copy_weights(unet, reference);
  const auto schedule = diffusion::Schedule::of<Tiny::schedule>();

  Tensor<float, UNet::sample<N>> x0, noise;
  x0 = randn<UNet::sample<N>>(3);
  noise = randn<UNet::sample<N>>(4);
  Tensor<std::int32_t, Shape<N>> timesteps;
  timesteps[0] = 0, timesteps[1] = 517, timesteps[2] = 999;

  // The double reference takes float inputs through the float objective: run the host model in
  // float too, which is what the pipeline runs; the double run checks the GPU's rounding.
  Reference::Saved<N> reference_saved;
  Tensor<double, UNet::sample<N>> xt, prediction, dprediction;
  Tensor<float, Shape<N>> t;
  {
    Tensor<float, UNet::sample<N>> xt_float;
    diffusion::add_noise(schedule, View<const float, UNet::sample<N>>(x0),
                         View<const float, UNet::sample<N>>(noise),
                         View<const std::int32_t, Shape<N>>(timesteps), xt_float.view());
    xt = xt_float;
  }
  t = timesteps;
  reference.grads() = 0.0;
  reference->forward(xt, t, reference_saved, prediction.view(), nn::Mode{true});
  Tensor<double, UNet::sample<N>> target;
  target = noise;
  const double expected_loss = mean(square(prediction - target));
  dprediction = (prediction - target) * (2.0 / double(UNet::sample<N>::size));
  reference->backward(xt, reference_saved, dprediction, View<double, UNet::sample<N>>(nullptr));

  UNet::Saved<N> saved;
  const auto dx0 = to_device(x0.view());
  const auto dnoise = to_device(noise.view());
  const auto dtimesteps = to_device(timesteps.view());
  unet.grads() = 0.0f;
  const double loss = train::diffusion_loss_and_gradients<N>(
      *unet, saved, dx0, dnoise, dtimesteps, schedule, diffusion::PredictionType::epsilon);
  CHECK(loss == doctest::Approx(expected_loss).epsilon(kStepTolerance));
  check_parameter_gradients(unet, reference);
}

namespace {
using test::Small;
constexpr index_t kBatch = 4;
using Images = LatentDiffusion<Small>::images<kBatch>;
}  // namespace

TEST_CASE("200 training steps on the GPU track the host's loss curve") {
  LatentDiffusion<Small> on_host(1);
  LatentDiffusion<Small, ldm::cuda> on_gpu(1);
  Tensor<float, Images, ldm::cuda> x;
  std::vector<double> host_losses, gpu_losses;
  for (int i = 0; i < 100; ++i) {
    const auto images = test::small_batch<kBatch>(std::uint64_t(i % 10));
    copy(View<const float, Images>(images), x.view());
    host_losses.push_back(on_host.autoencoder_step<kBatch>(images).losses.total);
    gpu_losses.push_back(on_gpu.autoencoder_step<kBatch>(x).losses.total);
  }
  for (int i = 0; i < 100; ++i) {
    const auto images = test::small_batch<kBatch>(std::uint64_t(100 + i % 10));
    copy(View<const float, Images>(images), x.view());
    host_losses.push_back(on_host.diffusion_step<kBatch>(images).loss);
    gpu_losses.push_back(on_gpu.diffusion_step<kBatch>(x).loss);
  }
  // The runs share weights, data and noise; only the order of float sums differs, and chaos
  // amplifies that slowly over the steps.
  double worst = 0;
  int worst_step = 0;
  for (std::size_t i = 0; i < host_losses.size(); ++i) {
    const double relative = std::abs(gpu_losses[i] - host_losses[i]) / std::abs(host_losses[i]);
    if (!(relative <= worst)) worst = relative, worst_step = int(i);
  }
  INFO("largest relative loss difference " << worst << " at step " << worst_step << " (host "
                                           << host_losses[std::size_t(worst_step)] << ", GPU "
                                           << gpu_losses[std::size_t(worst_step)] << ")");
  CHECK(worst <= 0.05);
  CHECK(on_gpu.scaling_factor() == doctest::Approx(on_host.scaling_factor()).epsilon(1e-3));
}

TEST_CASE("a checkpoint saved from the GPU loads on the host with the same weights") {
  LatentDiffusion<Small, ldm::cuda> on_gpu(2);
  Tensor<float, Images, ldm::cuda> x;
  copy(View<const float, Images>(test::small_batch<kBatch>(0)), x.view());
  on_gpu.autoencoder_step<kBatch>(x);
  on_gpu.diffusion_step<kBatch>(x);
  const auto folder = std::filesystem::temp_directory_path() / "ldm_gpu_checkpoint";
  on_gpu.save(folder);
  LatentDiffusion<Small> on_host(0);
  on_host.load(folder);
  LatentDiffusion<Small, ldm::cuda> again(0);
  again.load(folder);
  const auto gpu_values = on_gpu.autoencoder_values_host();
  const auto host_values = on_host.autoencoder_values_host();
  const auto again_values = again.autoencoder_values_host();
  CHECK(gpu_values == host_values);
  CHECK(again_values == host_values);
  CHECK(on_host.diffusion_steps() == 1);
  std::filesystem::remove_all(folder);
}
