// LatentDiffusion and numbers that are not finite: a step whose loss or gradient norm is NaN or
// infinite is not applied and the run goes on as if its batch had never come; too many in a row
// stop training with an error naming the loss and the step; save() refuses weights that are not
// finite, and sampling refuses weights or a scaling factor that would make a NaN or black image.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <ldm/ldm.hpp>
#include <limits>

#include "support/small_pipeline.hpp"

using namespace ldm;

namespace {
using test::Small;
using Model = LatentDiffusion<Small>;
constexpr index_t N = 4;
using Images = Model::images<N>;

std::filesystem::path fresh_folder(const std::string& name) {
  auto path = std::filesystem::temp_directory_path() / ("ldm_test_nonfinite_" + name);
  std::filesystem::remove_all(path);
  return path;
}

Tensor<float, Images> poisoned_batch(std::uint64_t k) {
  auto x = test::small_batch<N>(k);
  x[5] = std::numeric_limits<float>::quiet_NaN();
  return x;
}

// Everything a resumed run depends on, read back as host vectors.
void check_same_state(const Model& a, Model& b) {
  CHECK(a.autoencoder_steps() == b.autoencoder_steps());
  CHECK(a.diffusion_steps() == b.diffusion_steps());
  CHECK(a.autoencoder_values_host() == b.autoencoder_values_host());
  CHECK(a.training_unet_values_host() == b.training_unet_values_host());
  CHECK(a.ema_unet_values_host() == b.ema_unet_values_host());
  auto& a_opt = const_cast<Model&>(a);
  CHECK(a_opt.autoencoder_optimizer().exp_avg_sq_host() ==
        b.autoencoder_optimizer().exp_avg_sq_host());
  CHECK(a_opt.unet_optimizer().exp_avg_host() == b.unet_optimizer().exp_avg_host());
  CHECK(a_opt.unet_optimizer().steps() == b.unet_optimizer().steps());
}

// Replaces the first element of `name` in a model folder's weights file with `value`.
void poison_weight(const std::filesystem::path& folder, const std::string& name, float value) {
  const auto path = folder / pipeline::weights_file;
  io::SafetensorsWriter out;
  bool found = false;
  {
    const auto file = io::SafetensorsFile::open(path);
    for (const auto& key : file.names()) {
      const auto& entry = file.entry(key);
      std::size_t count = 1;
      for (auto extent : entry.shape)
        count *= std::size_t(extent);
      std::vector<float> values(count);
      file.read<float>(key, std::span(values), entry.shape);
      if (key == name) values[0] = value, found = true;
      out.add(key, std::span<const float>(values), entry.shape);
    }
  }
  REQUIRE_MESSAGE(found, name);
  out.write(path);
}
}  // namespace

TEST_CASE("a step with a loss that is not finite is not applied: the run goes on as without it") {
  Model straight(3), skipping(3);
  for (std::uint64_t k : {0, 1}) {
    straight.autoencoder_step<N>(test::small_batch<N>(k));
    skipping.autoencoder_step<N>(test::small_batch<N>(k));
  }
  const auto skipped = skipping.autoencoder_step<N>(poisoned_batch(9));
  CHECK(skipped.skipped);
  CHECK(std::isnan(skipped.losses.pixel));
  CHECK(skipped.skipped_steps.in_a_row == 1);
  CHECK(skipped.skipped_steps.total == 1);
  CHECK(skipped.skipped_steps.cause == "L1 loss");
  CHECK(skipping.autoencoder_steps() == 2);
  for (std::uint64_t k : {2, 3}) {
    straight.autoencoder_step<N>(test::small_batch<N>(k));
    const auto applied = skipping.autoencoder_step<N>(test::small_batch<N>(k));
    CHECK(!applied.skipped);
    CHECK(applied.skipped_steps.in_a_row == 0);
    CHECK(applied.skipped_steps.total == 1);
  }

  for (std::uint64_t k : {100, 101}) {
    straight.diffusion_step<N>(test::small_batch<N>(k));
    skipping.diffusion_step<N>(test::small_batch<N>(k));
  }
  const auto skipped_diffusion = skipping.diffusion_step<N>(poisoned_batch(9));
  CHECK(skipped_diffusion.skipped);
  CHECK(skipped_diffusion.skipped_steps.cause == "input (the frozen autoencoder's latents)");
  CHECK(skipping.diffusion_steps() == 2);
  for (std::uint64_t k : {102, 103}) {
    straight.diffusion_step<N>(test::small_batch<N>(k));
    CHECK(!skipping.diffusion_step<N>(test::small_batch<N>(k)).skipped);
  }
  check_same_state(straight, skipping);
}

TEST_CASE("non-finite steps in a row stop training with an error naming the loss and the step") {
  TrainingOptions options;
  options.max_nonfinite_steps_in_a_row = 2;
  Model model(4, options);
  model.autoencoder_step<N>(test::small_batch<N>(0));
  const auto before = model.autoencoder_values_host();
  CHECK(model.autoencoder_step<N>(poisoned_batch(1)).skipped);
  CHECK_THROWS_WITH_AS(model.autoencoder_step<N>(poisoned_batch(2)),
                       doctest::Contains("the autoencoder's L1 loss is NaN at step 2, on 2 "
                                         "batches in a row"),
                       Error);
  CHECK(model.autoencoder_values_host() == before);
  CHECK(model.autoencoder_steps() == 1);

  options.max_nonfinite_steps_in_a_row = 0;
  CHECK_THROWS_WITH_AS(Model(4, options), doctest::Contains("max_nonfinite_steps_in_a_row"), Error);
}

