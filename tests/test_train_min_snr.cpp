// Min-SNR-gamma weighting and offset noise: the weights against diffusers' compute_snr and
// train_text_to_image.py (tests/golden/min_snr.json, from tools/golden/make_training_golden.py),
// the weighted loss and its gradient (finite differences), the weighting inside
// diffusion_loss_and_gradients, the offset noise's draws, and the options' checks.
#include <doctest/doctest.h>

#include <cmath>
#include <ldm/ldm.hpp>
#include <limits>
#include <string>
#include <vector>

#include "support/small_pipeline.hpp"

using namespace ldm;
using diffusion::PredictionType;

namespace {
using test::Small;
using Model = LatentDiffusion<Small>;
using UNet = Model::UNet;

const pipeline::json& golden() {
  static const auto file =
      pipeline::read_json(std::string(LDM_TEST_DATA_DIR) + "/golden/min_snr.json");
  return file;
}

diffusion::Schedule schedule_of(const pipeline::json& config) {
  diffusion::ScheduleConfig schedule;
  schedule.beta_schedule =
      diffusion::parse_name<diffusion::BetaSchedule>(config["beta_schedule"].get<std::string>());
  if (config.contains("beta_start")) schedule.beta_start = config["beta_start"].get<double>();
  if (config.contains("beta_end")) schedule.beta_end = config["beta_end"].get<double>();
  return diffusion::Schedule(schedule);
}

std::vector<float> gradients(nn::Owned<UNet>& unet) {
  const auto g = unet.grads();
  return {g.data(), g.data() + UNet::parameter_count};
}

// The golden loss batch: four samples of 18 values (per-sample order does not matter to a mean).
using LossBatch = Shape<4, 3, 3, 2>;
Tensor<float, LossBatch> golden_tensor(const char* name) {
  const auto& values = golden()["loss_batch"][name];
  REQUIRE(values.size() == std::size_t(LossBatch::size));
  Tensor<float, LossBatch> t;
  for (index_t i = 0; i < LossBatch::size; ++i)
    t.data()[i] = values[std::size_t(i)].get<float>();
  return t;
}
}  // namespace

TEST_CASE("Min-SNR-gamma weights are diffusers' for both prediction types") {
  // compute_snr works in float32 from the (here float64) alphas_cumprod: a few float ulps.
  constexpr double tolerance = 2e-6;
  const auto& timesteps = golden()["timesteps"];
  REQUIRE(golden()["cases"].size() == 8);
  for (const auto& c : golden()["cases"]) {
    const auto schedule = schedule_of(c["config"]);
    const auto type =
        diffusion::parse_name<diffusion::PredictionType>(c["prediction_type"].get<std::string>());
    const double gamma = c["gamma"].get<double>();
    CAPTURE(c["schedule"].get<std::string>());
    CAPTURE(c["prediction_type"].get<std::string>());
    CAPTURE(gamma);
    for (std::size_t i = 0; i < timesteps.size(); ++i) {
      const int t = timesteps[i].get<int>();
      CAPTURE(t);
      const double abar = schedule.alpha_cumprod(t);
      CHECK(abar / (1 - abar) == doctest::Approx(c["snr"][i].get<double>()).epsilon(tolerance));
      CHECK(train::min_snr_weight(abar, type, gamma) ==
            doctest::Approx(c["weights"][i].get<double>()).epsilon(tolerance));
    }
  }
}

TEST_CASE("the weighted loss is train_text_to_image.py's, and its gradient is the loss's") {
  const auto prediction = golden_tensor("prediction"), target = golden_tensor("target");
  Tensor<std::int32_t, Shape<4>> timesteps;
  for (index_t n = 0; n < 4; ++n)
    timesteps[n] = golden()["loss_batch"]["timesteps"][std::size_t(n)].get<std::int32_t>();
  for (const auto& c : golden()["cases"]) {
    const auto type =
        diffusion::parse_name<diffusion::PredictionType>(c["prediction_type"].get<std::string>());
    CAPTURE(c["schedule"].get<std::string>());
    CAPTURE(c["prediction_type"].get<std::string>());
    CAPTURE(c["gamma"].get<double>());
    const auto weights =
        train::min_snr_weights(schedule_of(c["config"]), type, c["gamma"].get<double>(),
                               View<const std::int32_t, Shape<4>>(timesteps));
    const View<const double, Shape<4>> w = weights;
    auto loss = [&](const Tensor<float, LossBatch>& p) {
      return train::weighted_mse_forward(View<const float, LossBatch>(p),
                                         View<const float, LossBatch>(target), w);
    };
    CHECK(loss(prediction) == doctest::Approx(c["loss"].get<double>()).epsilon(2e-6));

    // The loss is quadratic: central differences are exact but for rounding.
    constexpr double upstream = 0.7;
    constexpr float h = 1.0f / 64;
    Tensor<float, LossBatch> gradient;
    train::weighted_mse_backward(View<const float, LossBatch>(prediction),
                                 View<const float, LossBatch>(target), w, upstream,
                                 gradient.view());
    const double scale = max(abs(gradient));
    for (index_t i = 0; i < LossBatch::size; ++i) {
      CAPTURE(i);
      auto up = prediction, down = prediction;
      up.data()[i] += h, down.data()[i] -= h;
      const double numeric = upstream * (loss(up) - loss(down)) / double(2 * h);
      CHECK(std::abs(gradient.data()[i] - numeric) < 1e-5 * scale);
    }
  }
}

