// Cross-attention conditioning in LatentDiffusion: a UNetConditionConfig configuration trains on
// contexts the caller gives (with context dropout drawn per sample, so accumulation still equals
// the whole batch), samples with guidance against the null context with every sampler, and
// round-trips through a checkpoint with its null context.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <ldm/ldm.hpp>
#include <vector>

#include "support/small_pipeline.hpp"

using namespace ldm;
using test::largest_difference;

namespace {

// test::Small whose UNet attends (at its coarser level and in the mid block) to 3 tokens of 6
// channels.
struct SmallContext : test::Small {
  static constexpr UNetConditionConfig unet = test::small_cross_attention_unet;
  static constexpr index_t context_tokens = 3;
};
using Model = LatentDiffusion<SmallContext>;
template <index_t N>
using Images = View<const float, Model::images<N>>;
template <index_t N>
using Latents = Model::latents<N>;
template <index_t N>
using Context = Tensor<float, Model::context<N>>;

TrainingOptions with_context_dropout(double p) {
  TrainingOptions options;
  options.context_dropout = p;
  return options;
}

template <index_t N>
Context<N> some_context(std::uint64_t k) {
  Context<N> c;
  c = randn<Model::context<N>>(200, k);
  return c;
}

// Moves the UNet from its initialisation, so that its contexts matter.
void train_a_little(Model& model) {
  const auto x = test::small_batch<4>(1);
  const auto c = some_context<4>(1);
  for (int step = 0; step < 3; ++step)
    model.diffusion_step<4>(x, c);
}

}  // namespace

TEST_CASE("the configuration's context, and an unconditional one unchanged") {
  static_assert(Model::context_conditional && Model::context_tokens == 3);
  static_assert(
      std::is_same_v<Model::UNet, models::UNetCondition<float, host, 2, 8, 3, SmallContext::unet>>);
  static_assert(std::is_same_v<Model::context<2>, Shape<2, 3, 6>>);
  static_assert(!LatentDiffusion<test::Small>::context_conditional);
  static_assert(std::is_same_v<LatentDiffusion<test::Small>::UNet,
                               models::UNet<float, host, 2, 8, test::Small::unet>>);
  Model model(1);
  CHECK(model.null_context() == std::vector<float>(18, 0.0f));
}

TEST_CASE("the context reaches the UNet in training; a context that is not finite is skipped") {
  const auto x = test::small_batch<4>(3);
  const auto c = some_context<4>(3), other = some_context<4>(4);
  Model a(7), b(7), same(7);
  const double la = a.diffusion_step<4>(x, c).loss;
  CHECK(la == same.diffusion_step<4>(x, c).loss);
  CHECK(la != b.diffusion_step<4>(x, other).loss);

  Context<4> bad = c;
  bad.data()[5] = NAN;
  Model guarded(7);
  const auto result = guarded.diffusion_step<4>(x, bad);
  CHECK(result.skipped);
  CHECK(std::string(result.skipped_steps.cause) == "input (the context)");
  CHECK(guarded.diffusion_steps() == 0);
}

TEST_CASE("context dropout 1 trains on the null context alone; 0 on the contexts") {
  const auto x = test::small_batch<4>(3);
  const auto c = some_context<4>(3);
  Context<4> zeros;
  zeros = 0.0f;
  Model dropped(7, with_context_dropout(1)), null(7), given(7);
  const double a = dropped.diffusion_step<4>(x, c).loss;
  CHECK(a == null.diffusion_step<4>(x, zeros).loss);
  CHECK(a != given.diffusion_step<4>(x, c).loss);

  SUBCASE("a set null context is what dropout trains on") {
    const auto own = some_context<1>(9);
    Context<4> owns;
    for (index_t n = 0; n < 4; ++n)
      owns.batch<1>(n) = own;
    Model set(7, with_context_dropout(1)), explicit_null(7);
    set.set_null_context(own);
    CHECK(set.diffusion_step<4>(x, c).loss == explicit_null.diffusion_step<4>(x, owns).loss);
  }
}

TEST_CASE("two micro-batches of 2 with contexts make the step one batch of 4 makes, dropout on") {
  const auto x = test::small_batch<4>(2);
  const auto c = some_context<4>(2);
  Model whole(5, with_context_dropout(0.5)), split(5, with_context_dropout(0.5)),
      undropped(5, with_context_dropout(0.0));
  whole.set_scaling_factor(0.8), split.set_scaling_factor(0.8), undropped.set_scaling_factor(0.8);
  const auto a = whole.diffusion_step<4>(x, c);
  const auto b = split.diffusion_step<2>(2, [&](index_t j) {
    return Model::context_batch<2>{Images<2>(x.batch<2>(2 * j)),
                                   View<const float, Model::context<2>>(c.batch<2>(2 * j))};
  });
  CHECK(b.loss == doctest::Approx(a.loss).epsilon(1e-6));
  CHECK(b.grad_norm == doctest::Approx(a.grad_norm).epsilon(1e-5));
  // Dropout 0.5 on these four samples drops some: the step differs from one without dropout.
  CHECK(undropped.diffusion_step<4>(x, c).loss != a.loss);
}

