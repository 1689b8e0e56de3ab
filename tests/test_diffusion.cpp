#include <doctest/doctest.h>

#include "support/errors.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <ldm/diffusion.hpp>
#include <ldm/io/json.hpp>
#include <ldm/io/safetensors.hpp>
#include <ldm/ldm.hpp>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

using namespace ldm;
using namespace ldm::diffusion;
using json = ldm::io::Json;

namespace {

using test::check_message;
using test::error_of;

// Element by element: |actual - expected| <= tol * (|expected| + floor), floor standing in for
// the size of elements that happen to be near zero. Returns the largest
// |actual - expected| / (|expected| + floor).
double check_close(std::span<const float> actual, std::span<const double> expected, double tol,
                   double floor, const std::string& what) {
  REQUIRE(actual.size() == expected.size());
  double largest = 0;
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double e = expected[i];
    const double error = std::abs(actual[i] - e) / (std::abs(e) + floor);
    REQUIRE_MESSAGE(error <= tol, what << " index " << i << ": " << actual[i] << " vs " << e);
    largest = std::max(largest, error);
  }
  return largest;
}

template <class T, class S>
std::span<const float> span_of(const Tensor<T, S>& t) {
  return {t.data(), std::size_t(S::size)};
}

std::string scientific(double x) {
  std::ostringstream out;
  out.precision(2);
  out << std::scientific << x;
  return out.str();
}

// The golden file's step tensors, read as this shape (the schedulers are elementwise, so the
// layout does not matter).
using Batch = Shape<3, 2, 3, 4>;
using BatchTensor = Tensor<float, Batch>;
const std::vector<std::int64_t> kBatchShape(Batch::extents.begin(), Batch::extents.end());

class Golden {
 public:
  Golden()
      : file_(io::SafetensorsFile::open(std::filesystem::path(LDM_TEST_DATA_DIR) /
                                        "golden/schedulers.safetensors")) {
    REQUIRE(file_.metadata().at("script") == "tools/golden/make_scheduler_golden.py");
    REQUIRE(meta("shape") == json(kBatchShape));
  }

  const io::SafetensorsFile& file() const { return file_; }
  json meta(const std::string& key) const { return json::parse(file_.metadata().at(key)); }

  BatchTensor tensor(const std::string& name) const {
    BatchTensor t;
    file_.read<float>(name, std::span<float>(t.data(), Batch::size), kBatchShape);
    return t;
  }
  std::vector<double> values(const std::string& name,
                             const std::vector<std::int64_t>& shape = kBatchShape) const {
    std::int64_t count = 1;
    for (std::int64_t extent : shape)
      count *= extent;
    std::vector<double> v(std::size_t(count), 0.0);
    file_.read<double>(name, std::span<double>(v), shape);
    return v;
  }

 private:
  io::SafetensorsFile file_;
};

// A diffusers scheduler config as the golden file records it (every field diffusers writes,
// defaults included), read by the library's parser for scheduler/scheduler_config.json: so these
// tests also pin that each field means there what it means in diffusers.
pipeline::SchedulerSettings settings_of(const json& c, const std::string& class_name) {
  json config = c;
  config["_class_name"] = class_name;
  return pipeline::parse_scheduler_config(config, "golden " + class_name + " config");
}

// The golden file's schedules are DDPMScheduler configs.
ScheduleConfig schedule_config(const json& c, const std::string& class_name = "DDPMScheduler") {
  return settings_of(c, class_name).schedule;
}

DDPM make_ddpm(const json& c, int steps) {
  const pipeline::SchedulerSettings s = settings_of(c, "DDPMScheduler");
  return DDPM(s.make_schedule(), s.ddpm(), steps);
}

DDIM make_ddim(const json& c, int steps, double eta = 0) {
  const pipeline::SchedulerSettings s = settings_of(c, "DDIMScheduler");
  DDIMConfig config = s.ddim();
  config.eta = eta;
  return DDIM(s.make_schedule(), config, steps);
}

}  // namespace

TEST_CASE("schedules: alphas_cumprod as diffusers computes them, in float64") {
  const Golden golden;
  const json schedules = golden.meta("schedules");
  REQUIRE(schedules.size() == 3);
  // Plain names, not structured bindings: doctest's assertions are lambdas, and Clang 14 cannot
  // capture a binding.
  for (const auto& item : schedules.items()) {
    const std::string name = item.first;
    const json& config = item.second;
    const Schedule schedule(schedule_config(config));
    CHECK(to_string(schedule.config().beta_schedule) == name);
    const auto expected = golden.values("alphas_cumprod." + name, {1000});
    double largest = 0;
    for (std::size_t t = 0; t < expected.size(); ++t) {
      const double error = std::abs(schedule.alphas_cumprod()[t] - expected[t]) / expected[t];
      REQUIRE_MESSAGE(error <= 1e-12, name << " t " << t);
      largest = std::max(largest, error);
    }
    MESSAGE("alphas_cumprod." << name << ": largest relative error " << scientific(largest));
  }
}

