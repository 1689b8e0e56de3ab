// The sigma samplers (Euler, Euler ancestral, Heun) beyond their golden trajectories
// (tests/test_sampler_trajectories.cpp): what can be checked by hand, an oracle model's
// trajectory, image-to-image from a fresh State, their scheduler_config fields, refused settings,
// and the pipeline driving each.
#include <doctest/doctest.h>

#include "support/errors.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <ldm/io/json.hpp>
#include <ldm/ldm.hpp>
#include <span>
#include <string>
#include <variant>
#include <vector>

using namespace ldm;
using namespace ldm::diffusion;
using json = ldm::io::Json;
using test::check_message;
using test::error_of;

static_assert(Sampler<EulerDiscrete>);
static_assert(Sampler<EulerAncestralDiscrete>);
static_assert(Sampler<HeunDiscrete>);

namespace {

using S = Shape<2, 4, 4, 3>;

template <class T, ShapeType Sh>
std::span<const float> span_of(const Tensor<T, Sh>& t) {
  return {t.data(), std::size_t(Sh::size)};
}

double largest_difference(const Tensor<float, S>& a, const Tensor<float, S>& b) {
  double largest = 0;
  for (index_t i = 0; i < S::size; ++i)
    largest = std::max(largest, std::abs(double(a[i]) - double(b[i])));
  return largest;
}

// A model that knows x0: at noise level sigma it returns the exact noise (x - x0) / sigma, or the
// velocity of the variance-preserving sample the model sees.
struct Oracle {
  Tensor<float, S> x0;
  PredictionType type;

  void operator()(const Tensor<float, S>& x, double sigma, Tensor<float, S>& out) const {
    const double alpha = 1 / std::sqrt(sigma * sigma + 1);
    if (type == PredictionType::epsilon)
      out = (1 / sigma) * (in_double(x) - in_double(x0));
    else
      out = (alpha / sigma) * (in_double(x) - in_double(x0)) - sigma * alpha * in_double(x0);
  }
};

// Runs `sampler` from evaluation `first` on x with the model, drawing noise from `seed`. With
// `eps`, returns the largest distance of x after each evaluation from the trajectory
// x0 + sigma eps, sigma being the next evaluation's (or the final sigma after the last).
template <Sampler Smp>
double run(const Smp& sampler, std::size_t first, const Oracle& model, Tensor<float, S>& x,
           const Tensor<float, S>* eps = nullptr) {
  typename Smp::template State<S, host> state{};
  Tensor<float, S> output, on_trajectory;
  const std::size_t evaluations = sampler.timesteps().size();
  double largest = 0;
  for (std::size_t i = first; i < evaluations; ++i) {
    model(x, sampler.noise_level(i).noise, output);
    sampler.step(i, state, View<const float, S>(output), View<const float, S>(x),
                 randn<S>(3, i + 1), x.view());
    if (!eps) continue;
    const double sigma =
        i + 1 < evaluations ? sampler.noise_level(i + 1).noise : sampler.sigmas().back();
    on_trajectory = in_double(model.x0) + sigma * in_double(*eps);
    largest = std::max(largest, largest_difference(x, on_trajectory));
  }
  return largest;
}

const Schedule kScaledLinear(ScaledLinearBetas<1000>::config);

}  // namespace

