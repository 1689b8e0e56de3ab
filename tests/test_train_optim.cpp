#include <doctest/doctest.h>

#include <omp.h>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <ldm/core/error.hpp>
#include <ldm/core/random.hpp>
#include <ldm/io/json.hpp>
#include <ldm/io/safetensors.hpp>
#include <ldm/train/adamw.hpp>
#include <ldm/train/clip_grad.hpp>
#include <ldm/train/ema.hpp>
#include <limits>
#include <span>
#include <string>
#include <vector>

using namespace ldm;
using namespace ldm::train;

namespace {

std::vector<float> normals(std::size_t n, std::uint64_t seed, std::uint64_t offset, float scale) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i)
    v[i] = scale * normal(seed, offset, i);
  return v;
}

// Element by element: |actual - expected| <= rel * (|expected| + floor), reporting the first bad
// index. `floor` is the scale of the quantity, for elements that happen to be near zero.
void check_close(std::span<const float> actual, const std::vector<double>& expected, double rel,
                 double floor, const std::string& what) {
  REQUIRE(actual.size() == expected.size());
  for (std::size_t i = 0; i < actual.size(); ++i) {
    const double e = expected[i];
    REQUIRE_MESSAGE(std::abs(actual[i] - e) <= rel * (std::abs(e) + floor),
                    what << " index " << i << ": " << actual[i] << " vs " << e);
  }
}

// AdamW as the paper writes it, in double: decoupled decay, moments, bias-corrected ratio.
struct TextbookAdamW {
  AdamWConfig config;
  std::vector<double> m, v;
  int t = 0;

  void step(std::vector<double>& p, const std::vector<float>& g, double lr) {
    ++t;
    const double c1 = 1 - std::pow(config.beta1, t), c2 = 1 - std::pow(config.beta2, t);
    for (std::size_t i = 0; i < p.size(); ++i) {
      p[i] *= 1 - lr * config.weight_decay;
      m[i] = config.beta1 * m[i] + (1 - config.beta1) * g[i];
      v[i] = config.beta2 * v[i] + (1 - config.beta2) * double(g[i]) * g[i];
      p[i] -= lr * (m[i] / c1) / (std::sqrt(v[i] / c2) + config.eps);
    }
  }
};

// Ten steps on a buffer large enough for the parallel loop, with a learning rate that changes
// every step, checked after each step against the textbook loop.
void check_against_textbook(AdamWConfig config, float grad_scale) {
  constexpr std::size_t n = 50'001;
  std::vector<float> params = normals(n, 1, 0, 1.0f);
  std::vector<double> reference(params.begin(), params.end());
  AdamW adam(config, n);
  TextbookAdamW textbook{config, std::vector<double>(n), std::vector<double>(n)};
  for (int k = 1; k <= 10; ++k) {
    const double lr = config.lr * (11 - k) / 10.0;
    adam.set_lr(lr);
    // Gradients drift in mean and scale so that the moments differ from the latest gradient.
    std::vector<float> grads = normals(n, 2, std::uint64_t(k), grad_scale * (1 + 0.2f * k));
    for (float& g : grads)
      g += grad_scale * 0.3f;
    adam.step(params, grads);
    textbook.step(reference, grads, lr);
    CHECK(adam.steps() == k);
    check_close(adam.exp_avg(), textbook.m, 1e-5, grad_scale, "exp_avg");
    check_close(adam.exp_avg_sq(), textbook.v, 1e-5, grad_scale * grad_scale, "exp_avg_sq");
    check_close(params, reference, 1e-6, 1.0, "param");
  }
  CHECK(adam.config().lr == doctest::Approx(config.lr / 10));
}

}  // namespace

TEST_CASE("AdamW: ten steps with a changing learning rate against a double textbook loop") {
  SUBCASE("torch's defaults") {
    check_against_textbook(AdamWConfig{}, 1.0f);
  }
  SUBCASE("large decay and eps, small beta1: every term moves the result") {
    // lr * weight_decay = 2.5% per step, eps near sqrt(v), and 1 - beta1 >= 0.5 takes torch's
    // other lerp formula.
    check_against_textbook(
        AdamWConfig{.lr = 0.05, .beta1 = 0.3, .beta2 = 0.9, .eps = 1e-3, .weight_decay = 0.5},
        1e-3f);
  }
}

