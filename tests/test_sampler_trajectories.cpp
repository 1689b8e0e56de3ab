// Every sampler against diffusers' scheduler of the same name, on whole trajectories
// (tests/golden/samplers/<class>.safetensors, written by tools/golden/make_sampler_golden.py):
// the same model function (the shipped UNet, or a closed form), the same initial noise and the
// same per-step noise, so ldm's trajectory must follow diffusers' evaluation by evaluation.
// Each case's scheduler config is read by ldm's own scheduler_config parser and the sampler is
// built by pipeline::make_sampler(), as a model folder's would be.

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "ldm/io/json.hpp"
#include "ldm/io/safetensors.hpp"
#include "ldm/pipeline/configs.hpp"
#include "ldm/pipeline/latent_diffusion.hpp"
#include "ldm/pipeline/samplers.hpp"

namespace {

using namespace ldm;
using json = ldm::io::Json;
using Model = LatentDiffusion<configs::Tiny>;
using Latents = Model::latents<2>;
using LatentTensor = Tensor<float, Latents>;

// The largest |actual - expected| over the tensor, relative to the largest |expected| (at least 1).
double relative_error(const LatentTensor& actual, std::span<const float> expected) {
  double error = 0, scale = 1;
  for (index_t i = 0; i < Latents::size; ++i) {
    const double distance = std::abs(double(actual[i]) - double(expected[std::size_t(i)]));
    if (!(distance <= error)) error = distance;  // a NaN on either side stays, and fails
    scale = std::max(scale, std::abs(double(expected[std::size_t(i)])));
  }
  return error / scale;
}

class GoldenCase {
 public:
  GoldenCase(const io::SafetensorsFile& file, const json& entry)
      : file_(file), name_(entry.at("name").get<std::string>()) {}

  std::vector<double> doubles(const std::string& what) const {
    const auto& entry = file_.entry(name_ + "." + what);
    std::vector<double> v(std::size_t(entry.shape.at(0)));
    file_.read<double>(name_ + "." + what, std::span<double>(v), entry.shape);
    return v;
  }
  // Row `row` of a stacked [E + 1, latents] tensor.
  std::vector<float> row(const std::string& what, std::size_t row) const {
    const auto& entry = file_.entry(name_ + "." + what);
    std::vector<float> all(std::size_t(entry.shape.at(0)) * std::size_t(Latents::size));
    file_.read<float>(name_ + "." + what, std::span<float>(all), entry.shape);
    const auto first = all.begin() + std::ptrdiff_t(row * std::size_t(Latents::size));
    return {first, first + Latents::size};
  }

 private:
  const io::SafetensorsFile& file_;
  std::string name_;
};

LatentTensor tensor_of(const std::vector<float>& values) {
  LatentTensor t;
  std::copy(values.begin(), values.end(), t.data());
  return t;
}

// The model functions the golden file's cases name.
class ModelFunctions {
 public:
  void operator()(const std::string& which, const LatentTensor& x, double t, LatentTensor& out) {
    if (which == "closed_form") {
      out = x * float(0.3 + 0.6 * t / 1000);
      return;
    }
    REQUIRE(which == "unet");
    if (!shipped_) {
      shipped_ = std::make_unique<Model>(1);
      shipped_->load(std::filesystem::path(LDM_TEST_DATA_DIR) / ".." / "models" / "fashion-tiny");
    }
    timestep_ = float(t);
    shipped_->ema_unet().forward(x, timestep_, saved_, out.view());
  }

 private:
  std::unique_ptr<Model> shipped_;
  Model::UNet::Saved<2> saved_;
  Tensor<float, Shape<2>> timestep_;
};

// Runs one case with `sampler` and checks it evaluation by evaluation; returns a report line.
template <diffusion::Sampler S>
std::string check_trajectory(const S& sampler, const GoldenCase& golden, const std::string& model,
                             ModelFunctions& models) {
  std::ostringstream report;
  const auto timesteps = golden.doubles("timesteps");
  REQUIRE(sampler.timesteps().size() == timesteps.size());
  for (std::size_t i = 0; i < timesteps.size(); ++i)
    REQUIRE_MESSAGE(sampler.timesteps()[i] == doctest::Approx(timesteps[i]).epsilon(1e-5),
                    "timestep " << i);
  CHECK(sampler.init_noise_sigma() == doctest::Approx(golden.doubles("init_noise_sigma")[0]));
  const auto scales = golden.doubles("input_scales"), signal = golden.doubles("signal"),
             level = golden.doubles("noise_level");
  for (std::size_t i = 0; i < timesteps.size(); ++i) {
    INFO("evaluation " << i);
    CHECK(sampler.input_scale(i) == doctest::Approx(scales[i]).epsilon(1e-6));
    CHECK(sampler.noise_level(i).signal == doctest::Approx(signal[i]).epsilon(1e-6));
    CHECK(sampler.noise_level(i).noise == doctest::Approx(level[i]).epsilon(1e-6));
  }

  LatentTensor x = tensor_of(golden.row("noise", 0)), input, output;
  x = x * float(sampler.init_noise_sigma());
  typename S::template State<Latents, host> state{};
  double largest = relative_error(x, golden.row("samples", 0));
  for (std::size_t i = 0; i < timesteps.size(); ++i) {
    input = x * float(sampler.input_scale(i));
    models(model, input, sampler.timesteps()[i], output);
    sampler.step(i, state, View<const float, Latents>(output), View<const float, Latents>(x),
                 tensor_of(golden.row("noise", i + 1)), x.view());
    const double error = relative_error(x, golden.row("samples", i + 1));
    REQUIRE_MESSAGE(error <= 1e-4, "evaluation " << i << " of " << timesteps.size()
                                                 << ": relative error " << error);
    largest = std::max(largest, error);
  }
  report << timesteps.size() << " evaluations, largest relative error " << largest;
  return report.str();
}

TEST_CASE("every sampler follows diffusers' scheduler of the same name, evaluation by evaluation") {
  ModelFunctions models;
  for (std::string_view class_name : pipeline::kSchedulerClasses) {
    const auto path = std::filesystem::path(LDM_TEST_DATA_DIR) / "golden" / "samplers" /
                      (std::string(class_name) + ".safetensors");
    INFO(path.string());
    REQUIRE(std::filesystem::exists(path));
    const auto file = io::SafetensorsFile::open(path);
    REQUIRE(file.metadata().at("script") == "tools/golden/make_sampler_golden.py");
    const json cases = json::parse(file.metadata().at("cases"));
    REQUIRE(!cases.empty());
    for (const json& entry : cases) {
      const std::string name = entry.at("name").get<std::string>();
      INFO(class_name << " " << name);
      const pipeline::SchedulerSettings settings = pipeline::parse_scheduler_config(
          entry.at("config"), std::string(class_name) + " " + name);
      REQUIRE(settings.class_name == class_name);
      const pipeline::AnySampler sampler =
          pipeline::make_sampler(settings, entry.at("steps").get<int>());
      const GoldenCase golden(file, entry);
      const std::string report = std::visit(
          [&](const auto& s) {
            return check_trajectory(s, golden, entry.at("model").get<std::string>(), models);
          },
          sampler);
      MESSAGE(class_name << " " << name << ": " << report);
    }
  }
}

}  // namespace