TEST_CASE("sigma samplers: timesteps and sigmas as diffusers spaces them, checked by hand") {
  const std::vector<double> table = schedule_sigmas(kScaledLinear);
  SUBCASE("linspace is not rounded (DDIM's is), and each sigma is interpolated at its timestep") {
    const EulerDiscrete euler(kScaledLinear, {}, 7);  // 999 / 6 = 166.5 apart
    const std::vector<double> expected{999, 832.5, 666, 499.5, 333, 166.5, 0};
    CHECK(std::ranges::equal(euler.timesteps(), expected));
    CHECK(euler.sigmas().size() == 8);
    CHECK(euler.sigmas()[0] == table[999]);
    CHECK(euler.sigmas()[1] == doctest::Approx((table[832] + table[833]) / 2).epsilon(1e-14));
    CHECK(euler.sigmas()[6] == table[0]);
    CHECK(euler.sigmas()[7] == 0);
    CHECK(euler.init_noise_sigma() == table[999]);
    const DDIM ddim(kScaledLinear, {.timestep_spacing = TimestepSpacing::linspace}, 7);
    CHECK(ddim.timesteps()[1] == 832);
  }
  SUBCASE("leading with an offset, trailing; leading's initial noise as a VP sample's") {
    const EulerAncestralDiscrete leading(
        kScaledLinear, {.timestep_spacing = TimestepSpacing::leading, .steps_offset = 1}, 4);
    CHECK(std::ranges::equal(leading.timesteps(), std::vector<double>{751, 501, 251, 1}));
    CHECK(leading.sigmas()[0] == table[751]);
    CHECK(leading.init_noise_sigma() == std::sqrt(table[751] * table[751] + 1));
    const EulerDiscrete trailing(kScaledLinear, {.timestep_spacing = TimestepSpacing::trailing}, 4);
    CHECK(std::ranges::equal(trailing.timesteps(), std::vector<double>{999, 749, 499, 249}));
    CHECK(trailing.init_noise_sigma() == table[999]);
  }
  SUBCASE("input_scale and noise_level: 1 / sqrt(sigma^2 + 1), and signal 1 with noise sigma") {
    const EulerDiscrete euler(kScaledLinear, {}, 5);
    for (std::size_t i = 0; i < 5; ++i) {
      const double sigma = euler.sigmas()[i];
      CHECK(euler.input_scale(i) == doctest::Approx(1 / std::sqrt(sigma * sigma + 1)));
      CHECK(euler.noise_level(i).signal == 1);
      CHECK(euler.noise_level(i).noise == sigma);
    }
  }
  SUBCASE("final_sigmas_type sigma_min ends at the schedule's smallest sigma") {
    const EulerDiscrete euler(kScaledLinear, {.final_sigmas_type = FinalSigmasType::sigma_min}, 5);
    CHECK(euler.sigmas().back() == table[0]);
  }
}

TEST_CASE("Karras sigmas: descending from sigma_max to sigma_min, timesteps their own") {
  const std::vector<double> table = schedule_sigmas(kScaledLinear);
  std::vector<double> log_sigmas;
  for (double sigma : table)
    log_sigmas.push_back(std::log(sigma));
  const EulerDiscrete spaced(kScaledLinear, {}, 12);
  const EulerDiscrete karras(kScaledLinear, {.use_karras_sigmas = true}, 12);
  const auto sigmas = karras.sigmas();
  REQUIRE(sigmas.size() == 13);
  // The bounds default to the spaced sigmas' ends.
  CHECK(sigmas[0] == doctest::Approx(spaced.sigmas()[0]).epsilon(1e-12));
  CHECK(sigmas[11] == doctest::Approx(spaced.sigmas()[11]).epsilon(1e-12));
  CHECK(sigmas[12] == 0);
  for (std::size_t k = 0; k < 12; ++k) {
    INFO("step " << k);
    CHECK(sigmas[k] > sigmas[k + 1]);
    CHECK(karras.timesteps()[k] ==
          doctest::Approx(sigma_to_timestep(sigmas[k], log_sigmas)).epsilon(1e-6));
    if (k > 0) CHECK(karras.timesteps()[k] < karras.timesteps()[k - 1]);
  }
  // Evenly spaced in sigma^(1/7).
  const double first_gap = std::pow(sigmas[0], 1 / 7.0) - std::pow(sigmas[1], 1 / 7.0);
  CHECK(std::pow(sigmas[10], 1 / 7.0) - std::pow(sigmas[11], 1 / 7.0) ==
        doctest::Approx(first_gap).epsilon(1e-9));
  // Explicit bounds replace them; Heun spaces its sigmas the same way.
  const EulerDiscrete bounded(kScaledLinear,
                              {.use_karras_sigmas = true, .sigma_min = 0.5, .sigma_max = 8.0}, 6);
  CHECK(bounded.sigmas()[0] == doctest::Approx(8.0).epsilon(1e-12));
  CHECK(bounded.sigmas()[5] == doctest::Approx(0.5).epsilon(1e-12));
  CHECK(bounded.init_noise_sigma() == doctest::Approx(8.0).epsilon(1e-12));
  const HeunDiscrete heun(kScaledLinear, {.use_karras_sigmas = true}, 12);
  CHECK(std::ranges::equal(heun.sigmas(), karras.sigmas()));
}

