// Learning-rate schedules: diffusers' get_scheduler factors (tests/golden/lr_schedules.json, from
// tools/golden/make_training_golden.py), the names and the checks; inside LatentDiffusion the
// rate of each optimiser step, skipped steps, and the schedules in the training state (an exact
// resume, refusal of another schedule, old checkpoints without one).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <ldm/ldm.hpp>
#include <limits>
#include <string>

#include "support/small_pipeline.hpp"

using namespace ldm;
using train::LRSchedule;
using train::LRScheduleType;

namespace {
using test::Small;
using Model = LatentDiffusion<Small>;
constexpr index_t N = 2;

std::filesystem::path fresh_folder(const std::string& name) {
  auto path = std::filesystem::temp_directory_path() / ("ldm_test_lr_schedule_" + name);
  std::filesystem::remove_all(path);
  return path;
}

TrainingOptions scheduled() {
  TrainingOptions options;
  options.autoencoder_lr_schedule = {
      .type = LRScheduleType::cosine, .warmup_steps = 1, .total_steps = 6, .num_cycles = 0.5};
  options.unet_lr_schedule = {.type = LRScheduleType::linear, .warmup_steps = 2, .total_steps = 5};
  return options;
}

void run_steps(Model& model, int steps, std::uint64_t first) {
  for (int i = 0; i < steps; ++i)
    model.autoencoder_step<N>(test::small_batch<N>(first + std::uint64_t(i)));
  for (int i = 0; i < steps; ++i)
    model.diffusion_step<N>(test::small_batch<N>(first + 100 + std::uint64_t(i)));
}

// Rewrites a checkpoint's training state without the metadata keys that start with `prefix`.
void drop_metadata(const std::filesystem::path& folder, const std::string& prefix) {
  const auto path = folder / "training_state.safetensors";
  io::SafetensorsWriter out;
  {
    const auto file = io::SafetensorsFile::open(path);
    for (const auto& key : file.names()) {
      const auto& entry = file.entry(key);
      std::size_t count = 1;
      for (auto extent : entry.shape)
        count *= std::size_t(extent);
      std::vector<float> values(count);
      file.read<float>(key, std::span(values), entry.shape);
      out.add(key, std::span<const float>(values), entry.shape);
    }
    for (const auto& [key, value] : file.metadata())
      if (!key.starts_with(prefix)) out.set_metadata(key, value);
  }
  out.write(path);
}
}  // namespace

TEST_CASE("factors are diffusers' get_scheduler learning rates, step by step") {
  const auto golden =
      pipeline::read_json(std::string(LDM_TEST_DATA_DIR) + "/golden/lr_schedules.json");
  REQUIRE(golden["cases"].size() >= 8);
  for (const auto& c : golden["cases"]) {
    const LRSchedule schedule{
        .type = train::lr_schedule_type(c["type"].get<std::string>(), "golden type"),
        .warmup_steps = c["warmup_steps"].get<std::int64_t>(),
        .total_steps = c["total_steps"].get<std::int64_t>(),
        .num_cycles = c["num_cycles"].get<double>()};
    CAPTURE(c["type"].get<std::string>());
    CAPTURE(schedule.warmup_steps);
    CAPTURE(schedule.total_steps);
    CAPTURE(schedule.num_cycles);
    schedule.validate("golden");
    const auto& factors = c["factors"];
    for (std::size_t step = 0; step < factors.size(); ++step) {
      CAPTURE(step);
      // The same double arithmetic as Python's; cos may differ in its last bit.
      CHECK(schedule.factor(std::int64_t(step)) ==
            doctest::Approx(factors[step].get<double>()).epsilon(1e-14));
    }
  }
}

