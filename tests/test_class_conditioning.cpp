// Class conditioning and classifier-free guidance in LatentDiffusion: labels reach the UNet in
// training (with label dropout drawn per sample, so accumulation still equals the whole batch)
// and in sampling, where guidance runs both predictions as one batch and combines them as
// diffusers does; every misuse is an ldm::Error naming what was wrong.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <ldm/ldm.hpp>
#include <vector>

#include "support/golden.hpp"
#include "support/small_pipeline.hpp"

using namespace ldm;
using test::largest_difference;
using test::with_label_dropout;

namespace {

// test::Small with a UNet conditioned on 3 classes (num_class_embeds 4: the last is "no class").
struct SmallClasses : test::Small {
  static constexpr UNetConfig unet = [] {
    UNetConfig with_classes = test::Small::unet;
    with_classes.num_class_embeds = 4;
    return with_classes;
  }();
};
using Model = LatentDiffusion<SmallClasses>;
template <index_t N>
using Images = View<const float, Model::images<N>>;
template <index_t N>
using Latents = Model::latents<N>;

// Moves the UNet from its initialisation, so that its classes differ.
void train_a_little(Model& model) {
  const auto x = test::small_batch<4>(1);
  const std::vector<std::int32_t> labels{0, 1, 2, 1};
  for (int step = 0; step < 3; ++step)
    model.diffusion_step<4>(x, labels);
}

}  // namespace

TEST_CASE("the configuration's classes and null class") {
  static_assert(Model::class_conditional && Model::classes == 3 && Model::null_class == 3);
  static_assert(!LatentDiffusion<test::Small>::class_conditional);
  Model model(1);
  const auto written = model.unet_parameters();
  CHECK(std::any_of(written.begin(), written.end(),
                    [](const auto& p) { return p.name == "class_embedding.weight"; }));
}

// tools/golden/make_class_unet_golden.py: diffusers' UNet2DModel with num_class_embeds 4, in
// float64; ldm runs in float32. Tolerances as test_models_golden's: 1e-4 forward, 1e-3 step.
TEST_CASE("the class-conditional UNet against diffusers: forward, loss and every gradient") {
  using UNet = Model::UNet;
  constexpr index_t N = 2;
  auto golden = test::open_golden("class_unet");
  nn::Owned<UNet> unet(0);
  test::load_parameters(golden, unet.infos(), unet.values().data(), "param.");
  Tensor<float, UNet::sample<N>> x, y, x0, noise;
  Tensor<float, Shape<N>> timesteps;
  Tensor<std::int32_t, Shape<N>> labels, step_timesteps, step_labels;
  UNet::Saved<N> saved;
  test::read_activation(golden, "forward.x", x.view());
  test::read_activation(golden, "forward.timesteps", timesteps.view());
  test::read_activation(golden, "forward.labels", labels.view());
  unet->forward(x, timesteps, saved, y.view(), nn::inference, labels);
  const double forward_error = test::activation_error(golden, "forward.output", y.view());
  MESSAGE("forward: largest relative error " << forward_error);
  CHECK(forward_error <= 1e-4);

  test::read_activation(golden, "step.x0", x0.view());
  test::read_activation(golden, "step.noise", noise.view());
  test::read_activation(golden, "step.timesteps", step_timesteps.view());
  test::read_activation(golden, "step.labels", step_labels.view());
  unet.grads() = 0.0f;
  const double loss = train::diffusion_loss_and_gradients<N>(
      *unet, saved, x0, noise, step_timesteps, diffusion::Schedule::of<LinearBetas<>>(),
      diffusion::PredictionType::epsilon, nn::inference, step_labels);
  CHECK(loss == doctest::Approx(test::read_all(golden, "step.loss").at(0)).epsilon(1e-3));
  const auto worst = test::parameter_gradient_error(golden, unet.infos(), unet.grads().data());
  MESSAGE("parameter gradients: worst " << worst.name << ", " << worst.error);
  CHECK(worst.error <= 1e-3);
}

TEST_CASE("two labelled micro-batches of 2 make the step one batch of 4 makes, label dropout too") {
  const auto x = test::small_batch<4>(2);
  const std::vector<std::int32_t> labels{0, 1, 2, 0};
  Model whole(5, with_label_dropout(0.5)), split(5, with_label_dropout(0.5));
  // Else each would measure it on its own first micro-batch.
  whole.set_scaling_factor(0.8), split.set_scaling_factor(0.8);
  const auto a = whole.diffusion_step<4>(x, labels);
  const auto b = split.diffusion_step<2>(2, [&](index_t j) {
    return Model::labelled_images<2>{Images<2>(x.batch<2>(2 * j)),
                                     std::span(labels).subspan(std::size_t(2 * j), 2)};
  });
  CHECK(b.loss == doctest::Approx(a.loss).epsilon(1e-6));
  CHECK(b.grad_norm == doctest::Approx(a.grad_norm).epsilon(1e-5));
}

TEST_CASE("label dropout 1 trains on the null class alone; 0 on the labels") {
  const auto x = test::small_batch<4>(3);
  const std::vector<std::int32_t> labels{0, 1, 2, 0}, none(4, Model::null_class);
  Model dropped(7, with_label_dropout(1)), unconditional(7), labelled(7);
  const double a = dropped.diffusion_step<4>(x, labels).loss;
  const double b = unconditional.diffusion_step<4>(x, none).loss;
  const double c = labelled.diffusion_step<4>(x, labels).loss;
  CHECK(a == b);
  CHECK(c != b);
}