TEST_CASE("Heun: two evaluations per step, every timestep but the first twice") {
  const HeunDiscrete heun(kScaledLinear, {}, 4);
  CHECK(heun.evaluations_per_step() == 2);
  CHECK(heun.num_inference_steps() == 4);
  CHECK(std::ranges::equal(heun.timesteps(), std::vector<double>{999, 666, 666, 333, 333, 0, 0}));
  for (std::size_t k = 1; k < 4; ++k) {
    CHECK(heun.noise_level(2 * k - 1).noise == heun.sigmas()[k]);
    CHECK(heun.noise_level(2 * k).noise == heun.sigmas()[k]);
    CHECK(heun.input_scale(2 * k) == heun.input_scale(2 * k - 1));
  }
  CHECK(first_evaluation(heun, 0.5) == 4);  // the last 2 of 4 steps
  CHECK(nn::saved_bytes<HeunDiscrete::State<S, host>> == 2 * sizeof(float) * S::size);
}

TEST_CASE("an oracle model: Euler and Heun stay on x0's trajectory, every sampler ends at x0") {
  Tensor<float, S> x0, eps, x;
  x0 = rand<S>(5) * 1.8f - 0.9f;
  eps = randn<S>(6);
  for (PredictionType type : {PredictionType::epsilon, PredictionType::v_prediction}) {
    for (TimestepSpacing spacing :
         {TimestepSpacing::leading, TimestepSpacing::trailing, TimestepSpacing::linspace}) {
      INFO(to_string(type) << ", " << to_string(spacing));
      const Oracle oracle{x0, type};
      auto start = [&](const auto& sampler, std::size_t first) {
        x = in_double(x0) + sampler.noise_level(first).noise * in_double(eps);
      };
      const EulerDiscrete euler(kScaledLinear,
                                {.prediction_type = type, .timestep_spacing = spacing}, 8);
      const EulerDiscrete karras(
          kScaledLinear,
          {.prediction_type = type, .timestep_spacing = spacing, .use_karras_sigmas = true}, 8);
      const HeunDiscrete heun(kScaledLinear, {.prediction_type = type, .timestep_spacing = spacing},
                              8);
      const EulerAncestralDiscrete ancestral(
          kScaledLinear, {.prediction_type = type, .timestep_spacing = spacing}, 8);
      // Euler and Heun follow the ODE's exact solution, which the oracle's d is the slope of.
      start(euler, 0);
      CHECK(run(euler, 0, oracle, x, &eps) <= 1e-5);
      CHECK(largest_difference(x, x0) <= 1e-5);
      start(karras, 0);
      CHECK(run(karras, 0, oracle, x, &eps) <= 1e-5);
      CHECK(largest_difference(x, x0) <= 1e-5);
      start(heun, 0);
      CHECK(run(heun, 0, oracle, x, &eps) <= 1e-5);
      CHECK(largest_difference(x, x0) <= 1e-5);
      // Heun from part-way (image-to-image), with a fresh State.
      start(heun, first_evaluation(heun, 0.5));
      CHECK(run(heun, first_evaluation(heun, 0.5), oracle, x, &eps) <= 1e-5);
      // Euler ancestral leaves the trajectory with its noise, and its last step lands on x0.
      start(ancestral, 0);
      run(ancestral, 0, oracle, x);
      CHECK(largest_difference(x, x0) <= 1e-5);
    }
  }
  SUBCASE("part-way, Euler is at x0 + sigma eps; with final sigma_min it ends there") {
    const Oracle oracle{x0, PredictionType::epsilon};
    const EulerDiscrete euler(kScaledLinear, {.final_sigmas_type = FinalSigmasType::sigma_min}, 6);
    x = in_double(x0) + euler.sigmas()[0] * in_double(eps);
    CHECK(run(euler, 0, oracle, x, &eps) <= 1e-5);
    Tensor<float, S> expected;
    expected = in_double(x0) + euler.sigmas()[6] * in_double(eps);
    CHECK(largest_difference(x, expected) <= 1e-5);
  }
}