TEST_CASE("schedules: closed forms, compile-time configurations, checked run-time values") {
  const Schedule linear(ScheduleConfig{});
  REQUIRE(linear.num_train_timesteps() == 1000);
  CHECK(linear.betas().front() == 1e-4);
  CHECK(linear.betas().back() == 2e-2);
  CHECK(linear.betas()[500] == doctest::Approx(1e-4 + (2e-2 - 1e-4) * 500 / 999).epsilon(1e-14));
  for (int t = 0; t < 1000; ++t) {
    CHECK(linear.alphas()[t] == 1 - linear.betas()[t]);
    const double previous = t == 0 ? 1.0 : linear.alphas_cumprod()[t - 1];
    REQUIRE(linear.alphas_cumprod()[t] == previous * linear.alphas()[t]);
  }

  const auto scaled = Schedule::of<ldm::ScaledLinearBetas<1000>>();
  CHECK(scaled.betas().front() == doctest::Approx(0.00085).epsilon(1e-14));
  CHECK(scaled.betas().back() == doctest::Approx(0.012).epsilon(1e-14));
  CHECK(std::sqrt(scaled.betas()[1]) - std::sqrt(scaled.betas()[0]) ==
        doctest::Approx((std::sqrt(0.012) - std::sqrt(0.00085)) / 999).epsilon(1e-9));

  // The cosine alpha_bar reaches 0 at t = 1, so the last beta is the cap.
  const auto cosine = Schedule::of<ldm::SquaredCosCapV2Betas<1000>>();
  CHECK(cosine.betas().back() == 0.999);
  CHECK(std::ranges::all_of(cosine.betas(), [](double b) { return b > 0 && b <= 0.999; }));

  const auto compile_time = Schedule::of<ldm::LinearBetas<1000>>();
  CHECK(std::ranges::equal(compile_time.alphas_cumprod(), linear.alphas_cumprod()));
  const auto short_schedule = Schedule::of<LinearBetas<1>>();
  CHECK(short_schedule.betas().size() == 1);
  CHECK(short_schedule.betas()[0] == 1e-4);

  check_message(error_of([] { Schedule(ScheduleConfig{.num_train_timesteps = 0}); }),
                {"num_train_timesteps", "positive", "found 0"});
  check_message(error_of([] { Schedule(ScheduleConfig{.beta_end = 1.5}); }),
                {"beta_end", "(0, 1)", "1.5"});
  check_message(
      error_of([] {
        Schedule(ScheduleConfig{.beta_schedule = BetaSchedule::scaled_linear, .beta_start = -1e-3});
      }),
      {"beta_start", "(0, 1)"});
  check_message(error_of([&] { linear.alpha_cumprod(1000); }),
                {"timestep", "[0, 1000)", "found 1000"});
  check_message(error_of([&] { linear.alpha_cumprod(-1); }), {"timestep", "found -1"});
}

TEST_CASE("run-time names: diffusers' spellings, and errors naming the field and the choices") {
  for (auto s :
       {BetaSchedule::linear, BetaSchedule::scaled_linear, BetaSchedule::squaredcos_cap_v2})
    CHECK(parse_name<BetaSchedule>(to_string(s)) == s);
  for (auto s : {TimestepSpacing::leading, TimestepSpacing::trailing, TimestepSpacing::linspace})
    CHECK(parse_name<TimestepSpacing>(to_string(s)) == s);
  for (auto p : {PredictionType::epsilon, PredictionType::v_prediction})
    CHECK(parse_name<PredictionType>(to_string(p)) == p);
  for (auto f : {FinalSigmasType::zero, FinalSigmasType::sigma_min})
    CHECK(parse_name<FinalSigmasType>(to_string(f)) == f);
  for (auto t : {DPMSolverType::midpoint, DPMSolverType::heun})
    CHECK(parse_name<DPMSolverType>(to_string(t)) == t);
  for (auto t : {UniPCSolverType::bh1, UniPCSolverType::bh2})
    CHECK(parse_name<UniPCSolverType>(to_string(t)) == t);
  // diffusers' spellings, every enumerator: the round trips above hold for any spelling.
  CHECK(to_string(BetaSchedule::linear) == "linear");
  CHECK(to_string(BetaSchedule::scaled_linear) == "scaled_linear");
  CHECK(to_string(BetaSchedule::squaredcos_cap_v2) == "squaredcos_cap_v2");
  CHECK(to_string(TimestepSpacing::leading) == "leading");
  CHECK(to_string(TimestepSpacing::trailing) == "trailing");
  CHECK(to_string(TimestepSpacing::linspace) == "linspace");
  CHECK(to_string(PredictionType::epsilon) == "epsilon");
  CHECK(to_string(PredictionType::v_prediction) == "v_prediction");
  CHECK(to_string(FinalSigmasType::zero) == "zero");
  CHECK(to_string(FinalSigmasType::sigma_min) == "sigma_min");
  CHECK(to_string(DPMSolverType::midpoint) == "midpoint");
  CHECK(to_string(DPMSolverType::heun) == "heun");
  CHECK(to_string(UniPCSolverType::bh1) == "bh1");
  CHECK(to_string(UniPCSolverType::bh2) == "bh2");

  check_message(error_of([] { parse_name<BetaSchedule>("cosine"); }),
                {"beta_schedule", "one of linear, scaled_linear, squaredcos_cap_v2", "'cosine'"});
  check_message(error_of([] { parse_name<PredictionType>("sample"); }),
                {"prediction_type", "one of epsilon, v_prediction", "'sample'"});
  check_message(error_of([] { parse_name<TimestepSpacing>("Leading"); }),
                {"timestep_spacing", "one of leading, trailing, linspace", "'Leading'"});
  check_message(error_of([] { parse_name<UniPCSolverType>("bh3"); }),
                {"solver_type: expected one of bh1, bh2, found 'bh3'"});
  const std::string long_name(1000, 'x');
  const std::string message = error_of([&] { parse_name<BetaSchedule>(long_name); });
  check_message(message, {"beta_schedule", "xxx..."});
  CHECK(message.size() < 200);
}