TEST_CASE("guided sampling is pred_null + w (pred_context - pred_null) at every step") {
  Model model(11, with_context_dropout(0.3));
  train_a_little(model);
  model.set_null_context(some_context<1>(7));
  const auto sampler = std::get<diffusion::DDIM>(model.sampler(4));
  const auto c = some_context<2>(5);
  constexpr double w = 3;
  Tensor<float, Latents<2>> start;
  start = randn<Latents<2>>(21, 0);

  Tensor<float, Latents<2>> guided = start;
  model.denoise<2>(sampler, 0, 9, true, pipeline::ContextConditioning{c.view(), w}, guided.view());

  // The same loop written out: the two predictions as separate batches of 2.
  const auto& unet = model.ema_unet();
  typename Model::UNet::Saved<2> saved;
  Context<2> nulls;
  const auto null = model.null_context();
  for (std::size_t i = 0; i < std::size_t(nulls.size); ++i)
    nulls.data()[i] = null[i % null.size()];
  const auto x =
      test::guided_by_hand(sampler, start, w, [&](auto& x, auto& t, bool cond, auto eps) {
        unet.forward<2>(x, t, cond ? c : nulls, saved, eps);
      });
  const double scale = max(abs(x));
  CHECK(largest_difference(guided.data(), x.data(), std::size_t(x.size)) < 1e-5 * scale);

  SUBCASE("guidance 0 is the null context's sample, 1 the conditional one") {
    Tensor<float, Latents<2>> zero = start, none = start, one = start;
    model.denoise<2>(sampler, 0, 9, true, pipeline::ContextConditioning{c.view(), 0.0},
                     zero.view());
    model.denoise<2>(sampler, 0, 9, true, none.view());
    CHECK(largest_difference(zero.data(), none.data(), std::size_t(x.size)) < 1e-5 * scale);
    model.denoise<2>(sampler, 0, 9, true, pipeline::ContextConditioning{c.view()}, one.view());
    CHECK(largest_difference(one.data(), none.data(), std::size_t(x.size)) > 1e-3 * scale);
  }
}

TEST_CASE("every sampler takes guidance") {
  Model model(12, with_context_dropout(0.3));
  train_a_little(model);
  const auto c = some_context<2>(6);
  Tensor<float, Model::images<2>> guided, plain;
  for (const char* name : {"DDIMScheduler", "DDPMScheduler", "EulerDiscreteScheduler",
                           "EulerAncestralDiscreteScheduler", "HeunDiscreteScheduler",
                           "DPMSolverMultistepScheduler", "UniPCMultistepScheduler"}) {
    CAPTURE(name);
    const auto sampler = model.sampler(3, {{"_class_name", name}});
    model.sample<2>(sampler, 4, pipeline::ContextConditioning{c.view(), 2.0}, guided.view());
    model.sample<2>(sampler, 4, pipeline::ContextConditioning{c.view(), 1.0}, plain.view());
    CHECK(std::all_of(guided.data(), guided.data() + guided.size,
                      [](float v) { return std::isfinite(v); }));
    CHECK(largest_difference(guided.data(), plain.data(), std::size_t(guided.size)) > 0);
  }
}

TEST_CASE("misuse is an ldm::Error naming what was wrong") {
  Model model(3);
  model.set_scaling_factor(1);
  Tensor<float, Model::images<2>> out;
  auto c = some_context<2>(1);
  CHECK_THROWS_WITH_AS(model.sample<2>(model.sampler(2), 1,
                                       pipeline::ContextConditioning{c.view(), NAN}, out.view()),
                       doctest::Contains("sample: guidance_scale"), Error);
  c.data()[3] = INFINITY;
  CHECK_THROWS_WITH_AS(model.sample<2>(model.sampler(2), 1,
                                       pipeline::ContextConditioning{c.view(), 2.0}, out.view()),
                       doctest::Contains("sample: the context holds a NaN"), Error);
  auto null = some_context<1>(1);
  null.data()[2] = NAN;
  CHECK_THROWS_WITH_AS(model.set_null_context(null), doctest::Contains("set_null_context: value 2"),
                       Error);
  CHECK_THROWS_WITH_AS(Model(1, with_context_dropout(-0.1)),
                       doctest::Contains("TrainingOptions: context_dropout"), Error);
  CHECK_THROWS_WITH_AS(LatentDiffusion<test::Small>(1, with_context_dropout(0.1)),
                       doctest::Contains("no cross-attention"), Error);
}

TEST_CASE("a context checkpoint round-trips with its null context; other models refuse it") {
  Model model(13, with_context_dropout(0.3));
  train_a_little(model);
  model.set_null_context(some_context<1>(8));
  const auto folder = std::filesystem::temp_directory_path() / "ldm_test_context_conditioning";
  std::filesystem::remove_all(folder);
  model.save(folder);
  CHECK(pipeline::read_json(std::filesystem::canonical(folder) / "unet" / "config.json")
            .at("_class_name") == "UNet2DConditionModel");
  Model loaded(99);
  loaded.load(folder);
  CHECK(loaded.null_context() == model.null_context());
  const auto c = some_context<2>(3);
  Tensor<float, Model::images<2>> a, b, p, q;
  const auto sampler = model.sampler(3);
  model.sample<2>(sampler, 5, pipeline::ContextConditioning{c.view(), 2.0}, a.view());
  loaded.sample<2>(sampler, 5, pipeline::ContextConditioning{c.view(), 2.0}, b.view());
  CHECK(largest_difference(a.data(), b.data(), std::size_t(a.size)) == 0);
  model.sample<2>(sampler, 5, p.view());
  loaded.sample<2>(sampler, 5, q.view());
  CHECK(largest_difference(p.data(), q.data(), std::size_t(p.size)) == 0);
  LatentDiffusion<test::Small> unconditional(1);
  CHECK_THROWS_WITH_AS(unconditional.load(folder), doctest::Contains("unet/config.json"), Error);
  std::filesystem::remove_all(folder);
}
