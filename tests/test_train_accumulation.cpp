// Gradient accumulation in LatentDiffusion: k micro-batches of N make the step one batch of k * N
// makes (losses, gradient norms, optimiser moments and weights), with every option that draws
// noise on, and k = 1 is the single-batch step bit for bit. Dropout masks follow a micro-batch's
// place in the whole batch.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <ldm/ldm.hpp>
#include <string>
#include <vector>

#include "support/small_pipeline.hpp"

using namespace ldm;

namespace {
using test::Small;
using Model = LatentDiffusion<Small>;
template <index_t N>
using Images = View<const float, Model::images<N>>;

// The largest difference between two buffers, against the largest magnitude in the first.
double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double difference = 0, scale = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    difference = std::max(difference, std::abs(double(a[i]) - double(b[i])));
    scale = std::max(scale, std::abs(double(a[i])));
  }
  return difference / scale;
}
// How many weights two models hold more than tolerance * lr apart, leaving out those whose
// gradient (read from the first model's exp_avg) is rounding noise: below 1e-6 of the largest.
// AdamW moves each weight by about lr * m / (sqrt(v) + eps), which normalises a gradient however
// small: a gradient that is zero in exact arithmetic (an attention key's bias: softmax ignores a
// shift of all keys) moves its weight by a fraction of lr set by its rounding noise alone.
std::size_t weights_apart(const std::vector<float>& a, const std::vector<float>& b,
                          const std::vector<float>& exp_avg, double lr, double tolerance) {
  REQUIRE(a.size() == b.size());
  REQUIRE(a.size() == exp_avg.size());
  double largest = 0;
  for (float m : exp_avg)
    largest = std::max(largest, std::abs(double(m)));
  std::size_t apart = 0, noise = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::abs(double(a[i]) - double(b[i])) <= tolerance * lr) continue;
    if (std::abs(double(exp_avg[i])) < 1e-6 * largest)
      ++noise;
    else
      ++apart;
  }
  MESSAGE(noise << " of " << a.size() << " weights with a rounding-noise gradient differ");
  return apart;
}

TrainingOptions with_every_draw() {
  TrainingOptions options;
  options.dropout = 0.2f;
  options.snr_gamma = 5;
  options.noise_offset = 0.1;
  return options;
}

// Tolerances. The split step sums the same per-sample terms as the whole one, in another order
// and in float (the convolutions' weight gradients add the batch's samples in their own order):
// gradients agree to a few float ulps of their size, about 1e-6 relative. The losses are means of
// double sums, closer still. AdamW's first step moves each weight by lr * g / (|g| + eps), which
// magnifies a relative error of g only where |g| is near eps; 1e-3 lr bounds that with margin.
constexpr double kLossTolerance = 1e-6, kGradientTolerance = 1e-5, kWeightToleranceInLr = 1e-3;

void check_same_autoencoder(Model& whole, Model& split, const AutoencoderStepResult& a,
                            const AutoencoderStepResult& b) {
  CHECK(b.losses.total == doctest::Approx(a.losses.total).epsilon(kLossTolerance));
  CHECK(b.losses.pixel == doctest::Approx(a.losses.pixel).epsilon(kLossTolerance));
  CHECK(b.losses.perceptual == doctest::Approx(a.losses.perceptual).epsilon(kLossTolerance));
  CHECK(b.losses.kl == doctest::Approx(a.losses.kl).epsilon(kLossTolerance));
  CHECK(b.grad_norm == doctest::Approx(a.grad_norm).epsilon(kGradientTolerance));
  // After one step exp_avg is (1 - beta1) times the clipped gradient.
  CHECK(relative_difference(whole.autoencoder_optimizer().exp_avg_host(),
                            split.autoencoder_optimizer().exp_avg_host()) < kGradientTolerance);
  CHECK(weights_apart(whole.autoencoder_values_host(), split.autoencoder_values_host(),
                      whole.autoencoder_optimizer().exp_avg_host(),
                      whole.options().autoencoder_optimizer.lr, kWeightToleranceInLr) == 0);
}

// `weights`: compare the weights too. After a second step they are not compared: the weights
// that the first moved by rounding noise (see weights_apart) feed every gradient of the second.
void check_same_diffusion(Model& whole, Model& split, const DiffusionStepResult& a,
                          const DiffusionStepResult& b, bool weights = true) {
  CHECK(split.scaling_factor() == whole.scaling_factor());
  CHECK(b.loss == doctest::Approx(a.loss).epsilon(kLossTolerance));
  CHECK(b.grad_norm == doctest::Approx(a.grad_norm).epsilon(kGradientTolerance));
  CHECK(relative_difference(whole.unet_optimizer().exp_avg_host(),
                            split.unet_optimizer().exp_avg_host()) < kGradientTolerance);
  if (!weights) return;
  const auto exp_avg = whole.unet_optimizer().exp_avg_host();
  const double lr = whole.options().unet_optimizer.lr;
  CHECK(weights_apart(whole.training_unet_values_host(), split.training_unet_values_host(), exp_avg,
                      lr, kWeightToleranceInLr) == 0);
  CHECK(weights_apart(whole.ema_unet_values_host(), split.ema_unet_values_host(), exp_avg, lr,
                      kWeightToleranceInLr) == 0);
}
}  // namespace