TEST_CASE("set_timesteps as diffusers' DDPMScheduler and DDIMScheduler give them") {
  const Golden golden;
  const json configs = golden.meta("configs");
  const json entries = golden.meta("timesteps");
  REQUIRE(entries.size() == 10);
  for (const auto& item : entries.items()) {
    const std::string name = item.first;
    const json& entry = item.second;
    const json& scheduler = configs.at(entry.at("config").get<std::string>());
    const int n = entry.at("num_inference_steps").get<int>();
    const json& c = scheduler.at("config");
    const std::vector<double> ours = [&] {
      auto copy = [](std::span<const double> t) { return std::vector<double>(t.begin(), t.end()); };
      if (scheduler.at("class") == "DDPMScheduler") return copy(make_ddpm(c, n).timesteps());
      return copy(make_ddim(c, n).timesteps());
    }();
    const std::string tensor = "timesteps." + name;
    const auto expected = golden.values(tensor, golden.file().entry(tensor).shape);
    REQUIRE(ours.size() == std::size_t(n));
    INFO(name);
    if (name == "ddim.trailing.61") {
      // diffusers' np.arange over a float step yields a 62nd value, timestep -1; ldm stops at n.
      REQUIRE(expected.size() == std::size_t(n) + 1);
      CHECK(expected.back() == -1);
    } else {
      REQUIRE(expected.size() == std::size_t(n));
    }
    for (int i = 0; i < n; ++i)
      CHECK_MESSAGE(ours[std::size_t(i)] == expected[std::size_t(i)], "index " << i);
  }
}

TEST_CASE("timesteps: n distinct, descending, in range, for every count and spacing") {
  for (auto spacing :
       {TimestepSpacing::leading, TimestepSpacing::trailing, TimestepSpacing::linspace}) {
    for (int n = 1; n <= 1000; ++n) {
      const auto t = spaced_timesteps(spacing, 1000, n, 0);
      REQUIRE(t.size() == std::size_t(n));
      REQUIRE(t.back() >= 0);
      REQUIRE(t.front() <= 999);
      REQUIRE(std::ranges::adjacent_find(t, std::less_equal<>()) == t.end());
    }
  }
  // Ties go to the even neighbour, as numpy.round does: 166.5 -> 166, 499.5 -> 500, 832.5 -> 832.
  CHECK(spaced_timesteps(TimestepSpacing::linspace, 1000, 7, 0) ==
        std::vector<int>{999, 832, 666, 500, 333, 166, 0});
  // numpy's arange(1000, 0, -1000/48) holds 937.4999... where 937.5 is exact: 937 - 1 = 936.
  CHECK(spaced_timesteps(TimestepSpacing::trailing, 1000, 48, 0)[3] == 936);
  CHECK(spaced_timesteps(TimestepSpacing::leading, 1000, 4, 1) ==
        std::vector<int>{751, 501, 251, 1});
  CHECK(spaced_timesteps(TimestepSpacing::trailing, 1000, 4, 1) ==
        std::vector<int>{999, 749, 499, 249});

  check_message(error_of([] { spaced_timesteps(TimestepSpacing::leading, 1000, 0, 0); }),
                {"num_inference_steps", "[1, 1000]", "found 0"});
  check_message(error_of([] { spaced_timesteps(TimestepSpacing::leading, 1000, 1001, 0); }),
                {"num_inference_steps", "found 1001"});
  check_message(error_of([] { spaced_timesteps(TimestepSpacing::leading, 1000, 1000, 1); }),
                {"steps_offset", "below 1000", "found 1"});
  check_message(error_of([] { spaced_timesteps(TimestepSpacing::leading, 1000, 10, -1); }),
                {"steps_offset", "found -1"});
}

TEST_CASE("add_noise and training targets against a reference loop") {
  const Schedule schedule(ScheduleConfig{});
  auto reference = [&](auto& x0, auto& noise, auto& timesteps, auto& xt, auto& v) {
    using S = typename std::remove_cvref_t<decltype(x0)>::shape;
    constexpr index_t per_sample = S::size / batch_of<S>;
    for (index_t i = 0; i < S::size; ++i) {
      const double abar = schedule.alphas_cumprod()[std::size_t(timesteps[i / per_sample])];
      const double expected_xt = std::sqrt(abar) * x0[i] + std::sqrt(1 - abar) * noise[i];
      const double expected_v = std::sqrt(abar) * noise[i] - std::sqrt(1 - abar) * x0[i];
      REQUIRE_MESSAGE(std::abs(xt[i] - expected_xt) <= 1e-6 * (1e-6 + std::abs(expected_xt)),
                      "x_t index " << i);
      REQUIRE_MESSAGE(std::abs(v[i] - expected_v) <= 1e-6 * (1e-6 + std::abs(expected_v)),
                      "v index " << i);
    }
  };

  SUBCASE("images, odd extents") {
    using S = Shape<3, 5, 7, 2>;
    Tensor<float, S> x0, noise, xt, v, eps_target;
    x0 = rand<S>(1) * 2.0f - 1.0f;
    noise = randn<S>(2);
    Tensor<std::int32_t, Shape<3>> timesteps;
    timesteps[0] = 0, timesteps[1] = 517, timesteps[2] = 999;
    add_noise(schedule, x0, noise, timesteps, xt);
    training_target(PredictionType::v_prediction, schedule, x0, noise, timesteps, v);
    reference(x0, noise, timesteps, xt, v);
    training_target(PredictionType::epsilon, schedule, x0, noise, timesteps, eps_target);
    CHECK(std::ranges::equal(span_of(eps_target), span_of(noise)));

    // In place: x_t may be x0's own memory.
    Tensor<float, S> in_place = x0;
    add_noise(schedule, in_place, noise, timesteps, in_place);
    CHECK(std::ranges::equal(span_of(in_place), span_of(xt)));

    timesteps[1] = 1000;
    check_message(error_of([&] { add_noise(schedule, x0, noise, timesteps, xt); }),
                  {"timestep", "[0, 1000)", "found 1000"});
  }
  SUBCASE("a batch of scalars") {
    using S = Shape<4>;
    Tensor<float, S> x0, noise, xt, v;
    x0 = rand<S>(3);
    noise = randn<S>(4);
    Tensor<std::int32_t, S> timesteps;
    timesteps[0] = 999, timesteps[1] = 1, timesteps[2] = 250, timesteps[3] = 0;
    add_noise(schedule, x0, noise, timesteps, xt);
    training_target(PredictionType::v_prediction, schedule, x0, noise, timesteps, v);
    reference(x0, noise, timesteps, xt, v);
  }
}