TEST_CASE("image-to-image: a fresh State at first_evaluation continues as the whole trajectory") {
  Tensor<float, S> x0, eps, whole, part;
  x0 = rand<S>(7) * 2.0f - 1.0f;
  eps = randn<S>(8);
  // A model that is not an oracle, so that the trajectory depends on every step.
  const Oracle oracle{Tensor<float, S>(0.5f * in_double(x0)), PredictionType::v_prediction};
  const HeunDiscrete heun(kScaledLinear, {.prediction_type = PredictionType::v_prediction}, 10);
  const EulerAncestralDiscrete ancestral(kScaledLinear, {}, 10);
  auto check_continuation = [&](const auto& sampler) {
    const std::size_t first = first_evaluation(sampler, 0.6);
    CHECK(first == std::size_t(4 * sampler.evaluations_per_step()));
    // The whole trajectory, stopped at `first`...
    whole = in_double(x0) + sampler.noise_level(0).noise * in_double(eps);
    typename std::remove_cvref_t<decltype(sampler)>::template State<S, host> state{};
    Tensor<float, S> output;
    for (std::size_t i = 0; i < first; ++i) {
      oracle(whole, sampler.noise_level(i).noise, output);
      sampler.step(i, state, View<const float, S>(output), View<const float, S>(whole),
                   randn<S>(3, i + 1), whole.view());
    }
    // ...and continued from there with a fresh State, against the whole run on its own.
    part = whole;
    run(sampler, first, oracle, part);
    run(sampler, first, oracle, whole);
    CHECK(std::ranges::equal(span_of(part), span_of(whole)));
  };
  check_continuation(heun);
  check_continuation(ancestral);
}

TEST_CASE("Euler ancestral's noise: sigma_up * noise, as a lazy operand or a tensor") {
  const EulerAncestralDiscrete sampler(kScaledLinear, {}, 10);
  const EulerAncestralStep c = sampler.coefficients(3);
  const double to = sampler.sigmas()[4];
  CHECK(c.sigma_up * c.sigma_up + c.sigma_down * c.sigma_down ==
        doctest::Approx(to * to).epsilon(1e-12));
  CHECK(c.sigma_up ==
        doctest::Approx(std::sqrt(to * to * (c.sigma * c.sigma - to * to) / (c.sigma * c.sigma)))
            .epsilon(1e-12));
  const EulerAncestralStep last = sampler.coefficients(9);
  CHECK(last.sigma_up == 0);
  CHECK(last.sigma_down == 0);

  Tensor<float, S> sample, output, lazy, drawn, quiet, other;
  sample = randn<S>(1) * 5.0f;
  output = randn<S>(2);
  NoState none;
  sampler.step(3, none, View<const float, S>(output), View<const float, S>(sample), randn<S>(9, 4),
               lazy.view());
  const Tensor<float, S> noise(randn<S>(9, 4));
  sampler.step(3, none, View<const float, S>(output), View<const float, S>(sample),
               View<const float, S>(noise), drawn.view());
  CHECK(std::ranges::equal(span_of(lazy), span_of(drawn)));
  sampler.step(3, none, View<const float, S>(output), View<const float, S>(sample), 0.0f,
               quiet.view());
  other = in_double(drawn) - in_double(quiet) - c.sigma_up * in_double(noise);
  CHECK(largest_difference(other, Tensor<float, S>(0.0f)) <= 1e-5);
}