TEST_CASE("schedule names are diffusers'; the ones ldm lacks are refused by name") {
  for (auto type : {LRScheduleType::constant, LRScheduleType::constant_with_warmup,
                    LRScheduleType::linear, LRScheduleType::cosine})
    CHECK(train::lr_schedule_type(train::to_string(type), "--lr_scheduler") == type);
  for (const char* missing : {"cosine_with_restarts", "polynomial", "piecewise_constant"}) {
    CAPTURE(missing);
    CHECK_THROWS_WITH_AS(train::lr_schedule_type(missing, "--lr_scheduler"),
                         doctest::Contains(("--lr_scheduler: '" + std::string(missing) +
                                            "' is a diffusers schedule that ldm does not implement")
                                               .c_str()),
                         Error);
  }
  CHECK_THROWS_WITH_AS(train::lr_schedule_type("Cosine", "--lr_scheduler"),
                       "--lr_scheduler: expected one of constant, constant_with_warmup, linear, "
                       "cosine, found 'Cosine'",
                       Error);
}

TEST_CASE("a schedule's numbers are checked against its type, by name") {
  auto refused = [](LRSchedule schedule, const char* message) {
    CAPTURE(message);
    CHECK_THROWS_WITH_AS(schedule.validate("unet_lr_schedule"), doctest::Contains(message), Error);
  };
  refused({.type = LRScheduleType::constant_with_warmup, .warmup_steps = -1},
          "unet_lr_schedule.warmup_steps: expected >= 0, found -1");
  refused({.type = LRScheduleType::linear, .warmup_steps = 0, .total_steps = 0},
          "unet_lr_schedule.total_steps: expected > 0, found 0");
  refused({.type = LRScheduleType::cosine, .warmup_steps = 11, .total_steps = 10},
          "unet_lr_schedule.warmup_steps: expected <= total_steps (10), found 11");
  refused({.type = LRScheduleType::cosine, .total_steps = 10, .num_cycles = 0},
          "unet_lr_schedule.num_cycles: expected a positive finite number, found 0");
  refused({.type = LRScheduleType::cosine,
           .total_steps = 10,
           .num_cycles = std::numeric_limits<double>::infinity()},
          "unet_lr_schedule.num_cycles");
  // The numbers a type does not use are not checked: constant ignores them all.
  CHECK_NOTHROW(LRSchedule{.total_steps = -5}.validate("x"));
  CHECK_NOTHROW(
      LRSchedule{.type = LRScheduleType::constant_with_warmup, .warmup_steps = 3}.validate("x"));

  TrainingOptions options;
  options.autoencoder_lr_schedule = {.type = LRScheduleType::linear};
  CHECK_THROWS_WITH_AS(Model(1, options),
                       doctest::Contains("TrainingOptions: autoencoder_lr_schedule.total_steps"),
                       Error);
}

TEST_CASE("each optimiser step uses the base rate times factor(optimiser steps taken)") {
  const TrainingOptions options = scheduled();
  Model model(2, options);
  // Step 0 of a warm-up has factor 0: the first step leaves the weights as they were.
  const auto unet_before = model.training_unet_values_host();
  const auto autoencoder_before = model.autoencoder_values_host();
  for (std::int64_t k = 0; k < 7; ++k) {
    CAPTURE(k);
    model.autoencoder_step<N>(test::small_batch<N>(std::uint64_t(k)));
    model.diffusion_step<N>(test::small_batch<N>(50 + std::uint64_t(k)));
    CHECK(model.autoencoder_optimizer().config().lr ==
          options.autoencoder_optimizer.lr * options.autoencoder_lr_schedule.factor(k));
    CHECK(model.unet_optimizer().config().lr ==
          options.unet_optimizer.lr * options.unet_lr_schedule.factor(k));
    if (k == 0) {
      CHECK(model.autoencoder_optimizer().config().lr == 0);
      CHECK(model.training_unet_values_host() == unet_before);
      CHECK(model.autoencoder_values_host() == autoencoder_before);
    }
  }
  CHECK(model.unet_optimizer().config().lr == 0);  // linear ends at total_steps = 5
}