TEST_CASE("AdamW: ten steps as torch.optim.AdamW takes them (tests/golden/adamw.safetensors)") {
  const auto file = io::SafetensorsFile::open(std::filesystem::path(LDM_TEST_DATA_DIR) /
                                              "golden/adamw.safetensors");
  REQUIRE(file.metadata().at("script") == "tools/golden/make_golden.py");
  const auto config = ldm::io::Json::parse(file.metadata().at("config"));
  const auto& args = config.at("args");
  REQUIRE_FALSE(args.at("amsgrad").get<bool>());
  REQUIRE_FALSE(args.at("maximize").get<bool>());
  const std::size_t n = config.at("sizes").at("param").at(0).get<std::size_t>();
  const int steps = config.at("steps").get<int>();
  const auto lr_per_step = config.at("lr_per_step").get<std::vector<double>>();
  REQUIRE(lr_per_step.size() == std::size_t(steps));

  const std::vector<std::int64_t> shape{std::int64_t(n)};
  auto read = [&](const std::string& name) {
    std::vector<float> v(n);
    file.read<float>(name, std::span<float>(v), shape);
    return v;
  };
  // Torch's CPU kernels fuse some multiply-adds and take an approximate square root, so the two
  // agree to a few ulps rather than bit for bit.
  auto check = [&](std::span<const float> actual, const std::string& name, double floor) {
    const std::vector<float> expected = read(name);
    check_close(actual, std::vector<double>(expected.begin(), expected.end()), 1e-6, floor, name);
  };

  AdamW adam(AdamWConfig{.lr = args.at("lr").get<double>(),
                         .beta1 = args.at("betas").at(0).get<double>(),
                         .beta2 = args.at("betas").at(1).get<double>(),
                         .eps = args.at("eps").get<double>(),
                         .weight_decay = args.at("weight_decay").get<double>()},
             n);
  std::vector<float> params = read("param_init");
  for (int k = 1; k <= steps; ++k) {
    const std::string step = std::to_string(k);
    adam.set_lr(lr_per_step[std::size_t(k - 1)]);
    adam.step(params, read("grad." + step));
    check(params, "param." + step, 1.0);
    check(adam.exp_avg(), "exp_avg." + step, 0.1);
    check(adam.exp_avg_sq(), "exp_avg_sq." + step, 1e-3);
  }
}

TEST_CASE("AdamW: restoring saved state continues the run exactly") {
  constexpr std::size_t n = 1'001;
  const std::vector<float> start = normals(n, 3, 0, 1.0f);
  auto grads = [](int k) { return normals(n, 4, std::uint64_t(k), 0.5f); };
  auto lr_at = [](int k) { return k <= 5 ? 1e-3 : 5e-4; };

  std::vector<float> straight = start;
  AdamW uninterrupted(AdamWConfig{}, n);
  for (int k = 1; k <= 10; ++k) {
    uninterrupted.set_lr(lr_at(k));
    uninterrupted.step(straight, grads(k));
  }

  std::vector<float> resumed = start;
  AdamW first(AdamWConfig{}, n);
  for (int k = 1; k <= 5; ++k) {
    first.set_lr(lr_at(k));
    first.step(resumed, grads(k));
  }
  const std::vector<float> m(first.exp_avg().begin(), first.exp_avg().end());
  const std::vector<float> v(first.exp_avg_sq().begin(), first.exp_avg_sq().end());
  AdamW second(AdamWConfig{}, n);
  second.restore(first.steps(), m, v);
  CHECK(second.steps() == 5);
  for (int k = 6; k <= 10; ++k) {
    second.set_lr(lr_at(k));
    second.step(resumed, grads(k));
  }

  CHECK(second.steps() == 10);
  for (std::size_t i = 0; i < n; ++i) {
    REQUIRE(resumed[i] == straight[i]);
    REQUIRE(second.exp_avg()[i] == uninterrupted.exp_avg()[i]);
    REQUIRE(second.exp_avg_sq()[i] == uninterrupted.exp_avg_sq()[i]);
  }
}

