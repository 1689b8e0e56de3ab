// The multistep samplers (DPM-Solver++ and UniPC) by what a reader can check by hand: an oracle
// model keeps them on the exact trajectory, their grids are diffusers' (spot values taken from
// diffusers 0.42.1), a fresh State starts a trajectory anywhere with a first-order step, their
// settings read and write as diffusers' scheduler_config.json, and every bad setting is refused by
// name. tests/test_sampler_trajectories.cpp follows diffusers' trajectories step by step.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include "ldm/diffusion.hpp"
#include "ldm/io/json.hpp"
#include "ldm/pipeline/configs.hpp"
#include "ldm/pipeline/latent_diffusion.hpp"
#include "ldm/pipeline/samplers.hpp"
#include "support/errors.hpp"
#include "support/temp_folder.hpp"

namespace {

using namespace ldm;
using namespace ldm::diffusion;
using ldm::test::check_message;
using ldm::test::error_of;
using json = ldm::io::Json;

static_assert(Sampler<DPMSolverMultistep>);
static_assert(Sampler<UniPCMultistep>);

using S = Shape<2, 4, 4, 3>;

const Schedule kScaledLinear(ScaledLinearBetas<1000>::config);

std::vector<double> as_vector(std::span<const double> values) {
  return {values.begin(), values.end()};
}

// Runs `sampler` from evaluation `first` with a fresh State and a model that knows x0: it returns
// exactly the output that reads x0 back from the sample. Each sample must then be x0 and eps mixed
// at the next evaluation's noise level (the solvers' x0 differences all vanish), and the last one
// x0 itself when the final sigma is 0. Returns the largest distance from that trajectory.
template <class Sampler>
double distance_from_oracle_trajectory(const Sampler& sampler, PredictionType prediction,
                                       std::size_t first) {
  Tensor<float, S> x0, eps, x, output;
  x0 = rand<S>(5) * 1.8f - 0.9f;
  eps = randn<S>(6);
  const NoiseLevel start = sampler.noise_level(first);
  x = float(start.signal) * x0 + float(start.noise) * eps;
  typename Sampler::template State<S, host> state{};
  double largest = 0;
  const std::size_t n = sampler.timesteps().size();
  for (std::size_t i = first; i < n; ++i) {
    const NoiseLevel level = sampler.noise_level(i);
    const float a = float(level.signal), s = float(level.noise);
    if (prediction == PredictionType::epsilon)
      output = (x - a * x0) / s;
    else
      output = a * ((x - a * x0) / s) - s * x0;
    sampler.step(i, state, View<const float, S>(output), View<const float, S>(x), 0.0f, x.view());
    const NoiseLevel next =
        i + 1 < n ? sampler.noise_level(i + 1) : vp_noise_level(sampler.sigmas().back());
    for (index_t k = 0; k < S::size; ++k) {
      const double expected = next.signal * x0[k] + next.noise * eps[k];
      const double distance = std::abs(double(x[k]) - expected);
      if (!(distance <= largest)) largest = distance;  // a NaN stays
    }
  }
  return largest;
}

TEST_CASE("with an oracle model both solvers stay on x0's trajectory and end at x0") {
  for (PredictionType prediction : {PredictionType::epsilon, PredictionType::v_prediction})
    for (int order = 1; order <= 3; ++order)
      for (bool karras : {false, true})
        for (std::size_t first : {std::size_t(0), std::size_t(7)}) {
          INFO("prediction " << to_string(prediction) << ", order " << order << ", karras "
                             << karras << ", first evaluation " << first);
          const DPMSolverMultistep dpm(
              kScaledLinear,
              {.prediction_type = prediction, .solver_order = order, .use_karras_sigmas = karras},
              20);
          CHECK(distance_from_oracle_trajectory(dpm, prediction, first) < 2e-5);
          const UniPCMultistep unipc(
              kScaledLinear,
              {.prediction_type = prediction, .solver_order = order, .use_karras_sigmas = karras},
              20);
          CHECK(distance_from_oracle_trajectory(unipc, prediction, first) < 2e-5);
        }
  // A Karras grid ends at sigma_min, so a last step to sigma_min has length 0: with 15 steps or
  // more it is of second order, whose heun coefficient is 0 / 0 in diffusers (NaN).
  const DPMSolverMultistep heun(kScaledLinear,
                                {.solver_type = DPMSolverType::heun,
                                 .use_karras_sigmas = true,
                                 .final_sigmas_type = FinalSigmasType::sigma_min},
                                20);
  CHECK(heun.sigmas()[20] == heun.sigmas()[19]);
  CHECK(distance_from_oracle_trajectory(heun, PredictionType::epsilon, 0) < 2e-5);
  const UniPCMultistep unipc(kScaledLinear,
                             {.solver_order = 3,
                              .lower_order_final = false,
                              .use_karras_sigmas = true,
                              .final_sigmas_type = FinalSigmasType::sigma_min},
                             20);
  CHECK(distance_from_oracle_trajectory(unipc, PredictionType::epsilon, 0) < 2e-5);
  // bh1's B(h) = -h is infinite on the last step to sigma 0, where diffusers multiplies it by a
  // zero correction (NaN); the first-order step has no correction and lands on x0.
  for (int order = 1; order <= 3; ++order) {
    INFO("bh1, order " << order);
    const UniPCMultistep bh1(kScaledLinear,
                             {.prediction_type = PredictionType::v_prediction,
                              .solver_order = order,
                              .solver_type = UniPCSolverType::bh1},
                             12);
    CHECK(distance_from_oracle_trajectory(bh1, PredictionType::v_prediction, 0) < 2e-5);
  }
}

TEST_CASE("the grids are diffusers': spacings by T / (n + 1) and (T - 1) / n, Karras, clipping") {
  auto dpm = [](const Schedule& schedule, DPMSolverMultistepConfig config, int steps) {
    return as_vector(DPMSolverMultistep(schedule, config, steps).timesteps());
  };
  const Schedule linear{ScheduleConfig{}};
  // diffusers 0.42.1's set_timesteps(10), its schedules built in float64 as ldm's are (with
  // float32 betas, the truncated cosine timesteps below start 998 in place of 999).
  CHECK(dpm(linear, {}, 10) ==
        std::vector<double>{999, 899, 799, 699, 599, 500, 400, 300, 200, 100});
  CHECK(dpm(linear, {.timestep_spacing = TimestepSpacing::leading}, 10) ==
        std::vector<double>{900, 810, 720, 630, 540, 450, 360, 270, 180, 90});
  CHECK(dpm(linear, {.timestep_spacing = TimestepSpacing::trailing}, 10) ==
        std::vector<double>{999, 899, 799, 699, 599, 499, 399, 299, 199, 99});
  CHECK(dpm(linear, {.use_karras_sigmas = true}, 10) ==
        std::vector<double>{999, 937, 864, 775, 663, 511, 301, 102, 18, 0});
  // squaredcos_cap_v2: DPM-Solver truncates the Karras timesteps where UniPC rounds them.
  const Schedule cosine(SquaredCosCapV2Betas<1000>::config);
  CHECK(dpm(cosine, {.use_karras_sigmas = true}, 10) ==
        std::vector<double>{999, 998, 998, 998, 997, 995, 983, 894, 259, 0});
  CHECK(as_vector(UniPCMultistep(cosine, {.use_karras_sigmas = true}, 10).timesteps()) ==
        std::vector<double>{999, 999, 999, 998, 998, 995, 983, 895, 259, 0});
  // lambda_min_clipped = -5.1 drops the cosine schedule's last timesteps from the spacings.
  CHECK(dpm(cosine, {.lambda_min_clipped = -5.1, .timestep_spacing = TimestepSpacing::trailing},
            10) == std::vector<double>{995, 895, 795, 695, 595, 495, 395, 295, 195, 95});

  const DPMSolverMultistep karras(linear, {.use_karras_sigmas = true}, 25);
  const auto sigmas = as_vector(karras.sigmas());
  const auto train = schedule_sigmas(linear);
  REQUIRE(sigmas.size() == 26);
  CHECK(sigmas.front() == doctest::Approx(train.back()).epsilon(1e-12));
  CHECK(sigmas[24] == doctest::Approx(train.front()).epsilon(1e-12));
  CHECK(sigmas.back() == 0);
  CHECK(std::ranges::is_sorted(sigmas, std::greater<>()));
  const UniPCMultistep sigma_min(linear, {.final_sigmas_type = FinalSigmasType::sigma_min}, 10);
  CHECK(sigma_min.sigmas().back() == doctest::Approx(train.front()).epsilon(1e-12));
  CHECK(sigma_min.noise_level(3).signal ==
        doctest::Approx(std::sqrt(linear.alpha_cumprod(int(sigma_min.timesteps()[3])))));
}

TEST_CASE("a fresh State starts anywhere with a first-order step, which both solvers share") {
  Tensor<float, S> sample, output, dpm_out, unipc_out, expected;
  sample = randn<S>(7);
  output = randn<S>(8);
  const DPMSolverMultistep dpm(kScaledLinear, {.solver_order = 3}, 12);
  const UniPCMultistep unipc(kScaledLinear, {.solver_order = 3}, 12);
  const std::size_t i = 5;
  DPMSolverMultistep::State<S, host> dpm_state{};
  UniPCMultistep::State<S, host> unipc_state{};
  dpm.step(i, dpm_state, View<const float, S>(output), View<const float, S>(sample), 0.0f,
           dpm_out.view());
  unipc.step(i, unipc_state, View<const float, S>(output), View<const float, S>(sample), 0.0f,
             unipc_out.view());
  // DPM-Solver++'s first order (DDIM's step in lambda): x_t = (n_t / n_s) x - a_t (e^-h - 1) x0.
  const NoiseLevel s = dpm.noise_level(i), t = dpm.noise_level(i + 1);
  const double h = std::log(dpm.sigmas()[i] / dpm.sigmas()[i + 1]);
  expected = float(t.noise / s.noise) * sample +
             float(-t.signal * std::expm1(-h)) *
                 (sample / float(s.signal) - float(s.noise / s.signal) * output);
  for (index_t k = 0; k < S::size; ++k) {
    REQUIRE(dpm_out[k] == doctest::Approx(expected[k]).epsilon(1e-5));
    REQUIRE(unipc_out[k] == doctest::Approx(expected[k]).epsilon(1e-5));
  }
  CHECK(dpm_state.held == 1);
  CHECK(unipc_state.held == 1);
  // A State follows one trajectory in order.
  check_message(error_of([&] {
                  dpm.step(i + 2, dpm_state, View<const float, S>(output),
                           View<const float, S>(sample), 0.0f, dpm_out.view());
                }),
                {"evaluation 7 after evaluation 5", "its own State"});
  check_message(error_of([&] {
                  unipc.step(i, unipc_state, View<const float, S>(output),
                             View<const float, S>(sample), 0.0f, unipc_out.view());
                }),
                {"evaluation 5 after evaluation 5", "its own State"});
  check_message(error_of([&] { dpm.noise_level(12); }), {"evaluation", "12"});
}

TEST_CASE("image-to-image: from evaluation 5 with a fresh State, as diffusers' set_begin_index") {
  // diffusers 0.42.1 (schedule in float64), 12 steps, set_begin_index(5), from a sample of ones
  // with the golden files' closed-form model x * (0.3 + 0.6 t / 1000): its last sample.
  struct Case {
    bool unipc;
    int order;
    bool karras;
    double expected;
  };
  const Case cases[] = {
      {false, 2, false, 1.1480698585510254}, {false, 2, true, 1.0998163223266602},
      {false, 3, false, 1.1498634815216064}, {false, 3, true, 1.0886774063110352},
      {true, 2, false, 1.1501387357711792},  {true, 2, true, 1.1004565954208374},
      {true, 3, false, 1.1505612134933472},  {true, 3, true, 1.087704062461853},
  };
  using Small = Shape<2, 2, 2, 1>;
  auto run = [](const auto& sampler) {
    Tensor<float, Small> x, output;
    x = 1.0f + 0.0f * x;
    typename std::remove_cvref_t<decltype(sampler)>::template State<Small, host> state{};
    for (std::size_t i = 5; i < sampler.timesteps().size(); ++i) {
      output = x * float(0.3 + 0.6 * sampler.timesteps()[i] / 1000);
      sampler.step(i, state, View<const float, Small>(output), View<const float, Small>(x), 0.0f,
                   x.view());
    }
    return x;
  };
  for (const Case& c : cases) {
    INFO((c.unipc ? "UniPC" : "DPM-Solver++") << ", order " << c.order << ", karras " << c.karras);
    const auto x =
        c.unipc ? run(UniPCMultistep(kScaledLinear,
                                     {.solver_order = c.order, .use_karras_sigmas = c.karras}, 12))
                : run(DPMSolverMultistep(
                      kScaledLinear, {.solver_order = c.order, .use_karras_sigmas = c.karras}, 12));
    for (index_t k = 0; k < Small::size; ++k)
      CHECK(x[k] == doctest::Approx(c.expected).epsilon(1e-5));
  }
}

TEST_CASE("the orders: lower at the start, and at the end as diffusers decides") {
  const DPMSolverMultistep dpm(kScaledLinear, {.solver_order = 3}, 10);
  CHECK(dpm.order_at(0, 1) == 1);
  CHECK(dpm.order_at(1, 2) == 2);
  CHECK(dpm.order_at(5, 3) == 3);
  CHECK(dpm.order_at(8, 3) == 2);  // fewer than 15 steps: second order before the last
  CHECK(dpm.order_at(9, 3) == 1);  // and first order last (also because the final sigma is 0)
  const DPMSolverMultistep many(kScaledLinear,
                                {.solver_order = 3,
                                 .lower_order_final = false,
                                 .final_sigmas_type = FinalSigmasType::sigma_min},
                                10);
  CHECK(many.order_at(9, 3) == 3);
  const UniPCMultistep unipc(kScaledLinear, {.solver_order = 3}, 20);
  CHECK(unipc.order_at(17, 3) == 3);
  CHECK(unipc.order_at(18, 3) == 2);  // lower_order_final: at most the steps left
  CHECK(unipc.order_at(19, 3) == 1);
}

TEST_CASE("bad settings and arguments are refused by name") {
  check_message(error_of([] { DPMSolverMultistep(kScaledLinear, {}, 0); }),
                {"num_inference_steps", "[1, 1000]", "0"});
  check_message(error_of([] { UniPCMultistep(kScaledLinear, {}, 1001); }),
                {"num_inference_steps", "[1, 1000]", "1001"});
  check_message(error_of([] { DPMSolverMultistep(kScaledLinear, {.solver_order = 4}, 10); }),
                {"solver_order", "1, 2 or 3", "4"});
  check_message(error_of([] { UniPCMultistep(kScaledLinear, {.solver_order = 0}, 10); }),
                {"solver_order", "1, 2 or 3", "0"});
  check_message(error_of([] { UniPCMultistep(kScaledLinear, {.lower_order_final = false}, 10); }),
                {"lower_order_final", "final_sigmas_type zero", "false"});
  check_message(error_of([] { DPMSolverMultistep(kScaledLinear, {}, 1000); }),
                {"num_inference_steps", "linspace timesteps are distinct", "1000"});
  check_message(error_of([] {
                  DPMSolverMultistep(
                      kScaledLinear,
                      {.timestep_spacing = TimestepSpacing::leading, .steps_offset = 200}, 10);
                }),
                {"steps_offset", "below 1000", "200"});
  check_message(
      error_of([] { DPMSolverMultistep(kScaledLinear, {.lambda_min_clipped = INFINITY}, 10); }),
      {"lambda_min_clipped", "inf"});
  check_message(error_of([] { DPMSolverMultistep(kScaledLinear, {.lambda_min_clipped = 20}, 10); }),
                {"num_inference_steps", "10"});
}

TEST_CASE("scheduler_config.json: the multistep classes' fields, defaults and refusals") {
  const std::string file = "m/scheduler/scheduler_config.json";
  auto parsed = [&](const std::string& text) {
    return pipeline::parse_scheduler_config(json::parse(text), file);
  };
  SUBCASE("each class's defaults, as diffusers'") {
    const auto dpm = parsed(R"({"_class_name": "DPMSolverMultistepScheduler"})");
    CHECK(dpm.timestep_spacing == TimestepSpacing::linspace);
    const auto c = dpm.dpm_solver_multistep();
    CHECK(c.solver_order == 2);
    CHECK(c.solver_type == DPMSolverType::midpoint);
    CHECK(c.lower_order_final);
    CHECK_FALSE(c.euler_at_final);
    CHECK(c.final_sigmas_type == FinalSigmasType::zero);
    CHECK(c.lambda_min_clipped == -INFINITY);
    const auto unipc = parsed(R"({"_class_name": "UniPCMultistepScheduler"})");
    CHECK(unipc.timestep_spacing == TimestepSpacing::linspace);
    CHECK(unipc.unipc_multistep().solver_type == UniPCSolverType::bh2);
    CHECK(unipc.unipc_multistep().disable_corrector.empty());
  }
  SUBCASE("values are honoured, and what is written reads back the same") {
    const auto dpm = parsed(R"({"_class_name": "DPMSolverMultistepScheduler",
        "solver_order": 3, "solver_type": "heun", "lower_order_final": false,
        "euler_at_final": true, "use_karras_sigmas": true, "final_sigmas_type": "sigma_min",
        "lambda_min_clipped": -5.1, "algorithm_type": "dpmsolver++", "variance_type": null,
        "use_lu_lambdas": false, "flow_shift": 3.0, "time_shift_type": "exponential"})");
    const auto again = parsed(pipeline::scheduler_config(dpm, "0.42.1").dump());
    for (const auto& s : {dpm, again}) {
      const auto c = s.dpm_solver_multistep();
      CHECK(c.solver_order == 3);
      CHECK(c.solver_type == DPMSolverType::heun);
      CHECK_FALSE(c.lower_order_final);
      CHECK(c.euler_at_final);
      CHECK(c.use_karras_sigmas);
      CHECK(c.final_sigmas_type == FinalSigmasType::sigma_min);
      CHECK(c.lambda_min_clipped == -5.1);
    }
    const json written = pipeline::scheduler_config(
        parsed(R"({"_class_name": "DPMSolverMultistepScheduler"})"), "0.42.1");
    CHECK_FALSE(written.contains("lambda_min_clipped"));  // -infinity: JSON cannot say it
    CHECK(written.at("variance_type").is_null());
    CHECK(written.at("algorithm_type") == "dpmsolver++");

    const auto unipc = parsed(R"({"_class_name": "UniPCMultistepScheduler", "solver_order": 1,
        "solver_type": "bh1", "disable_corrector": [0, 2], "predict_x0": true,
        "solver_p": null, "sigma_min": null, "use_flow_sigmas": false})");
    const auto unipc_again = parsed(pipeline::scheduler_config(unipc, "0.42.1").dump());
    for (const auto& s : {unipc, unipc_again}) {
      const auto c = s.unipc_multistep();
      CHECK(c.solver_order == 1);
      CHECK(c.solver_type == UniPCSolverType::bh1);
      CHECK(c.disable_corrector == std::vector<int>{0, 2});
    }
  }
  SUBCASE("another class's solver_type is its default, as in diffusers") {
    CHECK(parsed(R"({"_class_name": "DPMSolverMultistepScheduler", "solver_type": "bh2"})")
              .solver_type == "midpoint");
    CHECK(parsed(R"({"_class_name": "UniPCMultistepScheduler", "solver_type": "heun"})")
              .solver_type == "bh2");
    const auto base = parsed(R"({"_class_name": "UniPCMultistepScheduler",
        "timestep_spacing": "trailing", "prediction_type": "v_prediction"})");
    const auto dpm = pipeline::with_options(base, {{"_class_name", "DPMSolverMultistepScheduler"}});
    CHECK(dpm.solver_type == "midpoint");
    CHECK(dpm.timestep_spacing == TimestepSpacing::trailing);
    CHECK(dpm.prediction_type == PredictionType::v_prediction);
    // DDPM's variance_type fixed_small and DPM-Solver's null carry over both ways.
    const auto ddpm = pipeline::with_options(dpm, {{"_class_name", "DDPMScheduler"}});
    CHECK(ddpm.timestep_spacing == TimestepSpacing::trailing);
    const auto back =
        pipeline::with_options(ddpm, {{"_class_name", "DPMSolverMultistepScheduler"}});
    CHECK(std::holds_alternative<DPMSolverMultistep>(pipeline::make_sampler(back, 10)));
  }
  SUBCASE("refused values name the file, the field and the value") {
    const std::vector<std::pair<std::string, std::vector<std::string>>> refused = {
        {R"({"algorithm_type": "sde-dpmsolver++"})",
         {"field 'algorithm_type'", "dpmsolver++", "\"sde-dpmsolver++\""}},
        {R"({"solver_type": "logarithmic"})", {"field 'solver_type'", "midpoint or heun"}},
        {R"({"solver_order": 4})", {"field 'solver_order'", "[1, 3]", "4"}},
        {R"({"final_sigmas_type": "max"})", {"final_sigmas_type", "zero", "'max'"}},
        {R"({"use_exponential_sigmas": true})", {"field 'use_exponential_sigmas'", "true"}},
        {R"({"use_lu_lambdas": true})", {"field 'use_lu_lambdas'", "true"}},
        {R"({"variance_type": "learned"})", {"field 'variance_type'", "null", "\"learned\""}},
        {R"({"time_shift_type": "linear"})", {"field 'time_shift_type'", "\"linear\""}},
        {R"({"lambda_min_clipped": "low"})", {"field 'lambda_min_clipped'", "a finite number"}},
        {R"({"disable_corrector": [0]})",
         {"field 'disable_corrector'", "DPMSolverMultistepScheduler does not read it"}},
    };
    for (const auto& [text, parts] : refused) {
      INFO(text);
      json config = json::parse(text);
      config["_class_name"] = "DPMSolverMultistepScheduler";
      const std::string message = error_of([&] { pipeline::parse_scheduler_config(config, file); });
      CHECK_MESSAGE(message.starts_with(file), message);
      for (const auto& part : parts)
        CHECK_MESSAGE(message.find(part) != std::string::npos, message, " lacks ", part);
    }
    const std::vector<std::pair<std::string, std::vector<std::string>>> refused_unipc = {
        {R"({"predict_x0": false})", {"field 'predict_x0'", "true", "false"}},
        {R"({"solver_type": "midpoint2"})", {"field 'solver_type'", "bh1 or bh2"}},
        {R"({"disable_corrector": [-1]})", {"field 'disable_corrector'", "step indices"}},
        {R"({"disable_corrector": 3})", {"field 'disable_corrector'", "step indices", "3"}},
        {R"({"solver_p": {"a": 1}})", {"field 'solver_p'", "null"}},
        {R"({"sigma_max": 80})", {"field 'sigma_max'", "null", "80"}},
        {R"({"euler_at_final": true})",
         {"field 'euler_at_final'", "UniPCMultistepScheduler does not read it"}},
    };
    for (const auto& [text, parts] : refused_unipc) {
      INFO(text);
      json config = json::parse(text);
      config["_class_name"] = "UniPCMultistepScheduler";
      const std::string message = error_of([&] { pipeline::parse_scheduler_config(config, file); });
      CHECK_MESSAGE(message.starts_with(file), message);
      for (const auto& part : parts)
        CHECK_MESSAGE(message.find(part) != std::string::npos, message, " lacks ", part);
    }
  }
}

