// LatentDiffusion: training steps, checkpoints in diffusers' format (both ways), exact resume,
// and refusal of checkpoints made for another configuration.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <ldm/ldm.hpp>

#include "support/golden.hpp"
#include "support/small_pipeline.hpp"

using namespace ldm;

namespace {
using test::Small;
using Model = LatentDiffusion<Small>;
constexpr index_t N = 4;

std::filesystem::path fresh_folder(const std::string& name) {
  auto path = std::filesystem::temp_directory_path() / ("ldm_test_" + name);
  std::filesystem::remove_all(path);
  return path;
}

void run_steps(Model& model, int autoencoder_steps, int diffusion_steps, std::uint64_t first) {
  for (int i = 0; i < autoencoder_steps; ++i)
    model.autoencoder_step<N>(test::small_batch<N>(first + i));
  for (int i = 0; i < diffusion_steps; ++i)
    model.diffusion_step<N>(test::small_batch<N>(first + 100 + i));
}
}  // namespace

TEST_CASE("training steps run, losses are finite, the autoencoder learns") {
  Model model(1);
  const auto first = model.autoencoder_step<N>(test::small_batch<N>(0)).losses.total;
  for (int i = 0; i < 20; ++i)
    model.autoencoder_step<N>(test::small_batch<N>(0));
  const auto later = model.autoencoder_step<N>(test::small_batch<N>(0)).losses.total;
  MESSAGE("autoencoder loss on one batch: " << first << " -> " << later);
  CHECK(std::isfinite(later));
  CHECK(later < first);
  const auto d = model.diffusion_step<N>(test::small_batch<N>(1));
  CHECK(std::isfinite(d.loss));
  CHECK(model.scaling_factor() > 0);
  Tensor<float, Model::images<N>> images;
  model.sample<N>(model.sampler(5), 3, images.view());
  CHECK(std::isfinite(sum(images)));
}

TEST_CASE("the same seed and data give the same run") {
  Model a(5), b(5);
  run_steps(a, 2, 2, 0);
  run_steps(b, 2, 2, 0);
  CHECK(a.training_unet_values_host() == b.training_unet_values_host());
}

TEST_CASE("resuming from a checkpoint after step k gives the weights of a run that never stopped") {
  const auto folder = fresh_folder("resume");
  Model straight(9);
  run_steps(straight, 3, 3, 0);
  run_steps(straight, 2, 5, 50);

  Model first(9);
  run_steps(first, 3, 3, 0);
  first.save(folder, {{"data.epoch", "4"}, {"phase", "diffusion"}});
  Model resumed(12345);  // another seed: everything must come from the checkpoint
  resumed.load(folder);
  CHECK(resumed.run_info() == ldm::RunInfo{{"data.epoch", "4"}, {"phase", "diffusion"}});
  run_steps(resumed, 2, 5, 50);

  CHECK(resumed.autoencoder_steps() == straight.autoencoder_steps());
  CHECK(resumed.diffusion_steps() == straight.diffusion_steps());
  CHECK(resumed.autoencoder_values_host() == straight.autoencoder_values_host());
  CHECK(resumed.training_unet_values_host() == straight.training_unet_values_host());
  CHECK(resumed.ema_unet_values_host() == straight.ema_unet_values_host());
  CHECK(resumed.scaling_factor() == straight.scaling_factor());
  std::filesystem::remove_all(folder);
}

TEST_CASE("training_unet() and ema_unet() say which weights they are, before and after load()") {
  const auto folder = fresh_folder("ema");
  Model trained(6);
  run_steps(trained, 1, 4, 0);
  // The EMA lags the training weights once the warm-up decay is above 0 (from the second step).
  REQUIRE(trained.ema_unet_values_host() != trained.training_unet_values_host());
  trained.save(folder);

  using Latents = Model::latents<N>;
  Tensor<float, Latents> x, y;
  x = randn<Latents>(3, 0);
  Tensor<float, Shape<N>> t;
  t = 500.0f;
  auto forward = [&](const Model::UNet& unet) {
    Model::UNet::Saved<N> saved;
    unet.forward(x, t, saved, y.view());
    return std::vector<float>(y.data(), y.data() + y.size);
  };

  // With the training state: each accessor gives back what the saving model had under its name;
  // unet/ (what diffusers loads) holds the EMA weights.
  Model resumed(7);
  resumed.load(folder);
  CHECK(resumed.training_unet_values_host() == trained.training_unet_values_host());
  CHECK(resumed.ema_unet_values_host() == trained.ema_unet_values_host());
  CHECK(forward(resumed.training_unet()) == forward(trained.training_unet()));
  CHECK(forward(resumed.ema_unet()) == forward(trained.ema_unet()));
  CHECK(forward(resumed.ema_unet()) != forward(resumed.training_unet()));

  // Without it (a folder as diffusers writes it), both are unet/'s weights: the EMA.
  std::filesystem::remove(folder / "training_state.safetensors");
  Model plain(8);
  plain.load(folder);
  CHECK(plain.training_unet_values_host() == trained.ema_unet_values_host());
  CHECK(plain.ema_unet_values_host() == trained.ema_unet_values_host());
  CHECK(forward(plain.training_unet()) == forward(trained.ema_unet()));
  CHECK(forward(plain.ema_unet()) == forward(trained.ema_unet()));

  // ema_unet() follows the steps taken after load().
  run_steps(resumed, 0, 1, 20);
  CHECK(forward(resumed.ema_unet()) != forward(plain.ema_unet()));
  std::filesystem::remove_all(folder);
}

