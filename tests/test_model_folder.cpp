// LatentDiffusion::load honours the whole model folder as diffusers' pipelines read it: the
// scheduler's configuration, the latent scaling (scaling_factor, shift_factor), diffusers'
// defaults for fields left out, and no refusal for fields that change no layer (issue 13, rows 7
// to 10).
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <ldm/ldm.hpp>
#include <string>

#include "support/errors.hpp"
#include "support/small_pipeline.hpp"
#include "support/temp_folder.hpp"

using namespace ldm;
using test::check_message;
using test::error_of;
namespace fs = std::filesystem;

namespace {
using test::Small;
using Model = LatentDiffusion<Small>;
constexpr index_t N = 4;

// A saved model with trained weights and a measured scaling factor, shared by the cases below.
struct SavedModel {
  test::TempFolder root{"ldm_model_folder"};
  fs::path folder = root / "model";
  SavedModel() {
    Model model(3);
    for (int i = 0; i < 2; ++i)
      model.autoencoder_step<N>(test::small_batch<N>(i));
    model.diffusion_step<N>(test::small_batch<N>(7));
    model.save(folder);
    // A folder diffusers wrote has no training state; the model then comes from unet/ and vae/.
    fs::remove(folder / "training_state.safetensors");
  }
  void edit(const std::string& file, const std::function<void(pipeline::json&)>& change) const {
    auto config = pipeline::read_json(folder / file);
    change(config);
    std::ofstream(folder / file) << config.dump(2);
  }
};

std::vector<float> samples(Model& model) {
  Tensor<float, Model::images<N>> images;
  model.sample<N>(model.sampler(4), 11, images.view());
  return std::vector<float>(images.data(), images.data() + images.size);
}

std::vector<float> encoded(Model& model) {
  Tensor<float, Model::latents<N>> z;
  model.encode<N>(test::small_batch<N>(20), z.view());
  return std::vector<float>(z.data(), z.data() + z.size);
}
}  // namespace

TEST_CASE("the folder's scheduler config decides the schedule, the prediction type and sampling") {
  const SavedModel saved;
  Model plain(0);
  plain.load(saved.folder);
  const auto plain_samples = samples(plain);
  CHECK(plain.scheduler().prediction_type == diffusion::PredictionType::epsilon);

  SUBCASE("v_prediction is sampled and trained as v_prediction") {
    saved.edit("scheduler/scheduler_config.json",
               [](pipeline::json& c) { c["prediction_type"] = "v_prediction"; });
    Model v(0);
    v.load(saved.folder);
    CHECK(v.scheduler().prediction_type == diffusion::PredictionType::v_prediction);
    CHECK(samples(v) != plain_samples);
    // The training objective follows it too: the same step on the same weights differs.
    const double plain_loss = plain.diffusion_step<N>(test::small_batch<N>(30)).loss;
    const double v_loss = v.diffusion_step<N>(test::small_batch<N>(30)).loss;
    CHECK(plain_loss != v_loss);
  }
  SUBCASE("another beta_end, spacing and offset") {
    saved.edit("scheduler/scheduler_config.json", [](pipeline::json& c) {
      c["beta_end"] = 0.03;
      c["timestep_spacing"] = "trailing";
      c["steps_offset"] = 1;
    });
    Model other(0);
    other.load(saved.folder);
    CHECK(other.schedule().betas().back() == 0.03);
    CHECK(other.scheduler().timestep_spacing == diffusion::TimestepSpacing::trailing);
    CHECK(samples(other) != plain_samples);
    // And save() writes what was loaded.
    other.save(saved.root / "again");
    const auto written = pipeline::read_json(saved.root / "again/scheduler/scheduler_config.json");
    CHECK(written["beta_end"] == 0.03);
    CHECK(written["timestep_spacing"] == "trailing");
    CHECK(written["steps_offset"] == 1);
  }
  SUBCASE("a field ldm cannot honour is refused, naming it") {
    saved.edit("scheduler/scheduler_config.json",
               [](pipeline::json& c) { c["thresholding"] = true; });
    Model other(0);
    check_message(error_of([&] { other.load(saved.folder); }),
                  {"scheduler_config.json", "field 'thresholding'", "true"});
  }
  SUBCASE("a deleted scheduler/ is an error, as diffusers cannot load such a pipeline either") {
    fs::remove_all(saved.folder / "scheduler");
    Model other(0);
    check_message(error_of([&] { other.load(saved.folder); }),
                  {"scheduler/scheduler_config.json", "cannot open"});
  }
  SUBCASE("a garbage scheduler config is an error naming the file") {
    std::ofstream(saved.folder / "scheduler/scheduler_config.json") << "\x01garbage{";
    Model other(0);
    check_message(error_of([&] { other.load(saved.folder); }),
                  {"scheduler_config.json", "not valid JSON"});
  }
}