TEST_CASE("a skipped step does not advance the schedule") {
  Model model(3, scheduled());
  model.diffusion_step<N>(test::small_batch<N>(0));
  model.diffusion_step<N>(test::small_batch<N>(1));
  const double lr = model.unet_optimizer().config().lr;  // factor(1) = 0.5
  auto poisoned = test::small_batch<N>(2);
  poisoned[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK(model.diffusion_step<N>(poisoned).skipped);
  CHECK(model.unet_optimizer().config().lr == lr);
  CHECK(model.unet_optimizer().steps() == 2);
  model.diffusion_step<N>(test::small_batch<N>(3));
  CHECK(model.unet_optimizer().config().lr ==
        model.options().unet_optimizer.lr * model.options().unet_lr_schedule.factor(2));
}

TEST_CASE("a constant schedule leaves a rate set between steps") {
  Model model(4);
  model.unet_optimizer().set_lr(1e-5);
  model.diffusion_step<N>(test::small_batch<N>(0));
  CHECK(model.unet_optimizer().config().lr == 1e-5);
}

TEST_CASE("resuming with a schedule: 2 steps, save, load, 2 more are 4 steps straight") {
  const auto folder = fresh_folder("resume");
  Model straight(5, scheduled());
  run_steps(straight, 2, 0);
  run_steps(straight, 2, 10);

  Model first(5, scheduled());
  run_steps(first, 2, 0);
  first.save(folder);
  Model resumed(777, scheduled());
  resumed.load(folder);
  run_steps(resumed, 2, 10);

  CHECK(resumed.autoencoder_optimizer().config().lr ==
        straight.autoencoder_optimizer().config().lr);
  CHECK(resumed.unet_optimizer().config().lr == straight.unet_optimizer().config().lr);
  CHECK(resumed.autoencoder_values_host() == straight.autoencoder_values_host());
  CHECK(resumed.training_unet_values_host() == straight.training_unet_values_host());
  CHECK(resumed.ema_unet_values_host() == straight.ema_unet_values_host());
  std::filesystem::remove_all(folder);
}

TEST_CASE("load() refuses a checkpoint saved with another schedule, naming model, field, values") {
  const auto folder = fresh_folder("other");
  Model saved(6, scheduled());
  saved.diffusion_step<N>(test::small_batch<N>(0));
  saved.save(folder);

  TrainingOptions other_warmup = scheduled();
  other_warmup.unet_lr_schedule.warmup_steps = 3;
  Model a(6, other_warmup);
  CHECK_THROWS_WITH_AS(a.load(folder),
                       doctest::Contains("the UNet's learning-rate schedule differs from the "
                                         "options' (unet_lr_schedule): warmup_steps is 2 in the "
                                         "checkpoint and 3 in the options"),
                       Error);
  TrainingOptions other_cycles = scheduled();
  other_cycles.autoencoder_lr_schedule.num_cycles = 0.25;
  Model b(6, other_cycles);
  CHECK_THROWS_WITH_AS(b.load(folder),
                       doctest::Contains("the autoencoder's learning-rate schedule differs from "
                                         "the options' (autoencoder_lr_schedule): num_cycles is "
                                         "0.5 in the checkpoint and 0.25 in the options"),
                       Error);
  Model c(6);  // constant schedules
  CHECK_THROWS_WITH_AS(c.load(folder),
                       doctest::Contains("type is cosine in the checkpoint and constant in the "
                                         "options"),
                       Error);
  // A refused checkpoint leaves the pipeline as it was.
  CHECK(c.diffusion_steps() == 0);
  CHECK(c.scaling_factor() == 1);
  CHECK(c.training_unet_values_host() == Model(6).training_unet_values_host());
  Model same(6, scheduled());
  CHECK_NOTHROW(same.load(folder));
  std::filesystem::remove_all(folder);
}

TEST_CASE("a training state saved before schedules existed counts as constant schedules") {
  const auto folder = fresh_folder("old");
  Model saved(7);
  saved.diffusion_step<N>(test::small_batch<N>(0));
  saved.save(folder);
  drop_metadata(folder, "autoencoder_lr_schedule.");
  drop_metadata(folder, "unet_lr_schedule.");
  Model constant(7);
  CHECK_NOTHROW(constant.load(folder));
  CHECK(constant.diffusion_steps() == 1);
  Model linear(7, scheduled());
  CHECK_THROWS_WITH_AS(linear.load(folder),
                       doctest::Contains("type is constant in the checkpoint and cosine"), Error);
  std::filesystem::remove_all(folder);
}