TEST_CASE("a unet/ changed after the save is refused rather than shadowed by the training state") {
  const auto folder = fresh_folder("changed_unet"), other = fresh_folder("other_unet");
  Model model(6);
  run_steps(model, 1, 2, 0);
  model.save(folder);
  Model another(7);
  run_steps(another, 1, 2, 0);
  another.save(other);
  const auto weights = std::filesystem::path("unet") / pipeline::weights_file;
  std::filesystem::copy_file(other / weights, folder / weights,
                             std::filesystem::copy_options::overwrite_existing);
  Model loaded(8);
  CHECK_THROWS_WITH_AS(loaded.load(folder),
                       doctest::Contains("unet/ was changed after this checkpoint was saved. "
                                         "Remove the training state"),
                       Error);
  std::filesystem::remove_all(folder);
  std::filesystem::remove_all(other);
}

TEST_CASE("a checkpoint is a diffusers folder and replaces the previous one atomically") {
  const auto folder = fresh_folder("layout");
  Model model(2);
  run_steps(model, 1, 1, 0);
  model.save(folder);
  for (const char* file : {"vae/config.json", "vae/diffusion_pytorch_model.safetensors",
                           "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
                           "scheduler/scheduler_config.json", "training_state.safetensors"})
    CHECK_MESSAGE(std::filesystem::exists(folder / file), file);
  const auto vae = pipeline::read_json(folder / "vae/config.json");
  CHECK(vae["_class_name"] == "AutoencoderKL");
  CHECK(vae["scaling_factor"].get<double>() == model.scaling_factor());
  auto unet = io::SafetensorsFile::open(folder / "unet/diffusion_pytorch_model.safetensors");
  CHECK(unet.entry("conv_in.weight").shape == std::vector<std::int64_t>{8, 2, 3, 3});

  // A failed save leaves the previous checkpoint whole and no partial folder behind.
  const auto before = pipeline::checkpoint_files(folder);
  CHECK_THROWS_AS(
      pipeline::save_checkpoint(
          folder, {}, [](const std::filesystem::path&) { fail("disk full (simulated)"); }),
      Error);
  CHECK(std::filesystem::exists(folder / "unet/diffusion_pytorch_model.safetensors"));
  CHECK(pipeline::checkpoint_files(folder) == before);
  Model reloaded(3);
  reloaded.load(folder);
  std::filesystem::remove_all(folder);
}

TEST_CASE("a checkpoint records the ldm version that wrote it; loading ignores that version") {
  const auto folder = fresh_folder("version");
  Model model(5);
  model.save(folder);
  for (const char* file :
       {"vae/config.json", "unet/config.json", "scheduler/scheduler_config.json"}) {
    auto config = pipeline::read_json(folder / file);
    CHECK_MESSAGE(config["_ldm_version"] == version.string, file);
    // A checkpoint from another ldm version is the same model if its architecture matches.
    config["_ldm_version"] = "99.0.0";
    std::ofstream(folder / file) << config.dump();
  }
  const auto state = io::SafetensorsFile::open(folder / "training_state.safetensors");
  CHECK(state.metadata().at("ldm_version") == version.string);
  Model reloaded(6);
  CHECK_NOTHROW(reloaded.load(folder));
  std::filesystem::remove_all(folder);
}

TEST_CASE("a checkpoint for another configuration is refused, naming the field and both values") {
  const auto folder = fresh_folder("mismatch");
  Model model(4);
  model.save(folder);
  auto config = pipeline::read_json(folder / "unet/config.json");
  config["layers_per_block"] = 3;
  std::ofstream(folder / "unet/config.json") << config.dump();
  Model other(4);
  CHECK_THROWS_WITH_AS(
      other.load(folder),
      doctest::Contains("field 'layers_per_block': the compiled configuration has 1, "
                        "the file has 3"),
      Error);
  std::filesystem::remove_all(folder);
}

TEST_CASE("a folder written by diffusers loads and reproduces diffusers' outputs") {
  // tests/golden/diffusers_tiny was written by diffusers' save_pretrained (BF16 weights);
  // tiny_*.safetensors hold what diffusers computed from them (tools/golden/make_model_golden.py).
  using Tiny = LatentDiffusion<configs::Tiny>;
  auto model = std::make_unique<Tiny>(0);
  model->load(std::string(LDM_TEST_DATA_DIR) + "/golden/diffusers_tiny");

  auto ae_file = test::open_golden("tiny_autoencoder");
  Tensor<float, Tiny::latents<2>> z;
  Tensor<float, Tiny::images<2>> decoded;
  test::read_activation(ae_file, "decode.z", z.view());
  Tiny::AE::DecodeSaved<2> saved;
  model->autoencoder().decode(z, saved, decoded.view());
  const double decode_error = test::activation_error(ae_file, "decode.output", decoded.view());
  MESSAGE("decode: largest relative error " << decode_error);
  CHECK(decode_error <= 1e-4);

  auto unet_file = test::open_golden("tiny_unet");
  Tensor<float, Tiny::latents<2>> x, y;
  Tensor<float, Shape<2>> t;
  test::read_activation(unet_file, "forward.x", x.view());
  test::read_activation(unet_file, "forward.timesteps", t.view());
  Tiny::UNet::Saved<2> unet_saved;
  model->ema_unet().forward(x, t, unet_saved, y.view());
  const double unet_error = test::activation_error(unet_file, "forward.output", y.view());
  MESSAGE("unet: largest relative error " << unet_error);
  CHECK(unet_error <= 1e-4);
}