TEST_CASE("Euler without churn and Heun never read their noise; Euler's churn as diffusers'") {
  Tensor<float, S> sample, output, next;
  sample = randn<S>(1) * 5.0f;
  output = randn<S>(2);
  const float nan = std::nanf("");  // any read would make the result NaN
  NoState none;
  const EulerDiscrete euler(kScaledLinear, {}, 10);
  euler.step(3, none, View<const float, S>(output), View<const float, S>(sample), nan, next.view());
  CHECK(std::isfinite(sum(next)));
  const HeunDiscrete heun(kScaledLinear, {.clip_sample = true}, 10);
  HeunDiscrete::State<S, host> state{};
  for (std::size_t i = 0; i < 3; ++i)
    heun.step(i, state, View<const float, S>(output), View<const float, S>(sample), nan,
              next.view());
  CHECK(std::isfinite(sum(next)));

  // Churn raises sigma by gamma = min(s_churn / n, sqrt(2) - 1) at the sigmas in [s_tmin, s_tmax].
  const EulerDiscrete churned(kScaledLinear,
                              {.s_churn = 0.5, .s_tmin = 1.0, .s_tmax = 5.0, .s_noise = 1.5}, 10);
  for (std::size_t i = 0; i < 10; ++i) {
    const EulerStep c = churned.coefficients(i);
    INFO("step " << i << ", sigma " << c.sigma);
    const bool churns = c.sigma >= 1.0 && c.sigma <= 5.0;
    CHECK(c.sigma_hat == doctest::Approx(c.sigma * (churns ? 1.05 : 1.0)).epsilon(1e-14));
    CHECK(c.churn_noise ==
          doctest::Approx(1.5 * std::sqrt(c.sigma_hat * c.sigma_hat - c.sigma * c.sigma)));
  }
  CHECK(churned.coefficients(4).churn_noise > 0);  // sigma_4 is in [1, 5]
  const EulerDiscrete capped(kScaledLinear, {.s_churn = 100}, 10);
  CHECK(capped.coefficients(0).sigma_hat ==
        doctest::Approx(capped.sigmas()[0] * std::sqrt(2.0)).epsilon(1e-14));
  // A churned step reads its noise: x_hat = x + churn_noise * noise, then Euler's step from
  // there, whose epsilon slope d is the model's output whatever x_hat is.
  Tensor<float, S> with_noise, without;
  const Tensor<float, S> noise(randn<S>(9, 4));
  churned.step(4, none, View<const float, S>(output), View<const float, S>(sample),
               View<const float, S>(noise), with_noise.view());
  churned.step(4, none, View<const float, S>(output), View<const float, S>(sample), 0.0f,
               without.view());
  const EulerStep c = churned.coefficients(4);
  Tensor<float, S> difference;
  difference = in_double(with_noise) - in_double(without) - c.churn_noise * in_double(noise);
  CHECK(largest_difference(difference, Tensor<float, S>(0.0f)) <= 1e-5);
}