TEST_CASE("a scheduler_config.json as diffusers saves it, with Python's -Infinity, reads") {
  const test::TempFolder folder("ldm_multistep");
  const auto path = folder / "scheduler_config.json";
  // What diffusers 0.42.1's save_config writes (some fields left out), -Infinity bare.
  std::ofstream(path) << R"({
  "_class_name": "DPMSolverMultistepScheduler",
  "_diffusers_version": "0.42.1",
  "algorithm_type": "dpmsolver++",
  "lambda_min_clipped": -Infinity,
  "solver_order": 3,
  "variance_type": null,
  "note": "a \" before NaN and Infinity keeps them in the string"
})";
  const std::string message =
      error_of([&] { pipeline::parse_scheduler_config(pipeline::read_json(path), path.string()); });
  // The file parses: only the unknown field is refused, with its string intact.
  check_message(message, {"field 'note'", "no such field"});
  json config = pipeline::read_json(path);
  CHECK(config.at("note") == "a \" before NaN and Infinity keeps them in the string");
  config.items().erase("note");
  const auto s = pipeline::parse_scheduler_config(config, path.string());
  CHECK(s.lambda_min_clipped == -INFINITY);
  CHECK(s.solver_order == 3);
  // Elsewhere an infinity is refused by name.
  config["flow_shift"] = "Infinity";
  check_message(error_of([&] { pipeline::parse_scheduler_config(config, path.string()); }),
                {"field 'flow_shift'", "a finite number", "\"Infinity\""});
}