TEST_CASE("add_noise and the v target as diffusers' add_noise and get_velocity") {
  const Golden golden;
  const json forward = golden.meta("forward");
  const json configs = golden.meta("configs");
  const json& scheduler = configs.at(forward.at("config").get<std::string>());
  const Schedule schedule(
      schedule_config(scheduler.at("config"), scheduler.at("class").get<std::string>()));
  const auto stored_timesteps = golden.values("forward.timesteps", {3});
  Tensor<std::int32_t, Shape<3>> timesteps;
  for (int i = 0; i < 3; ++i) {
    timesteps[i] = std::int32_t(stored_timesteps[std::size_t(i)]);
    REQUIRE(timesteps[i] == forward.at("timesteps").at(i).get<int>());
  }
  const BatchTensor x0 = golden.tensor("forward.x0"), noise = golden.tensor("forward.noise");
  BatchTensor noisy, velocity;
  add_noise(schedule, x0, noise, timesteps, noisy);
  training_target(PredictionType::v_prediction, schedule, x0, noise, timesteps, velocity);
  const double e_noisy =
      check_close(span_of(noisy), golden.values("forward.noisy"), 1e-6, 1e-6, "forward.noisy");
  const double e_velocity = check_close(span_of(velocity), golden.values("forward.velocity"), 1e-6,
                                        1e-6, "forward.velocity");
  MESSAGE("add_noise: largest error " << scientific(e_noisy)
                                      << ", get_velocity: " << scientific(e_velocity));
}

TEST_CASE("DDPM and DDIM steps as diffusers takes them (tests/golden/schedulers.safetensors)") {
  const Golden golden;
  const json configs = golden.meta("configs");
  const json cases = golden.meta("cases");
  REQUIRE(cases.size() == 40);
  const BatchTensor noise = golden.tensor("noise");
  int ddpm_cases = 0, ddim_cases = 0;
  for (const json& k : cases) {
    const std::string name = k.at("name").get<std::string>();
    const json& scheduler = configs.at(k.at("config").get<std::string>());
    const json& c = scheduler.at("config");
    const int steps = k.at("num_inference_steps").get<int>(), t = k.at("timestep").get<int>();
    const std::string inputs = k.at("inputs").get<std::string>();
    const BatchTensor sample = golden.tensor(inputs + ".sample");
    const BatchTensor output = golden.tensor(inputs + ".model_output");
    std::ostringstream line;
    line << name << " " << scheduler.at("class").get<std::string>() << " "
         << c.at("beta_schedule").get<std::string>() << " "
         << c.at("timestep_spacing").get<std::string>() << " " << steps << " steps, t " << t << ", "
         << c.at("prediction_type").get<std::string>()
         << (c.at("clip_sample").get<bool>() ? ", clip" : "");
    auto compare = [&](const BatchTensor& actual, const std::string& what) {
      const double error = check_close(span_of(actual), golden.values(name + "." + what), 1e-6,
                                       1e-6, name + "." + what);
      line << " | " << what << " " << scientific(error);
    };
    BatchTensor prev, x0;
    if (scheduler.at("class") == "DDPMScheduler") {
      ++ddpm_cases;
      const DDPM ddpm = make_ddpm(c, steps);
      BatchTensor mean;
      ddpm.step(output, t, sample, noise, prev);
      ddpm.pred_original_sample(output, t, sample, x0);
      ddpm.mean(output, t, sample, mean);
      compare(prev, "prev_sample");
      compare(x0, "pred_original_sample");
      compare(mean, "mean");
    } else {
      REQUIRE(scheduler.at("class") == "DDIMScheduler");
      ++ddim_cases;
      const double eta = k.at("eta").get<double>();
      const DDIM ddim = make_ddim(c, steps, eta);
      line << ", eta " << eta << (c.at("set_alpha_to_one").get<bool>() ? "" : ", abar_0 final");
      ddim.step(output, t, sample, noise, prev);
      ddim.pred_original_sample(output, t, sample, x0);
      compare(prev, "prev_sample");
      compare(x0, "pred_original_sample");
    }
    MESSAGE(line.str());
  }
  CHECK(ddpm_cases == 14);
  CHECK(ddim_cases == 26);
}

TEST_CASE("DDIM with eta = 0 and an oracle model stays on x0's trajectory and ends at x0") {
  using S = Shape<2, 4, 4, 3>;
  Tensor<float, S> x0, eps;
  x0 = rand<S>(5) * 1.8f - 0.9f;
  eps = randn<S>(6);

  struct Run {
    const char* label;
    ScheduleConfig schedule;
    DDIMConfig config;
    int steps;
  };
  const Run runs[] = {
      {"linear, leading, epsilon, clip", ScheduleConfig{}, DDIMConfig{}, 50},
      {"scaled_linear, trailing, v_prediction", ScaledLinearBetas<1000>::config,
       DDIMConfig{.prediction_type = PredictionType::v_prediction,
                  .clip_sample = false,
                  .timestep_spacing = TimestepSpacing::trailing},
       25},
      {"squaredcos_cap_v2, leading + 1, v_prediction, clip", SquaredCosCapV2Betas<1000>::config,
       DDIMConfig{.prediction_type = PredictionType::v_prediction, .steps_offset = 1}, 10},
  };
  for (const Run& run : runs) {
    INFO(std::string(run.label));
    const DDIM ddim(Schedule(run.schedule), run.config, run.steps);
    const auto& schedule = ddim.schedule();
    // On the trajectory of (x0, eps): x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps.
    auto on_trajectory = [&](double abar) {
      return Tensor<float, S>(float(std::sqrt(abar)) * x0 + float(std::sqrt(1 - abar)) * eps);
    };
    Tensor<float, S> x = on_trajectory(schedule.alpha_cumprod(int(ddim.timesteps()[0])));
    Tensor<float, S> output, again;
    double largest = 0;
    for (double timestep : ddim.timesteps()) {
      const int t = int(timestep);
      const double abar = schedule.alpha_cumprod(t);
      const float a = float(std::sqrt(abar)), s = float(std::sqrt(1 - abar));
      // The oracle knows x0, so it predicts exactly the noise that makes x from it.
      if (run.config.prediction_type == PredictionType::epsilon)
        output = (x - a * x0) / s;
      else
        output = a * ((x - a * x0) / s) - s * x0;
      ddim.step(output, t, x, 0.0f, again);
      ddim.step(output, t, x, 0.0f, x);
      REQUIRE(std::ranges::equal(span_of(x), span_of(again)));

      const int prev = ddim.previous_timestep(t);
      const auto expected = prev >= 0 ? on_trajectory(schedule.alpha_cumprod(prev)) : x0;
      for (index_t i = 0; i < S::size; ++i) {
        const double error = std::abs(x[i] - expected[i]);
        REQUIRE_MESSAGE(error <= 1e-5, "t " << t << " index " << i);
        largest = std::max(largest, error);
      }
    }
    MESSAGE(std::string(run.label)
            << ": largest distance from the trajectory " << scientific(largest));
  }
}