TEST_CASE("AdamW: bad configurations and state are errors") {
  CHECK_THROWS_AS(AdamW(AdamWConfig{.lr = -1e-3}, 4), Error);
  CHECK_THROWS_AS(AdamW(AdamWConfig{.beta1 = 1.0}, 4), Error);
  CHECK_THROWS_AS(AdamW(AdamWConfig{.beta2 = -0.1}, 4), Error);
  CHECK_THROWS_AS(AdamW(AdamWConfig{.eps = -1e-8}, 4), Error);
  CHECK_THROWS_AS(AdamW(AdamWConfig{.weight_decay = -1e-2}, 4), Error);
  AdamW adam(AdamWConfig{}, 4);
  CHECK_THROWS_AS(adam.set_lr(std::numeric_limits<double>::quiet_NaN()), Error);
  const std::vector<float> four(4), three(3);
  CHECK_THROWS_AS(adam.restore(1, three, four), Error);
  CHECK_THROWS_AS(adam.restore(1, four, three), Error);
  CHECK_THROWS_AS(adam.restore(-1, four, four), Error);
  CHECK_NOTHROW(adam.restore(7, four, four));
  CHECK(adam.steps() == 7);
}

TEST_CASE("clip_grad_norm: the norm, and scaling only above the threshold") {
  // Above the executor's parallel threshold, and a norm near 1e-3 so that the 1e-6 added to it
  // shows in the clipping coefficient.
  constexpr std::size_t n = 100'003;
  const std::vector<float> grads = normals(n, 5, 0, 3e-6f);
  double sum_sq = 0;
  for (float g : grads)
    sum_sq += double(g) * g;
  const double norm = std::sqrt(sum_sq);

  SUBCASE("below the threshold nothing changes") {
    std::vector<float> g = grads;
    CHECK(clip_grad_norm(g, 2 * norm) == doctest::Approx(norm).epsilon(1e-12));
    for (std::size_t i = 0; i < n; ++i)
      REQUIRE(g[i] == grads[i]);
  }
  SUBCASE("above the threshold the norm becomes max_norm") {
    std::vector<float> g = grads;
    const double max_norm = norm / 4;
    CHECK(clip_grad_norm(g, max_norm) == doctest::Approx(norm).epsilon(1e-12));
    const double coef = max_norm / (norm + 1e-6);
    double clipped_sq = 0;
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(g[i] == doctest::Approx(grads[i] * coef).epsilon(1e-6));
      clipped_sq += double(g[i]) * g[i];
    }
    CHECK(std::sqrt(clipped_sq) == doctest::Approx(norm * coef).epsilon(1e-6));
    CHECK(std::sqrt(clipped_sq) < max_norm);
  }
  SUBCASE("the norm does not depend on the thread count") {
    std::vector<float> g = grads;
    omp_set_num_threads(1);
    const double one = clip_grad_norm(g, 1e9);
    for (int threads : {2, 3, 7}) {
      omp_set_num_threads(threads);
      CHECK(clip_grad_norm(g, 1e9) == one);
    }
  }
}

TEST_CASE("clip_grad_norm: zero, empty and non-finite gradients") {
  std::vector<float> zeros(17, 0.0f);
  CHECK(clip_grad_norm(zeros, 1.0) == 0.0);
  for (float g : zeros)
    CHECK(g == 0.0f);

  CHECK(clip_grad_norm(std::span<float>(), 1.0) == 0.0);

  // As torch without error_if_nonfinite: a NaN norm scales everything to NaN, an infinite norm
  // scales by zero (and inf * 0 is NaN).
  std::vector<float> with_nan{1.0f, std::numeric_limits<float>::quiet_NaN(), -2.0f};
  CHECK(std::isnan(clip_grad_norm(with_nan, 1.0)));
  for (float g : with_nan)
    CHECK(std::isnan(g));

  std::vector<float> with_inf{1.0f, std::numeric_limits<float>::infinity(), -2.0f};
  CHECK(std::isinf(clip_grad_norm(with_inf, 1.0)));
  CHECK(with_inf[0] == 0.0f);
  CHECK(std::isnan(with_inf[1]));
  CHECK(with_inf[2] == 0.0f);
}