TEST_CASE("sigma samplers refuse bad settings and misuse, naming them") {
  check_message(error_of([] { EulerDiscrete(kScaledLinear, {}, 0); }),
                {"num_inference_steps", "[1, 1000]", "found 0"});
  check_message(error_of([] { EulerAncestralDiscrete(kScaledLinear, {}, 1001); }),
                {"num_inference_steps", "[1, 1000]", "found 1001"});
  check_message(error_of([] { HeunDiscrete(kScaledLinear, {}, 1001); }),
                {"num_inference_steps", "found 1001"});
  check_message(error_of([] {
                  EulerDiscrete(kScaledLinear,
                                {.timestep_spacing = TimestepSpacing::leading, .steps_offset = -1},
                                10);
                }),
                {"steps_offset", "found -1"});
  check_message(error_of([] {
                  EulerDiscrete(kScaledLinear, {.use_karras_sigmas = true, .sigma_min = 0.0}, 10);
                }),
                {"sigma_min", "positive", "found 0"});
  check_message(error_of([] {
                  EulerDiscrete(kScaledLinear,
                                {.use_karras_sigmas = true, .sigma_min = 5.0, .sigma_max = 1.0},
                                10);
                }),
                {"sigma_min", "sigma_max", "5", "1"});
  check_message(error_of([] {
                  HeunDiscrete(kScaledLinear, {.clip_sample = true, .clip_sample_range = 0}, 10);
                }),
                {"clip_sample_range", "positive", "found 0"});
  check_message(error_of([] { EulerDiscrete(kScaledLinear, {.s_churn = -1}, 10); }),
                {"s_churn", ">= 0", "found -1"});
  check_message(error_of([] { EulerDiscrete(kScaledLinear, {.s_noise = INFINITY}, 10); }),
                {"s_noise", "finite", "found inf"});
  check_message(error_of([] { EulerDiscrete(kScaledLinear, {.s_tmin = NAN}, 10); }),
                {"s_tmin and s_tmax", "nan"});
  const EulerDiscrete euler(kScaledLinear, {}, 10);
  check_message(error_of([&] { euler.input_scale(10); }), {"evaluation", "below 10", "found 10"});
  check_message(error_of([&] { euler.noise_level(11); }), {"evaluation", "below 10"});
  const HeunDiscrete heun(kScaledLinear, {}, 10);
  check_message(error_of([&] { heun.noise_level(19); }), {"evaluation", "below 19", "found 19"});

  // Heun's State must fit the evaluation: an odd one completes the step begun before it.
  Tensor<float, S> sample, output, next;
  sample = randn<S>(1);
  output = randn<S>(2);
  HeunDiscrete::State<S, host> state{};
  check_message(error_of([&] {
                  heun.step(3, state, View<const float, S>(output), View<const float, S>(sample),
                            0.0f, next.view());
                }),
                {"HeunDiscrete", "evaluation 3", "fresh State"});
  heun.step(2, state, View<const float, S>(output), View<const float, S>(sample), 0.0f,
            next.view());
  CHECK(state.first_half_taken);
  check_message(error_of([&] {
                  heun.step(4, state, View<const float, S>(output), View<const float, S>(sample),
                            0.0f, next.view());
                }),
                {"HeunDiscrete", "evaluation 4", "begins a step"});
}