namespace {
// Whether the sampler contract's step of Sampler takes a noise operand of type Noise.
template <class Sampler, class Noise>
concept TakesNoise = requires(const Sampler& sampler,
                              typename Sampler::template State<Shape<1>, host>& state,
                              View<const float, Shape<1>> in, View<float, Shape<1>> out,
                              const Noise& noise) {
  sampler.step(std::size_t{0}, state, in, in, noise, out);
};
// Whether the step at timestep t of Sampler (DDPM's, DDIM's) takes a noise operand of type Noise.
template <class Sampler, class Noise>
concept TakesNoiseAtTimestep = requires(const Sampler& sampler, View<const float, Shape<1>> in,
                                        View<float, Shape<1>> out, const Noise& noise) {
  sampler.step(in, 0, in, noise, out);
};
template <class... Samplers>
constexpr bool take_numbers_not_integers() {
  return ((TakesNoise<Samplers, float> && TakesNoise<Samplers, double> &&
           TakesNoise<Samplers, Tensor<float, Shape<1>>> && !TakesNoise<Samplers, int> &&
           !TakesNoise<Samplers, std::uint64_t>)&&...);
}
}  // namespace

TEST_CASE(
    "samplers: a noise operand is a number or an operand, never an integer (a seed missing "
    "its offset)") {
  static_assert(take_numbers_not_integers<DDIM, DDPM, EulerDiscrete, EulerAncestralDiscrete,
                                          HeunDiscrete, DPMSolverMultistep, UniPCMultistep>());
  static_assert(TakesNoiseAtTimestep<DDIM, float> && !TakesNoiseAtTimestep<DDIM, int>);
  static_assert(TakesNoiseAtTimestep<DDPM, double> && !TakesNoiseAtTimestep<DDPM, long>);
  CHECK(take_numbers_not_integers<DDIM, UniPCMultistep>());
}

TEST_CASE("DDIM: the noise counts only with eta > 0, and (seed, offset) is ldm::randn's stream") {
  using S = Shape<2, 5, 3>;
  Tensor<float, S> sample, output, deterministic, with_noise, seeded, drawn, other;
  sample = randn<S>(7);
  output = randn<S>(8);
  const DDIM ddim(Schedule(ScheduleConfig{}), DDIMConfig{}, 20);
  const DDIM noisy(Schedule(ScheduleConfig{}), DDIMConfig{.eta = 0.7}, 20);
  const int t = int(ddim.timesteps()[3]);
  ddim.step(output, t, sample, 0.0f, deterministic);
  ddim.step(output, t, sample, randn<S>(9, 1), with_noise);
  CHECK(std::ranges::equal(span_of(deterministic), span_of(with_noise)));

  noisy.step(output, t, sample, 9, 1, seeded);
  Tensor<float, S> noise(randn<S>(9, 1));
  noisy.step(output, t, sample, noise, drawn);
  CHECK(std::ranges::equal(span_of(seeded), span_of(drawn)));
  noisy.step(output, t, sample, 9, 2, other);
  CHECK_FALSE(std::ranges::equal(span_of(seeded), span_of(other)));
  const DDIMStep c = noisy.coefficients(t);
  for (index_t i = 0; i < S::size; ++i)
    REQUIRE(seeded[i] - deterministic[i] ==
            doctest::Approx(c.sigma * noise[i] +
                            (c.eps_coeff - ddim.coefficients(t).eps_coeff) * output[i])
                .epsilon(1e-4)
                .scale(1));

  check_message(error_of([] { DDIM(Schedule(ScheduleConfig{}), DDIMConfig{.eta = 1.5}, 20); }),
                {"eta", "[0, 1]", "1.5"});
  check_message(error_of([&] { ddim.step(output, 1000, sample, 0.0f, drawn); }),
                {"timestep", "found 1000"});
}