TEST_CASE("EMA: decay schedule as diffusers' get_decay") {
  const std::vector<float> none;
  SUBCASE("without warm-up: (1 + s) / (10 + s) with s = step - 1") {
    EMA ema(EMAConfig{}, none);
    CHECK(ema.decay_at(0) == 0.0);
    CHECK(ema.decay_at(1) == 0.0);
    CHECK(ema.decay_at(2) == doctest::Approx(0.18181818181818182).epsilon(1e-15));
    CHECK(ema.decay_at(3) == doctest::Approx(0.25).epsilon(1e-15));
    CHECK(ema.decay_at(10) == doctest::Approx(0.5263157894736842).epsilon(1e-15));
    CHECK(ema.decay_at(1'000'000'000) == doctest::Approx(0.9999).epsilon(1e-15));
  }
  SUBCASE("capped by decay, floored by min_decay except before the first real update") {
    EMA ema(EMAConfig{.decay = 0.5, .min_decay = 0.3}, none);
    CHECK(ema.decay_at(1) == 0.0);
    CHECK(ema.decay_at(2) == doctest::Approx(0.3).epsilon(1e-15));
    CHECK(ema.decay_at(3) == doctest::Approx(0.3).epsilon(1e-15));
    CHECK(ema.decay_at(5) == doctest::Approx(0.35714285714285715).epsilon(1e-15));  // 5/14
    CHECK(ema.decay_at(20) == doctest::Approx(0.5).epsilon(1e-15));
  }
  SUBCASE("update_after_step delays the schedule") {
    EMA ema(EMAConfig{.update_after_step = 3}, none);
    for (int step = 1; step <= 4; ++step)
      CHECK(ema.decay_at(step) == 0.0);
    CHECK(ema.decay_at(5) == doctest::Approx(0.18181818181818182).epsilon(1e-15));
    CHECK(ema.decay_at(6) == doctest::Approx(0.25).epsilon(1e-15));
  }
  SUBCASE("warm-up: 1 - (1 + s / inv_gamma)^-power") {
    EMA ema(EMAConfig{.use_ema_warmup = true}, none);
    CHECK(ema.decay_at(1) == 0.0);
    CHECK(ema.decay_at(2) == doctest::Approx(0.3700394750525634).epsilon(1e-15));   // 1 - 2^(-2/3)
    CHECK(ema.decay_at(11) == doctest::Approx(0.7978199917664258).epsilon(1e-15));  // 1 - 11^(-2/3)
    EMA capped(EMAConfig{.decay = 0.999, .use_ema_warmup = true}, none);
    CHECK(capped.decay_at(1'000'000'000) == doctest::Approx(0.999).epsilon(1e-15));
  }
  SUBCASE("warm-up with inv_gamma, power and update_after_step") {
    EMA ema(
        EMAConfig{.update_after_step = 2, .use_ema_warmup = true, .inv_gamma = 10, .power = 0.75},
        none);
    CHECK(ema.decay_at(3) == 0.0);
    CHECK(ema.decay_at(4) == doctest::Approx(0.06898755537777723).epsilon(1e-15));  // 1 - 1.1^-0.75
    CHECK(ema.decay_at(8) == doctest::Approx(0.26221205353311894).epsilon(1e-15));  // 1 - 1.5^-0.75
  }
}

TEST_CASE("EMA: shadow updates against a hand loop, and resuming from saved state") {
  constexpr std::size_t n = 40'001;
  const std::vector<float> start = normals(n, 6, 0, 1.0f);
  auto params_at = [](int k) { return normals(n, 7, std::uint64_t(k), 1.0f); };
  // Decays of steps 1..5 with the default configuration: 0, then (1 + s) / (10 + s).
  const double decays[] = {0.0, 2.0 / 11, 3.0 / 12, 4.0 / 13, 5.0 / 14};

  EMA ema(EMAConfig{}, start);
  CHECK(ema.size() == n);
  std::vector<double> expected(start.begin(), start.end());
  for (int k = 1; k <= 5; ++k) {
    const std::vector<float> p = params_at(k);
    ema.step(p);
    for (std::size_t i = 0; i < n; ++i)
      expected[i] -= (1 - decays[k - 1]) * (expected[i] - p[i]);
    CHECK(ema.optimization_step() == k);
    check_close(ema.shadow(), expected, 1e-6, 1.0, "shadow");
  }

  std::vector<float> out(n);
  ema.copy_to(out);
  for (std::size_t i = 0; i < n; ++i)
    REQUIRE(out[i] == ema.shadow()[i]);

  EMA first(EMAConfig{}, start);
  for (int k = 1; k <= 3; ++k)
    first.step(params_at(k));
  const std::vector<float> saved(first.shadow().begin(), first.shadow().end());
  EMA second(EMAConfig{}, params_at(99));
  second.restore(first.optimization_step(), saved);
  for (int k = 4; k <= 5; ++k)
    second.step(params_at(k));
  CHECK(second.optimization_step() == 5);
  for (std::size_t i = 0; i < n; ++i)
    REQUIRE(second.shadow()[i] == ema.shadow()[i]);

  CHECK_THROWS_AS(second.restore(1, std::vector<float>(n - 1)), Error);
  CHECK_THROWS_AS(second.restore(-1, saved), Error);
}