TEST_CASE("scheduler_config.json: the sigma samplers' fields, defaults and refusals") {
  const std::string file = "m/scheduler/scheduler_config.json";
  auto parsed = [&](const std::string& text) {
    return pipeline::parse_scheduler_config(json::parse(text), file);
  };
  SUBCASE("each class's own defaults for the fields left out") {
    const auto euler = parsed(R"({"_class_name": "EulerDiscreteScheduler"})");
    CHECK(euler.timestep_spacing == TimestepSpacing::linspace);
    CHECK_FALSE(euler.use_karras_sigmas);
    CHECK(euler.final_sigmas_type == FinalSigmasType::zero);
    CHECK(parsed(R"({"_class_name": "EulerAncestralDiscreteScheduler"})").timestep_spacing ==
          TimestepSpacing::linspace);
    const auto heun = parsed(R"({"_class_name": "HeunDiscreteScheduler"})");
    CHECK(heun.schedule.beta_start == 0.00085);
    CHECK(heun.schedule.beta_end == 0.012);
    CHECK_FALSE(heun.clip_sample);
    CHECK(parsed("{}").timestep_spacing == TimestepSpacing::leading);  // DDIM's
  }
  SUBCASE("non-default values are honoured and written back") {
    const auto s = parsed(R"({"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": true,
        "sigma_min": 0.2, "sigma_max": null, "final_sigmas_type": "sigma_min",
        "interpolation_type": "linear", "timestep_type": "discrete",
        "use_exponential_sigmas": false, "use_beta_sigmas": null,
        "rescale_betas_zero_snr": false, "timestep_spacing": "trailing"})");
    CHECK(s.use_karras_sigmas);
    CHECK(s.sigma_min == 0.2);
    CHECK_FALSE(s.sigma_max);
    CHECK(s.final_sigmas_type == FinalSigmasType::sigma_min);
    const json written = pipeline::scheduler_config(s, "0.42.1");
    CHECK(written.at("sigma_max").is_null());
    CHECK(written.at("final_sigmas_type") == "sigma_min");
    CHECK(written.at("interpolation_type") == "linear");
    CHECK_FALSE(written.contains("clip_sample"));  // Euler does not read it
    CHECK_FALSE(written.contains("s_churn"));      // step() arguments: stated when not default
    CHECK_FALSE(written.contains("s_tmax"));
    const auto again = parsed(written.dump());
    CHECK(again.use_karras_sigmas);
    CHECK(again.sigma_min == 0.2);
    CHECK(again.final_sigmas_type == FinalSigmasType::sigma_min);
    CHECK(again.timestep_spacing == TimestepSpacing::trailing);
    const auto sampler = pipeline::make_sampler(again, 10);
    REQUIRE(std::holds_alternative<EulerDiscrete>(sampler));
    CHECK(std::get<EulerDiscrete>(sampler).sigmas()[9] == doctest::Approx(0.2).epsilon(1e-12));
    const auto churned = pipeline::with_options(
        again, {{"s_churn", 0.4}, {"s_tmin", 0.1}, {"s_tmax", 3.0}, {"s_noise", 1.01}});
    const auto churn_again = parsed(pipeline::scheduler_config(churned, "0.42.1").dump());
    const auto config = churn_again.euler();
    CHECK(config.s_churn == 0.4);
    CHECK(config.s_tmin == 0.1);
    CHECK(config.s_tmax == 3.0);
    CHECK(config.s_noise == 1.01);
  }
  SUBCASE("refused values name the file, the field and the value") {
    const std::vector<std::pair<std::string, std::vector<std::string>>> refused = {
        {R"({"_class_name": "EulerDiscreteScheduler", "interpolation_type": "log_linear"})",
         {"field 'interpolation_type'", "\"linear\"", "\"log_linear\""}},
        {R"({"_class_name": "EulerDiscreteScheduler", "timestep_type": "continuous"})",
         {"field 'timestep_type'", "\"discrete\"", "\"continuous\""}},
        {R"({"_class_name": "EulerDiscreteScheduler", "use_exponential_sigmas": true})",
         {"field 'use_exponential_sigmas'", "false", "true"}},
        {R"({"_class_name": "HeunDiscreteScheduler", "use_beta_sigmas": true})",
         {"field 'use_beta_sigmas'", "false", "true"}},
        {R"({"_class_name": "EulerDiscreteScheduler", "final_sigmas_type": "one"})",
         {"final_sigmas_type", "zero, sigma_min", "'one'"}},
        {R"({"_class_name": "EulerDiscreteScheduler", "sigma_min": -1})",
         {"field 'sigma_min'", "positive", "-1"}},
        {R"({"_class_name": "EulerDiscreteScheduler", "sigma_max": "big"})",
         {"field 'sigma_max'", "a finite number", "\"big\""}},
        {R"({"_class_name": "EulerDiscreteScheduler", "use_karras_sigmas": 1})",
         {"field 'use_karras_sigmas'", "true or false", "1"}},
        {R"({"_class_name": "EulerAncestralDiscreteScheduler", "use_karras_sigmas": true})",
         {"field 'use_karras_sigmas'", "EulerAncestralDiscreteScheduler does not read it"}},
        {R"({"_class_name": "EulerDiscreteScheduler", "clip_sample": false})",
         {"field 'clip_sample'", "EulerDiscreteScheduler does not read it"}},
        {R"({"_class_name": "HeunDiscreteScheduler", "beta_schedule": "exp"})",
         {"beta_schedule", "'exp'"}},
        {R"({"use_karras_sigmas": true})", {"field 'use_karras_sigmas'", "DDIMScheduler"}},
        {R"({"_class_name": "EulerDiscreteScheduler", "s_churn": -0.5})",
         {"field 's_churn'", ">= 0", "-0.5"}},
        {R"({"_class_name": "EulerDiscreteScheduler", "s_tmax": "inf"})",
         {"field 's_tmax'", "a finite number", "\"inf\""}},
        {R"({"_class_name": "HeunDiscreteScheduler", "s_churn": 1})",
         {"field 's_churn'", "HeunDiscreteScheduler does not read it"}},
    };
    for (const auto& [text, parts] : refused) {
      INFO(text);
      const std::string message = error_of([&] { parsed(text); });
      CHECK_MESSAGE(message.starts_with(file), message);
      for (const auto& part : parts)
        CHECK_MESSAGE(message.find(part) != std::string::npos, message, " lacks ", part);
    }
  }
  SUBCASE("samplers by short name and from another class's settings") {
    CHECK(pipeline::sampler_class("euler") == "EulerDiscreteScheduler");
    CHECK(pipeline::sampler_class("euler_a") == "EulerAncestralDiscreteScheduler");
    CHECK(pipeline::sampler_class("heun") == "HeunDiscreteScheduler");
    const auto ddim = parsed(R"({"beta_schedule": "scaled_linear", "beta_start": 0.00085,
        "beta_end": 0.012, "prediction_type": "v_prediction", "clip_sample": false})");
    const auto heun = pipeline::with_options(
        ddim, {{"_class_name", "HeunDiscreteScheduler"}, {"use_karras_sigmas", true}});
    CHECK(heun.prediction_type == PredictionType::v_prediction);
    CHECK(heun.timestep_spacing == TimestepSpacing::leading);  // carried over, as in diffusers
    const auto sampler = pipeline::make_sampler(heun, 5);
    REQUIRE(std::holds_alternative<HeunDiscrete>(sampler));
    CHECK(std::get<HeunDiscrete>(sampler).config().use_karras_sigmas);
    CHECK(std::get<HeunDiscrete>(sampler).timesteps().size() == 9);
    check_message(error_of([&] {
                    pipeline::with_options(heun, {{"final_sigmas_type", "sigma_min"}});
                  }),
                  {"field 'final_sigmas_type'", "HeunDiscreteScheduler does not read it"});
  }
}