TEST_CASE("DDPM: clip_sample keeps pred_original_sample in range, and the noise scale") {
  using S = Shape<2, 6, 5, 3>;
  Tensor<float, S> sample, output, x0, unclipped, prev, mean, noise;
  sample = randn<S>(10);
  output = randn<S>(11) * 2.0f;
  noise = randn<S>(12);
  const Schedule schedule(ScheduleConfig{});
  for (auto prediction : {PredictionType::epsilon, PredictionType::v_prediction}) {
    INFO(to_string(prediction));
    const DDPM clipped(schedule,
                       DDPMConfig{.prediction_type = prediction, .clip_sample_range = 0.7}, 1000);
    const DDPM unclipped_ddpm(
        schedule, DDPMConfig{.prediction_type = prediction, .clip_sample = false}, 1000);
    index_t inside = 0, at_bound = 0;
    for (int t : {999, 400, 3, 0}) {
      clipped.pred_original_sample(output, t, sample, x0);
      unclipped_ddpm.pred_original_sample(output, t, sample, unclipped);
      CHECK(max(x0) <= 0.7f);
      CHECK(min(x0) >= -0.7f);
      for (index_t i = 0; i < S::size; ++i) {
        const bool clips = std::abs(unclipped[i]) > 0.7f;
        inside += !clips;
        at_bound += clips;
        REQUIRE(x0[i] == doctest::Approx(std::clamp(unclipped[i], -0.7f, 0.7f)).epsilon(1e-6));
      }

      // Consecutive timesteps: sigma^2 = beta_t (1 - abar_{t-1}) / (1 - abar_t), none at t = 0.
      clipped.step(output, t, sample, noise, prev);
      clipped.mean(output, t, sample, mean);
      const double abar = schedule.alphas_cumprod()[std::size_t(t)];
      const double abar_prev = t > 0 ? schedule.alphas_cumprod()[std::size_t(t - 1)] : 1.0;
      const double sigma =
          t > 0 ? std::sqrt(schedule.betas()[std::size_t(t)] * (1 - abar_prev) / (1 - abar)) : 0;
      CHECK(clipped.coefficients(t).sigma == doctest::Approx(sigma).epsilon(1e-12));
      for (index_t i = 0; i < S::size; ++i)
        REQUIRE_MESSAGE(
            std::abs(prev[i] - mean[i] - sigma * noise[i]) <= 1e-6 * (1 + std::abs(mean[i])),
            "t " << t << " index " << i);
    }
    // Both sides of the bound occur, so the checks above saw clipping and its absence.
    CHECK(inside > 0);
    CHECK(at_bound > 0);
  }
  check_message(error_of([&] { DDPM(schedule, DDPMConfig{.clip_sample_range = 0}, 10); }),
                {"clip_sample_range", "positive", "found 0"});
}

TEST_CASE("DDPM: reproducible noise, and an oracle model's chain ends at x0") {
  using S = Shape<3, 4, 2>;
  Tensor<float, S> x0, x, output, seeded, drawn, other;
  x0 = rand<S>(13) * 1.6f - 0.8f;
  const DDPM ddpm(Schedule::of<ScaledLinearBetas<1000>>(), DDPMConfig{}, 50);
  x = randn<S>(14);

  ddpm.step(x, 980, x0, 21, 3, seeded);
  ddpm.step(x, 980, x0, randn<S>(21, 3), drawn);
  CHECK(std::ranges::equal(span_of(seeded), span_of(drawn)));
  ddpm.step(x, 980, x0, 21, 4, other);
  CHECK_FALSE(std::ranges::equal(span_of(seeded), span_of(other)));
  check_message(error_of([&] { ddpm.step(x, 981, x0, 21, 3, other); }),
                {"timestep", "one of the 50 timesteps", "found 981"});

  // A schedule that ends at t = 1 still adds noise there, with diffusers' variance floor.
  const DDPM ends_at_1(Schedule::of<ScaledLinearBetas<1000>>(), DDPMConfig{.steps_offset = 1}, 7);
  REQUIRE(ends_at_1.timesteps().back() == 1);
  CHECK(ends_at_1.previous_timestep(1) == -1);
  CHECK(ends_at_1.coefficients(1).sigma == doctest::Approx(1e-10).epsilon(1e-12));

  // Whatever noise the chain draws, a model that predicts the noise that made x from x0 leads
  // the last step (t = 0: abar_prev = 1, no noise) to x0.
  std::uint64_t offset = 0;
  for (int t : ddpm.timesteps()) {
    const double abar = ddpm.schedule().alpha_cumprod(t);
    const float a = float(std::sqrt(abar)), s = float(std::sqrt(1 - abar));
    output = (x - a * x0) / s;
    ddpm.step(output, t, x, /*seed*/ 15, offset++, x);
  }
  CHECK(ddpm.timesteps().back() == 0);
  for (index_t i = 0; i < S::size; ++i)
    REQUIRE_MESSAGE(std::abs(x[i] - x0[i]) <= 1e-5, "index " << i);
}