TEST_CASE("a diverging learning rate ends training with an error, and what was saved stays good") {
  const auto folder = fresh_folder("diverging");
  TrainingOptions options;
  options.unet_optimizer.lr = 1e10;
  Model model(5, options);
  model.autoencoder_step<N>(test::small_batch<N>(0));
  model.diffusion_step<N>(test::small_batch<N>(1));
  std::string message;
  try {
    for (std::uint64_t k = 2; k < 50; ++k)
      model.diffusion_step<N>(test::small_batch<N>(k));
  } catch (const Error& e) {
    message = e.what();
  }
  MESSAGE(message);
  CHECK(message.find("training diverged: the UNet's epsilon MSE loss is ") != std::string::npos);
  CHECK(message.find(" at step 2, on 3 batches in a row") != std::string::npos);
  CHECK(model.diffusion_steps() == 1);
  // Whatever the run holds now, a save either writes finite weights or writes nothing.
  try {
    model.save(folder);
    for (const char* weights : {"vae", "unet"}) {
      const auto file = io::SafetensorsFile::open(folder / weights / pipeline::weights_file);
      for (const auto& name : file.names()) {
        std::vector<float> values(file.entry(name).end - file.entry(name).begin);
        values.resize(values.size() / sizeof(float));
        file.read<float>(name, std::span(values), file.entry(name).shape);
        CHECK_MESSAGE(nn::all_finite(values.data(), values.size()), name);
      }
    }
  } catch (const Error& e) {
    MESSAGE(std::string(e.what()));
    CHECK(std::string(e.what()).starts_with("save: "));
    CHECK(!std::filesystem::exists(folder));
  }
  std::filesystem::remove_all(folder);
}

TEST_CASE("save() refuses weights that are not finite, naming the parameter, and writes nothing") {
  const auto folder = fresh_folder("save"), copy = fresh_folder("save_copy");
  Model model(6);
  model.autoencoder_step<N>(test::small_batch<N>(0));
  model.diffusion_step<N>(test::small_batch<N>(1));
  model.save(folder);
  std::filesystem::remove(folder / "training_state.safetensors");
  poison_weight(folder / "unet", "conv_in.weight", std::numeric_limits<float>::infinity());

  Model loaded(0);
  loaded.load(folder);
  CHECK_THROWS_WITH_AS(loaded.save(copy),
                       doctest::Contains("save: the UNet's training weights: parameter "
                                         "'conv_in.weight' holds inf at its element 0"),
                       Error);
  CHECK(!std::filesystem::exists(copy));
  CHECK(!std::filesystem::exists(copy.string() + ".partial"));

  // The same over a previous checkpoint: it stays as it was.
  model.save(copy);
  const auto before = io::read_file(copy / "unet" / pipeline::weights_file);
  CHECK_THROWS_AS(loaded.save(copy), Error);
  CHECK(io::read_file(copy / "unet" / pipeline::weights_file) == before);
  std::filesystem::remove_all(folder);
  std::filesystem::remove_all(copy);
}

TEST_CASE("sampling refuses a NaN weight and a scaling factor of 0 instead of drawing black") {
  const auto folder = fresh_folder("sample");
  Model model(7);
  model.autoencoder_step<N>(test::small_batch<N>(0));
  model.diffusion_step<N>(test::small_batch<N>(1));
  model.save(folder);
  // Without the training state: it holds an EMA of its own, which load() would take instead.
  std::filesystem::remove(folder / "training_state.safetensors");
  Tensor<float, Images> images;

  SUBCASE("a NaN in the UNet") {
    poison_weight(folder / "unet", "mid_block.resnets.0.conv1.bias",
                  std::numeric_limits<float>::quiet_NaN());
    Model loaded(0);
    loaded.load(folder);
    CHECK_THROWS_WITH_AS(loaded.sample<N>(loaded.sampler(2), 1, images.view()),
                         doctest::Contains("sample: the UNet's EMA weights: parameter "
                                           "'mid_block.resnets.0.conv1.bias' holds NaN"),
                         Error);
  }
  SUBCASE("a NaN in the decoder") {
    poison_weight(folder / "vae", "decoder.conv_out.weight",
                  std::numeric_limits<float>::quiet_NaN());
    Model loaded(0);
    loaded.load(folder);
    CHECK_THROWS_WITH_AS(loaded.sample<N>(loaded.sampler(2), 1, images.view()),
                         doctest::Contains("'decoder.conv_out.weight' holds NaN"), Error);
    Tensor<float, Model::latents<N>> z;
    CHECK_THROWS_WITH_AS(loaded.decode<N>(z, images.view()),
                         doctest::Contains("decode: the autoencoder: parameter "
                                           "'decoder.conv_out.weight' holds NaN"),
                         Error);
  }
  SUBCASE("scaling_factor 0") {
    auto config = pipeline::read_json(folder / "vae/config.json");
    config["scaling_factor"] = 0;
    std::ofstream(folder / "vae/config.json") << config.dump();
    Model loaded(0);
    CHECK_THROWS_WITH_AS(loaded.load(folder), doctest::Contains("field 'scaling_factor'"), Error);
    CHECK_THROWS_AS(loaded.set_scaling_factor(0), Error);
    CHECK_THROWS_AS(loaded.set_scaling_factor(std::nan("")), Error);
  }
  std::filesystem::remove_all(folder);
}