TEST_CASE("guided sampling is pred_none + w (pred_class - pred_none) at every step") {
  Model model(11, with_label_dropout(0.3));
  train_a_little(model);
  const auto sampler = std::get<diffusion::DDIM>(model.sampler(4));
  const std::vector<std::int32_t> labels{2, 0};
  constexpr double w = 3;
  Tensor<float, Latents<2>> start;
  start = randn<Latents<2>>(21, 0);

  Tensor<float, Latents<2>> guided = start;
  model.denoise<2>(sampler, 0, 9, true, {.labels = labels, .guidance_scale = w}, guided.view());

  // The same loop written out: the two predictions as separate batches of 2.
  const auto& unet = model.ema_unet();
  typename Model::UNet::Saved<2> saved;
  Tensor<std::int32_t, Shape<2>> classes, nulls;
  classes[0] = 2, classes[1] = 0;
  nulls = Model::null_class;
  const auto x =
      test::guided_by_hand(sampler, start, w, [&](auto& x, auto& t, bool cond, auto eps) {
        unet.forward<2>(x, t, saved, eps, nn::inference, cond ? classes : nulls);
      });
  const double scale = max(abs(x));
  CHECK(largest_difference(guided.data(), x.data(), std::size_t(x.size)) < 1e-5 * scale);

  SUBCASE("guidance 0 is the unconditional sample, 1 the conditional one") {
    Tensor<float, Latents<2>> zero = start, none = start;
    model.denoise<2>(sampler, 0, 9, true, {.labels = labels, .guidance_scale = 0}, zero.view());
    model.denoise<2>(sampler, 0, 9, true, none.view());
    CHECK(largest_difference(zero.data(), none.data(), std::size_t(x.size)) < 1e-5 * scale);
    Tensor<float, Latents<2>> one = start;
    model.denoise<2>(sampler, 0, 9, true, {.labels = labels}, one.view());
    CHECK(largest_difference(one.data(), none.data(), std::size_t(x.size)) > 1e-3 * scale);
  }
}

TEST_CASE("every sampler takes guidance") {
  Model model(12, with_label_dropout(0.3));
  train_a_little(model);
  Tensor<float, Model::images<2>> out;
  for (const char* name : {"DDIMScheduler", "DDPMScheduler", "EulerDiscreteScheduler",
                           "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler",
                           "DPMSolverMultistepScheduler", "UniPCMultistepScheduler"}) {
    CAPTURE(name);
    const auto sampler = model.sampler(3, {{"_class_name", name}});
    model.sample<2>(sampler, 4, {.labels = {1, 2}, .guidance_scale = 2}, out.view());
    CHECK(std::all_of(out.data(), out.data() + out.size, [](float v) { return std::isfinite(v); }));
  }
}

TEST_CASE("misuse is an ldm::Error naming what was wrong") {
  Model model(3);
  const auto x = test::small_batch<2>(4);
  CHECK_THROWS_WITH_AS(model.diffusion_step<2>(Images<2>(x)),
                       doctest::Contains("class-conditional (3 classes)"), Error);
  const std::vector<std::int32_t> bad{0, 4}, short_list{1};
  CHECK_THROWS_WITH_AS(model.diffusion_step<2>(x, bad),
                       doctest::Contains("diffusion_step: label 1: expected a class in [0, 3)"),
                       Error);
  CHECK_THROWS_WITH_AS(model.diffusion_step<2>(x, short_list),
                       doctest::Contains("diffusion_step: labels: expected 2"), Error);
  CHECK(model.diffusion_steps() == 0);

  Tensor<float, Model::images<2>> out;
  const auto sampler = model.sampler(2);
  CHECK_THROWS_WITH_AS(model.sample<2>(sampler, 1, {.labels = {0, -1}}, out.view()),
                       doctest::Contains("sample: label 1"), Error);
  CHECK_THROWS_WITH_AS(model.sample<2>(sampler, 1, {.labels = {0}}, out.view()),
                       doctest::Contains("sample: labels: expected 2"), Error);
  CHECK_THROWS_WITH_AS(
      model.sample<2>(sampler, 1, {.labels = {0, 1}, .guidance_scale = NAN}, out.view()),
      doctest::Contains("sample: guidance_scale"), Error);

  CHECK_THROWS_WITH_AS(Model(1, with_label_dropout(1.5)),
                       doctest::Contains("TrainingOptions: label_dropout"), Error);
  using Unconditional = LatentDiffusion<test::Small>;
  CHECK_THROWS_WITH_AS(Unconditional(1, with_label_dropout(0.1)),
                       doctest::Contains("not class-conditional"), Error);
  Unconditional plain(1);
  Tensor<float, Unconditional::images<2>> plain_out;
  plain.set_scaling_factor(1);
  CHECK_THROWS_WITH_AS(plain.sample<2>(plain.sampler(2), 1, {.labels = {0, 1}}, plain_out.view()),
                       doctest::Contains("not class-conditional"), Error);
}

TEST_CASE("a class-conditional checkpoint round-trips, and an unconditional model refuses it") {
  Model model(13, with_label_dropout(0.3));
  train_a_little(model);
  const auto folder = std::filesystem::temp_directory_path() / "ldm_test_class_conditioning";
  std::filesystem::remove_all(folder);
  model.save(folder);
  Model loaded(99);
  loaded.load(folder);
  Tensor<float, Model::images<2>> a, b;
  const auto sampler = model.sampler(3);
  model.sample<2>(sampler, 5, {.labels = {0, 2}, .guidance_scale = 2}, a.view());
  loaded.sample<2>(sampler, 5, {.labels = {0, 2}, .guidance_scale = 2}, b.view());
  CHECK(largest_difference(a.data(), b.data(), std::size_t(a.size)) == 0);
  LatentDiffusion<test::Small> unconditional(1);
  CHECK_THROWS_WITH_AS(unconditional.load(folder), doctest::Contains("num_class_embeds"), Error);
  std::filesystem::remove_all(folder);
}