TEST_CASE("scheduler_config.json: every field is honoured or refused by name (issue 13 row 7)") {
  const std::string file = "m/scheduler/scheduler_config.json";
  auto parsed = [&](const std::string& text) {
    return pipeline::parse_scheduler_config(json::parse(text), file);
  };
  SUBCASE("diffusers' defaults for the fields left out") {
    const auto s = parsed("{}");
    CHECK(s.class_name == "DDIMScheduler");
    CHECK(s.schedule.num_train_timesteps == 1000);
    CHECK(s.prediction_type == PredictionType::epsilon);
    CHECK(s.clip_sample);
    CHECK(s.set_alpha_to_one);
  }
  SUBCASE("non-default values are honoured") {
    const auto s = parsed(R"({"_class_name": "DDPMScheduler", "_diffusers_version": "0.1",
        "beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
        "num_train_timesteps": 500, "prediction_type": "v_prediction",
        "timestep_spacing": "trailing", "steps_offset": 1,
        "clip_sample": true, "clip_sample_range": 1.5, "thresholding": false,
        "dynamic_thresholding_ratio": 0.9, "sample_max_value": 2.0,
        "rescale_betas_zero_snr": false, "variance_type": "fixed_small"})");
    CHECK(s.class_name == "DDPMScheduler");
    CHECK(s.schedule.beta_schedule == BetaSchedule::scaled_linear);
    CHECK(s.schedule.num_train_timesteps == 500);
    CHECK(s.schedule.beta_end == 0.012);
    CHECK(s.prediction_type == PredictionType::v_prediction);
    CHECK(s.timestep_spacing == TimestepSpacing::trailing);
    CHECK(s.steps_offset == 1);
    CHECK(s.clip_sample_range == 1.5);
    const Schedule schedule = s.make_schedule();
    CHECK(schedule.alphas_cumprod().size() == 500);
    CHECK(schedule.betas()[499] == doctest::Approx(0.012).epsilon(1e-12));
  }
  SUBCASE("trained_betas replace the named schedule") {
    const auto s = parsed(R"({"num_train_timesteps": 3, "trained_betas": [0.1, 0.2, 0.5]})");
    const Schedule schedule = s.make_schedule();
    CHECK(schedule.betas()[1] == 0.2);
    CHECK(schedule.alphas_cumprod()[2] == doctest::Approx(0.9 * 0.8 * 0.5));
    check_message(
        error_of([&] { parsed(R"({"num_train_timesteps": 4, "trained_betas": [0.1]})"); }),
        {file, "trained_betas", "expected 4 values", "found 1 values"});
    check_message(
        error_of([&] { parsed(R"({"num_train_timesteps": 2, "trained_betas": [0.1, 1.5]})"); }),
        {file, "trained_betas[1]", "(0, 1)", "1.5"});
  }
  SUBCASE("refused values name the file, the field and the value") {
    const std::vector<std::pair<std::string, std::vector<std::string>>> refused = {
        {R"({"prediction_type": "sample"})", {"prediction_type", "'sample'", "v_prediction"}},
        {R"({"prediction_type": 3})", {"prediction_type", "a string", "3"}},
        {R"({"beta_schedule": "sigmoid"})", {"beta_schedule", "'sigmoid'"}},
        {R"({"beta_end": "0.02"})", {"field 'beta_end'", "a finite number", "\"0.02\""}},
        {R"({"beta_end": 2})", {"beta_end", "(0, 1)", "2"}},
        {R"({"timestep_spacing": "karras"})", {"timestep_spacing", "'karras'"}},
        {R"({"steps_offset": -1})", {"field 'steps_offset'", "whole number", "-1"}},
        {R"({"steps_offset": 0.5})", {"field 'steps_offset'", "whole number", "0.5"}},
        {R"({"num_train_timesteps": 0})", {"field 'num_train_timesteps'", "0"}},
        {R"({"clip_sample": "no"})", {"field 'clip_sample'", "true or false", "\"no\""}},
        {R"({"clip_sample_range": 0})", {"field 'clip_sample_range'", "positive", "0"}},
        {R"({"thresholding": true})", {"field 'thresholding'", "dynamic thresholding", "true"}},
        {R"({"rescale_betas_zero_snr": true})", {"field 'rescale_betas_zero_snr'", "true"}},
        {R"({"variance_type": "fixed_large"})", {"field 'variance_type'", "\"fixed_large\""}},
        {R"({"skip_prk_steps": true})", {"field 'skip_prk_steps'", "no such field"}},
        {R"({"_class_name": "DDPMScheduler", "set_alpha_to_one": true})",
         {"field 'set_alpha_to_one'", "DDPMScheduler does not read it"}},
        {R"({"eta": 1.5})", {"field 'eta'", "[0, 1]", "1.5"}},
        {R"({"_class_name": "PNDMScheduler"})",
         {"field '_class_name'", "DDIMScheduler", "\"PNDMScheduler\""}},
        {R"([1, 2])", {"a JSON object", "array"}},
    };
    for (const auto& [text, parts] : refused) {
      INFO(text);
      const std::string message = error_of([&] { parsed(text); });
      CHECK_MESSAGE(message.starts_with(file), message);
      for (const auto& part : parts)
        CHECK_MESSAGE(message.find(part) != std::string::npos, message, " lacks ", part);
    }
  }
  SUBCASE("what is written reads back the same") {
    pipeline::SchedulerSettings s = parsed(R"({"beta_schedule": "squaredcos_cap_v2",
        "prediction_type": "v_prediction", "timestep_spacing": "linspace", "steps_offset": 2,
        "clip_sample": false, "set_alpha_to_one": false})");
    const auto again = parsed(pipeline::scheduler_config(s, "0.42.1").dump());
    CHECK(again.schedule.beta_schedule == BetaSchedule::squaredcos_cap_v2);
    CHECK(again.prediction_type == PredictionType::v_prediction);
    CHECK(again.timestep_spacing == TimestepSpacing::linspace);
    CHECK(again.steps_offset == 2);
    CHECK_FALSE(again.clip_sample);
    CHECK_FALSE(again.set_alpha_to_one);
  }
}

TEST_CASE("samplers by name: options as diffusers' from_config, refused by name") {
  const pipeline::SchedulerSettings base = pipeline::parse_scheduler_config(
      json::parse(R"({"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
                      "prediction_type": "v_prediction", "clip_sample": false,
                      "set_alpha_to_one": false})"),
      "base");
  SUBCASE("another class keeps the schedule and the fields it also reads") {
    const auto ddpm = pipeline::with_options(base, {{"_class_name", "DDPMScheduler"}});
    CHECK(ddpm.class_name == "DDPMScheduler");
    CHECK(ddpm.schedule.beta_schedule == BetaSchedule::scaled_linear);
    CHECK(ddpm.prediction_type == PredictionType::v_prediction);
    CHECK_FALSE(ddpm.clip_sample);
    CHECK(std::holds_alternative<DDPM>(pipeline::make_sampler(ddpm, 20)));
    const auto back = pipeline::with_options(ddpm, {{"_class_name", "DDIMScheduler"}});
    CHECK(back.set_alpha_to_one);  // DDPM does not read it: DDIM's default again
  }
  SUBCASE("a field replaces the setting") {
    const auto noisy = pipeline::with_options(base, {{"eta", 0.3}});
    const auto sampler = pipeline::make_sampler(noisy, 20);
    REQUIRE(std::holds_alternative<DDIM>(sampler));
    CHECK(std::get<DDIM>(sampler).config().eta == 0.3);
    CHECK_FALSE(std::get<DDIM>(sampler).config().set_alpha_to_one);
    CHECK(std::get<DDIM>(sampler).timesteps().size() == 20);
  }
  SUBCASE("what the class does not read, unknown classes and names, and bad counts") {
    const auto ddpm = pipeline::with_options(base, {{"_class_name", "DDPMScheduler"}});
    check_message(error_of([&] {
                    pipeline::with_options(ddpm, {{"eta", 0.3}});
                  }),
                  {"sampler options", "field 'eta'", "DDPMScheduler does not read it"});
    check_message(error_of([&] {
                    pipeline::with_options(base, {{"_class_name", "Foo"}});
                  }),
                  {"_class_name", "DDIMScheduler", "\"Foo\""});
    check_message(error_of([&] { pipeline::with_options(base, json("eta")); }),
                  {"sampler options", "a JSON object", "string"});
    check_message(error_of([] { pipeline::sampler_class("dpm", "--sampler"); }),
                  {"--sampler", "one of ddim, ddpm", "'dpm'"});
    CHECK(pipeline::sampler_class("ddpm") == "DDPMScheduler");
    check_message(error_of([&] { pipeline::make_sampler(base, 0); }),
                  {"num_inference_steps", "[1, 1000]", "found 0"});
  }
}