TEST_CASE("samplers by name; the shipped model samples, edits and inpaints with them") {
  CHECK(pipeline::sampler_class("dpm++2m") == "DPMSolverMultistepScheduler");
  CHECK(pipeline::sampler_class("unipc") == "UniPCMultistepScheduler");
  using Model = LatentDiffusion<configs::Tiny>;
  Model model(1);
  model.load(std::filesystem::path(LDM_TEST_DATA_DIR) / ".." / "models" / "fashion-tiny");
  // Each path once (the decoder dominates the time): sampling from noise with UniPC,
  // image-to-image with DPM-Solver++ and inpainting with UniPC, which start part-way with the
  // fresh State the pipeline makes.
  const auto unipc = model.sampler(4, {{"_class_name", pipeline::sampler_class("unipc")}});
  const auto dpm = model.sampler(6, {{"_class_name", pipeline::sampler_class("dpm++2m")}});
  CHECK(std::get<UniPCMultistep>(unipc).num_inference_steps() == 4);
  CHECK(std::get<DPMSolverMultistep>(dpm).num_inference_steps() == 6);
  Tensor<float, Model::images<16>> images;
  model.sample<16>(unipc, 3, images.view());
  CHECK(std::isfinite(sum(images)));
  const std::span<const float> values(images.data(), std::size_t(Model::images<16>::size));
  CHECK(std::ranges::all_of(values, [](float v) { return std::abs(v) <= 1.5f; }));
  Tensor<float, Model::images<2>> inputs, edited;
  inputs = clamp(randn<Model::images<2>>(4) * 0.5f, -1.0, 1.0);
  model.img2img<2>(dpm, 0.5, inputs, 9, edited.view());
  CHECK(std::isfinite(sum(edited)));
  Tensor<float, Model::masks<2>> mask;
  for (index_t k = 0; k < Model::masks<2>::size; ++k)
    mask[k] = float(k % 2);
  model.inpaint<2>(unipc, inputs, mask, 9, edited.view(), 0.8);
  CHECK(std::isfinite(sum(edited)));
  // The State is counted in the sampling memory: four latent tensors for UniPC, three for DPM.
  constexpr std::size_t latent_bytes = sizeof(float) * Model::latents<16>::size;
  CHECK(Model::sampling_memory<16, UniPCMultistep>().workspaces -
            Model::sampling_memory<16, DDIM>().workspaces ==
        4 * latent_bytes);
  CHECK(Model::sampling_memory<16, DPMSolverMultistep>().workspaces -
            Model::sampling_memory<16, DDIM>().workspaces ==
        3 * latent_bytes);
}

}  // namespace