TEST_CASE("the pipeline samples and denoises part-way with each sigma sampler") {
  using Model = LatentDiffusion<configs::Tiny>;
  constexpr index_t N = 16;
  Model model(1);
  model.load(std::filesystem::path(LDM_TEST_DATA_DIR) / ".." / "models" / "fashion-tiny");
  Tensor<float, Model::images<N>> images, again;
  for (const char* name : {"euler", "heun"}) {
    INFO(name);
    const auto sampler = model.sampler(2, {{"_class_name", pipeline::sampler_class(name)}});
    model.sample<N>(sampler, 11, images.view());
    CHECK(std::isfinite(sum(images)));
  }
  // Euler ancestral's noise comes from the seed.
  const auto ancestral = model.sampler(2, {{"_class_name", "EulerAncestralDiscreteScheduler"}});
  model.sample<N>(ancestral, 11, images.view());
  CHECK(std::isfinite(sum(images)));
  model.sample<N>(ancestral, 11, again.view());
  CHECK(std::ranges::equal(span_of(images), span_of(again)));
  model.sample<N>(ancestral, 12, again.view());
  CHECK_FALSE(std::ranges::equal(span_of(images), span_of(again)));
  // Image-to-image: the last 2 of 4 Heun steps from latents noised to evaluation 4.
  const auto heun = model.sampler(4, {{"_class_name", "HeunDiscreteScheduler"}});
  const auto& sampler = std::get<HeunDiscrete>(heun);
  const std::size_t first = first_evaluation(sampler, 0.5);
  REQUIRE(first == 4);
  Tensor<float, Model::latents<N>> latents;
  latents = randn<Model::latents<N>>(4, 0) * float(sampler.noise_level(first).noise);
  model.denoise<N>(sampler, first, 12, true, latents.view());
  CHECK(std::isfinite(sum(latents)));
  check_message(error_of([&] { model.denoise<N>(sampler, 3, 12, true, latents.view()); }),
                {"HeunDiscrete", "evaluation 3", "fresh State"});
  static_assert(Model::sampling_memory<N, HeunDiscrete>().workspaces ==
                Model::sampling_memory<N, EulerDiscrete>().workspaces +
                    2 * sizeof(float) * Model::latents<N>::size);
}