TEST_CASE("diffusion_loss_and_gradients with snr_gamma weighs each sample's loss and gradients") {
  // Without dropout a sample's prediction does not depend on its batch, so the weighted loss of a
  // batch of two is the weighted mean of the two samples' own unweighted losses, and so are the
  // gradients.
  const auto schedule = diffusion::Schedule(Small::schedule::config);
  nn::Owned<UNet> unet(3);
  using Two = UNet::sample<2>;
  using One = UNet::sample<1>;
  Tensor<float, Two> x0, noise;
  x0 = randn<Two>(1, 1);
  noise = randn<Two>(1, 2);
  Tensor<std::int32_t, Shape<2>> timesteps;
  timesteps[0] = 30, timesteps[1] = 700;
  constexpr double gamma = 5;
  for (auto type : {PredictionType::epsilon, PredictionType::v_prediction}) {
    CAPTURE(diffusion::to_string(type));
    UNet::Saved<2> saved2;
    unet.grads() = 0.0f;
    const double weighted = train::diffusion_loss_and_gradients<2>(
        *unet, saved2, x0, noise, timesteps, schedule, type, nn::Mode{true},
        View<const std::int32_t, Shape<2>>(nullptr), {.snr_gamma = gamma, .gradient_scale = 0.5});
    const auto weighted_grads = gradients(unet);

    double expected = 0;
    std::vector<double> expected_grads(weighted_grads.size());
    for (index_t n = 0; n < 2; ++n) {
      UNet::Saved<1> saved1;
      Tensor<std::int32_t, Shape<1>> t;
      t[0] = timesteps[n];
      unet.grads() = 0.0f;
      const double alone = train::diffusion_loss_and_gradients<1>(
          *unet, saved1, View<const float, One>(x0.batch<1>(n)),
          View<const float, One>(noise.batch<1>(n)), t, schedule, type);
      const double w = train::min_snr_weight(schedule.alpha_cumprod(timesteps[n]), type, gamma);
      expected += w * alone / 2;
      const auto grads = gradients(unet);
      for (std::size_t i = 0; i < grads.size(); ++i)
        expected_grads[i] += 0.5 * w * grads[i] / 2;  // the mean over 2, and gradient_scale
    }
    CHECK(weighted == doctest::Approx(expected).epsilon(1e-6));
    double difference = 0, largest = 0;
    for (std::size_t i = 0; i < expected_grads.size(); ++i) {
      difference = std::max(difference, std::abs(weighted_grads[i] - expected_grads[i]));
      largest = std::max(largest, std::abs(expected_grads[i]));
    }
    CHECK(difference < 1e-5 * largest);
  }
}

TEST_CASE("offset noise adds one draw per sample and channel, placed by the sample's index") {
  using Noise = Shape<4, 3, 3, 2>;
  Tensor<float, Noise> whole;
  whole = 0.0f;
  train::add_offset_noise(whole.view(), 0.1, 5, 6);
  Tensor<float, Shape<4, 2>> draws;
  draws = randn<Shape<4, 2>>(5, 6);
  for (index_t n = 0; n < 4; ++n)
    for (index_t i = 0; i < 9; ++i)
      for (index_t c = 0; c < 2; ++c)
        CHECK(whole.data()[(n * 9 + i) * 2 + c] == 0.1f * draws.data()[n * 2 + c]);
  // The second half of the batch, given its first sample, draws the whole batch's second half.
  using Half = Shape<2, 3, 3, 2>;
  Tensor<float, Half> half;
  half = 0.0f;
  train::add_offset_noise(half.view(), 0.1, 5, 6, 2);
  for (index_t i = 0; i < Half::size; ++i)
    CHECK(half.data()[i] == whole.data()[Half::size + i]);
  // 0 leaves the noise as it is.
  Tensor<float, Noise> kept;
  kept = 1.0f;
  train::add_offset_noise(kept.view(), 0.0, 5, 6);
  CHECK(min(kept) == 1.0f);
  CHECK(max(kept) == 1.0f);
}

TEST_CASE("the options turn Min-SNR and offset noise on in diffusion_step, and only them") {
  TrainingOptions plain, weighted, offset;
  // epsilon: every weight is at most 1, and below 1 where snr > gamma (all but t near T)
  weighted.snr_gamma = 1e-4;
  offset.noise_offset = 0.5;
  Model a(8, plain), b(8, weighted), c(8, offset);
  const auto batch = test::small_batch<4>(1);
  const double plain_loss = a.diffusion_step<4>(batch).loss;
  const double weighted_loss = b.diffusion_step<4>(batch).loss;
  const double offset_loss = c.diffusion_step<4>(batch).loss;
  CHECK(weighted_loss < plain_loss);
  CHECK(offset_loss != plain_loss);
  // The autoencoder's step does not use them.
  Model d(8, plain), e(8, weighted);
  CHECK(d.autoencoder_step<4>(batch).losses.total == e.autoencoder_step<4>(batch).losses.total);
}

TEST_CASE("snr_gamma and noise_offset are checked at construction, by name") {
  for (double bad :
       {-1.0, std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity()}) {
    CAPTURE(bad);
    TrainingOptions gamma;
    gamma.snr_gamma = bad;
    CHECK_THROWS_WITH_AS(Model(1, gamma), doctest::Contains("TrainingOptions: snr_gamma"), Error);
    TrainingOptions offset;
    offset.noise_offset = bad;
    CHECK_THROWS_WITH_AS(Model(1, offset), doctest::Contains("TrainingOptions: noise_offset"),
                         Error);
  }
}