TEST_CASE("scaling_factor: diffusers' default when missing, refused when not a positive number") {
  const SavedModel saved;
  SUBCASE("missing: AutoencoderKL's default 0.18215 (and a note on stderr)") {
    saved.edit("vae/config.json", [](pipeline::json& c) { c.items().erase("scaling_factor"); });
    Model model(0);
    model.load(saved.folder);
    CHECK(model.scaling_factor() == 0.18215);
  }
  for (const char* bad : {R"("0.3")", "0", "-1", "null", "[1]"}) {
    CAPTURE(bad);
    saved.edit("vae/config.json",
               [&](pipeline::json& c) { c["scaling_factor"] = pipeline::json::parse(bad); });
    Model model(0);
    check_message(error_of([&] { model.load(saved.folder); }),
                  {"vae/config.json", "field 'scaling_factor'", "a positive finite number", bad});
  }
  SUBCASE("an empty config: the first field whose diffusers default differs is named") {
    std::ofstream(saved.folder / "vae/config.json") << "{}";
    Model model(0);
    check_message(
        error_of([&] { model.load(saved.folder); }),
        {"vae/config.json", "is missing, so diffusers' default", "compiled configuration"});
  }
}

TEST_CASE("fields that change no layer are not compared; shift_factor is applied") {
  const SavedModel saved;
  Model plain(0);
  plain.load(saved.folder);
  SUBCASE("force_upcast: false loads") {
    saved.edit("vae/config.json", [](pipeline::json& c) {
      c["force_upcast"] = false;
      c["_name_or_path"] = "somewhere";
    });
    Model model(0);
    model.load(saved.folder);
    CHECK(model.autoencoder_values_host() == plain.autoencoder_values_host());
  }
  SUBCASE("shift_factor: latents = (z - shift) * scale, and back") {
    saved.edit("vae/config.json", [](pipeline::json& c) { c["shift_factor"] = 0.5; });
    Model shifted(0);
    shifted.load(saved.folder);
    CHECK(shifted.shift_factor() == 0.5);
    const double scale = shifted.scaling_factor();
    const auto z = encoded(plain), z_shifted = encoded(shifted);
    for (std::size_t i = 0; i < z.size(); ++i)
      REQUIRE(z_shifted[i] == doctest::Approx(z[i] - 0.5 * scale).epsilon(1e-5));
    // Decoding a latent: the shift comes back, so z_shifted decodes as z does.
    Tensor<float, Model::latents<N>> a, b;
    std::copy(z.begin(), z.end(), a.data());
    std::copy(z_shifted.begin(), z_shifted.end(), b.data());
    Tensor<float, Model::images<N>> x_plain, x_shifted;
    plain.decode<N>(a, x_plain.view());
    shifted.decode<N>(b, x_shifted.view());
    for (index_t i = 0; i < x_plain.size; ++i)
      REQUIRE(x_shifted.data()[i] == doctest::Approx(x_plain.data()[i]).epsilon(1e-4));
    shifted.save(saved.root / "again");
    CHECK(pipeline::read_json(saved.root / "again/vae/config.json")["shift_factor"] == 0.5);
  }
  SUBCASE("shift_factor that is not a number, and latents_mean, are refused") {
    saved.edit("vae/config.json", [](pipeline::json& c) { c["shift_factor"] = "0.5"; });
    Model model(0);
    check_message(error_of([&] { model.load(saved.folder); }),
                  {"vae/config.json", "field 'shift_factor'", "\"0.5\""});
    saved.edit("vae/config.json", [](pipeline::json& c) {
      c["shift_factor"] = nullptr;
      c["latents_mean"] = {0.1, 0.2};
    });
    check_message(error_of([&] { model.load(saved.folder); }),
                  {"vae/config.json", "field 'latents_mean'", "null"});
  }
  SUBCASE("a field ldm does not know is refused, not ignored") {
    saved.edit("unet/config.json", [](pipeline::json& c) { c["encoder_hid_dim"] = 64; });
    Model model(0);
    check_message(error_of([&] { model.load(saved.folder); }),
                  {"unet/config.json", "field 'encoder_hid_dim' (64)", "UNet2DModel"});
  }
  SUBCASE("a field that changes layers is still compared") {
    saved.edit("vae/config.json", [](pipeline::json& c) { c["use_quant_conv"] = false; });
    Model model(0);
    check_message(error_of([&] { model.load(saved.folder); }),
                  {"vae/config.json", "field 'use_quant_conv'", "true", "false"});
  }
}