TEST_CASE("two micro-batches of 2 make the step one batch of 4 makes") {
  for (const auto& [name, options] :
       {std::pair{"default options", TrainingOptions{}},
        std::pair{"dropout, Min-SNR and offset noise", with_every_draw()}}) {
    CAPTURE(name);
    Model whole(3, options), split(3, options);
    const auto batch = test::small_batch<4>(7);
    int calls = 0;
    auto micro_batch = [&](index_t j) {
      CHECK(j == calls++);
      return Images<2>(batch.batch<2>(2 * j));
    };
    const auto a = whole.autoencoder_step<4>(batch);
    const auto b = split.autoencoder_step<2>(2, micro_batch);
    CHECK(calls == 2);
    check_same_autoencoder(whole, split, a, b);
    // Both measure the scaling factor on their first batch; the split one sees half of it.
    whole.set_scaling_factor(0.8), split.set_scaling_factor(0.8);
    for (int step = 0; step < 2; ++step) {
      CAPTURE(step);
      const auto diffusion_batch = test::small_batch<4>(20 + std::uint64_t(step));
      const auto c = whole.diffusion_step<4>(diffusion_batch);
      const auto d = split.diffusion_step<2>(
          2, [&](index_t j) { return Images<2>(diffusion_batch.batch<2>(2 * j)); });
      check_same_diffusion(whole, split, c, d, step == 0);
    }
  }
}

TEST_CASE("v-prediction with Min-SNR accumulates too") {
  TrainingOptions options = with_every_draw();
  options.prediction_type = diffusion::PredictionType::v_prediction;
  Model whole(4, options), split(4, options);
  whole.set_scaling_factor(0.8), split.set_scaling_factor(0.8);
  const auto batch = test::small_batch<4>(9);
  const auto a = whole.diffusion_step<4>(batch);
  const auto b =
      split.diffusion_step<2>(2, [&](index_t j) { return Images<2>(batch.batch<2>(2 * j)); });
  check_same_diffusion(whole, split, a, b);
}

TEST_CASE("one micro-batch through the accumulating step is the single-batch step, bit for bit") {
  Model single(5, with_every_draw()), accumulating(5, with_every_draw());
  for (std::uint64_t k = 0; k < 2; ++k) {
    const auto x = test::small_batch<4>(k);
    const auto a = single.autoencoder_step<4>(x);
    const auto b = accumulating.autoencoder_step<4>(1, [&](index_t) { return Images<4>(x); });
    CHECK(a.losses.total == b.losses.total);
    CHECK(a.grad_norm == b.grad_norm);
  }
  for (std::uint64_t k = 0; k < 2; ++k) {
    const auto x = test::small_batch<4>(10 + k);
    const auto a = single.diffusion_step<4>(x);
    const auto b = accumulating.diffusion_step<4>(1, [&](index_t) { return Images<4>(x); });
    CHECK(a.loss == b.loss);
    CHECK(a.grad_norm == b.grad_norm);
  }
  CHECK(single.scaling_factor() == accumulating.scaling_factor());
  CHECK(single.autoencoder_values_host() == accumulating.autoencoder_values_host());
  CHECK(single.training_unet_values_host() == accumulating.training_unet_values_host());
  CHECK(single.ema_unet_values_host() == accumulating.ema_unet_values_host());
}

TEST_CASE("the first diffusion step measures the scaling factor on micro-batch 0") {
  Model split(6), alone(6);
  const auto batch = test::small_batch<4>(3);
  split.diffusion_step<2>(2, [&](index_t j) { return Images<2>(batch.batch<2>(2 * j)); });
  alone.measure_scaling_factor<2>(Images<2>(batch.batch<2>(0)));
  CHECK(split.scaling_factor() == alone.scaling_factor());
}

TEST_CASE("micro_batches below 1 are refused by name, before any work") {
  Model model(7);
  const auto x = test::small_batch<2>(0);
  auto batch_of = [&](index_t) { return Images<2>(x); };
  for (index_t k : {index_t(0), index_t(-1)}) {
    CHECK_THROWS_WITH_AS(model.autoencoder_step<2>(k, batch_of),
                         doctest::Contains("autoencoder_step: micro_batches"), Error);
    CHECK_THROWS_WITH_AS(model.diffusion_step<2>(k, batch_of),
                         doctest::Contains("diffusion_step: micro_batches"), Error);
  }
  CHECK(model.autoencoder_steps() == 0);
  CHECK(model.diffusion_steps() == 0);
  CHECK(model.scaling_factor() == 1);
}

TEST_CASE("a part of a tensor drops the elements the whole tensor drops") {
  // Three elements per sample: the second half starts inside a Philox block of four.
  using Whole = Shape<4, 3, 1, 1>;
  using Half = Shape<2, 3, 1, 1>;
  Tensor<float, Whole> x, whole;
  x = randn<Whole>(1, 2) + 3.0f;
  ops::dropout_forward(View<const float, Whole>(x), 0.5f, 9, 4, whole.view());
  for (index_t part = 0; part < 2; ++part) {
    CAPTURE(part);
    Tensor<float, Half> y, dx;
    ops::dropout_forward(View<const float, Half>(x.batch<2>(2 * part)), 0.5f, 9, 4, y.view(),
                         std::uint64_t(part * Half::size));
    ops::dropout_backward(View<const float, Half>(x.batch<2>(2 * part)), 0.5f, 9, 4, dx.view(),
                          std::uint64_t(part * Half::size));
    for (index_t i = 0; i < Half::size; ++i) {
      CHECK(y[i] == whole[part * Half::size + i]);
      CHECK(dx[i] == whole[part * Half::size + i]);
    }
  }
  CHECK(min(whole) == 0);  // some were dropped
}