TEST_CASE("each sampler's settings take the setting of each of their fields' names") {
  // Every setting away from its default, so that one a sampler's settings miss shows.
  pipeline::SchedulerSettings s;
  s.prediction_type = PredictionType::v_prediction;
  s.clip_sample = false;
  s.clip_sample_range = 2.5;
  s.set_alpha_to_one = false;
  s.timestep_spacing = TimestepSpacing::trailing;
  s.steps_offset = 1;
  s.eta = 0.5;
  s.use_karras_sigmas = true;
  s.sigma_min = 0.1;
  s.sigma_max = 9;
  s.final_sigmas_type = FinalSigmasType::sigma_min;
  s.s_churn = 1;
  s.s_tmin = 0.2;
  s.s_tmax = 3;
  s.s_noise = 1.5;
  s.solver_order = 3;
  s.lower_order_final = false;
  s.euler_at_final = true;
  s.lambda_min_clipped = -4;
  s.disable_corrector = {1, 2};
  auto check_common = [&](const auto& c) {
    CHECK(c.prediction_type == s.prediction_type);
    CHECK(c.timestep_spacing == s.timestep_spacing);
    CHECK(c.steps_offset == s.steps_offset);
  };
  auto check_clip = [&](const auto& c) {
    CHECK(c.clip_sample == s.clip_sample);
    CHECK(c.clip_sample_range == s.clip_sample_range);
  };
  const DDIMConfig ddim = s.ddim();
  check_common(ddim);
  check_clip(ddim);
  CHECK(ddim.set_alpha_to_one == s.set_alpha_to_one);
  CHECK(ddim.eta == s.eta);
  const DDPMConfig ddpm = s.ddpm();
  check_common(ddpm);
  check_clip(ddpm);
  const EulerDiscreteConfig euler = s.euler();
  check_common(euler);
  CHECK(euler.use_karras_sigmas == s.use_karras_sigmas);
  CHECK(euler.sigma_min == s.sigma_min);
  CHECK(euler.sigma_max == s.sigma_max);
  CHECK(euler.final_sigmas_type == s.final_sigmas_type);
  CHECK(euler.s_churn == s.s_churn);
  CHECK(euler.s_tmin == s.s_tmin);
  CHECK(euler.s_tmax == s.s_tmax);
  CHECK(euler.s_noise == s.s_noise);
  check_common(s.euler_ancestral());
  const HeunDiscreteConfig heun = s.heun();
  check_common(heun);
  check_clip(heun);
  CHECK(heun.use_karras_sigmas == s.use_karras_sigmas);
  s.solver_type = "heun";
  const DPMSolverMultistepConfig dpm = s.dpm_solver_multistep();
  check_common(dpm);
  CHECK(dpm.solver_order == s.solver_order);
  CHECK(dpm.solver_type == DPMSolverType::heun);
  CHECK(dpm.lower_order_final == s.lower_order_final);
  CHECK(dpm.euler_at_final == s.euler_at_final);
  CHECK(dpm.use_karras_sigmas == s.use_karras_sigmas);
  CHECK(dpm.final_sigmas_type == s.final_sigmas_type);
  CHECK(dpm.lambda_min_clipped == s.lambda_min_clipped);
  check_message(error_of([&] { s.unipc_multistep(); }), {"solver_type", "bh1", "'heun'"});
  s.solver_type = "bh1";
  const UniPCMultistepConfig unipc = s.unipc_multistep();
  check_common(unipc);
  CHECK(unipc.solver_order == s.solver_order);
  CHECK(unipc.solver_type == UniPCSolverType::bh1);
  CHECK(unipc.lower_order_final == s.lower_order_final);
  CHECK(unipc.disable_corrector == s.disable_corrector);
  CHECK(unipc.use_karras_sigmas == s.use_karras_sigmas);
  CHECK(unipc.final_sigmas_type == s.final_sigmas_type);
  check_message(error_of([&] { s.dpm_solver_multistep(); }), {"solver_type", "midpoint", "'bh1'"});
}

TEST_CASE("first_evaluation: the last int(steps * strength) steps, as diffusers' img2img") {
  const DDIM ddim(Schedule(ScheduleConfig{}), DDIMConfig{}, 10);
  CHECK(first_evaluation(ddim, 1.0) == 0);
  CHECK(first_evaluation(ddim, 0.75) == 3);  // int(7.5) = 7 steps run
  CHECK(first_evaluation(ddim, 0.1) == 9);
  check_message(error_of([&] { first_evaluation(ddim, 0.05); }),
                {"strength", "at least 1 / steps", "0.05"});
  check_message(error_of([&] { first_evaluation(ddim, 1.5); }), {"strength", "[0, 1]", "1.5"});
  check_message(error_of([&] { first_evaluation(ddim, -0.1); }), {"strength", "[0, 1]"});
}
