#pragma once
// `fashion samplers`: each sampler's Frechet distance and sampling time against its number of
// steps, on one model, as a Markdown table (docs/samplers.md holds the shipped model's). Every
// cell samples the same initial noise (batch b: seed + b, as `fashion eval`), so the cells differ
// by the sampler and its steps only.

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fashion/common.hpp"
#include "fashion/features.hpp"
#include "fashion/validate.hpp"
#include "ldm/cli/options.hpp"
#include "ldm/cli/writable.hpp"

namespace fashion {

// A comma-separated list, each item checked by `parse`.
template <class Parse>
auto comma_list(const std::string& flag, const std::string& text, const Parse& parse) {
  std::vector<decltype(parse(std::string()))> items;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');)
    items.push_back(parse(item));
  if (items.empty()) ldm::fail_expected(flag, "a comma-separated list", "'" + text + "'");
  return items;
}

struct SamplerTableFlags {
  std::string model = "models/fashion-tiny", classifier = "models/fashion_classifier.safetensors";
  std::string samplers = "all", steps = "10,15,20,25,50", out;
  std::int64_t samples = 1000, seed = 0;
};

struct SamplerTablePlan {
  std::vector<std::string> samplers;
  std::vector<int> steps;
};

// Every flag, checked before any work.
inline SamplerTablePlan validate(const SamplerTableFlags& flags) {
  SamplerTablePlan plan;
  if (flags.samplers == "all") {
    for (const ldm::pipeline::SamplerName& s : ldm::pipeline::kSamplerNames)
      plan.samplers.emplace_back(s.name);
  } else {
    plan.samplers = comma_list("--samplers", flags.samplers, [](const std::string& name) {
      ldm::pipeline::sampler_class(name, "--samplers");
      return name;
    });
  }
  constexpr int T = Config::schedule::config.num_train_timesteps;
  for (std::int64_t steps : ldm::cli::whole_numbers("--steps", flags.steps)) {
    if (steps < 1 || steps > T)
      ldm::fail_expected("--steps", "step counts in [1, " + std::to_string(T) + "]", steps);
    plan.steps.push_back(int(steps));
  }
  if (flags.samples < 2 * preview_batch || flags.samples > max_eval_samples)
    ldm::fail_expected("--samples",
                       "a number in [" + std::to_string(2 * preview_batch) + ", " +
                           std::to_string(max_eval_samples) + "]",
                       flags.samples);
  ldm::cli::require_at_least("--seed", flags.seed, 0);
  if (!flags.out.empty())
    ldm::cli::require_writable_folder(std::filesystem::path(flags.out).parent_path(), "--out");
  return plan;
}

// One cell: the Frechet distance of `samples` images and the seconds their sampling took.
struct Cell {
  double distance = 0, seconds = 0;
};

// Measures cells one after another; its progress counts the batches of the whole table. A
// class-conditional model draws the classes in turn, guided as SamplingFlags says.
template <class Model>
class CellMeasure {
 public:
  CellMeasure(Model& model, const Classifier& classifier, const ldm::eval::FeatureStatistics& real,
              std::int64_t samples, std::int64_t cells)
      : model_(model),
        classifier_(classifier),
        real_(real),
        batches_((samples + preview_batch - 1) / preview_batch),
        progress_("measuring (batches of 16 samples)", 0, batches_ * cells) {}

  Cell operator()(const SamplingFlags& sampling, std::uint64_t seed) {
    ldm::eval::FeatureStatistics generated(Classifier::feature_dim);
    double seconds = 0;
    for (std::int64_t b = 0; b < batches_; ++b) {
      const auto start = Clock::now();
      const auto images = draw_samples(model_, sampling, seed + std::uint64_t(b), preview_batch,
                                       ldm::train::labels_in_turn<Model>(preview_batch, 1));
      seconds += std::chrono::duration<double>(Clock::now() - start).count();
      add_features(classifier_, images, generated);
      progress_.update(++done_);
    }
    progress_.interrupt_line();
    return {ldm::eval::frechet_distance(real_, generated), seconds};
  }
  void finish() { progress_.finish("done"); }

 private:
  Model& model_;
  const Classifier& classifier_;
  const ldm::eval::FeatureStatistics& real_;
  std::int64_t batches_, done_ = 0;
  ldm::cli::Progress progress_;
};

inline std::string fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

// The table for a model of configuration C (fashion::Config or ClassConfig).
template <class C>
int sampler_table(const SamplerTableFlags& flags, const SamplerTablePlan& plan) {
  using Model = ModelOn<ldm::host, C>;
  Model model(0);
  model.load(flags.model);
  auto classifier = std::make_unique<Classifier>();
  classifier->load(flags.classifier);
  const ImageSet test = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::test);
  const ldm::eval::FeatureStatistics real = real_statistics(*classifier, test);
  const auto seed = std::uint64_t(flags.seed);

  // The reference, twice with disjoint noise: how far apart two runs of the same sampler land
  // is the measure's own noise, the margin within which another sampler "matches" it.
  const auto cells_to_measure =
      std::int64_t(plan.samplers.size() * plan.steps.size()) + 2 -
      std::int64_t(std::ranges::count(plan.samplers, "ddim") * std::ranges::count(plan.steps, 50));
  CellMeasure<Model> measure(model, *classifier, real, flags.samples, cells_to_measure);
  const SamplingFlags reference{.sampler = "ddim", .steps = 50};
  const Cell ddim50 = measure(reference, seed);
  const Cell again = measure(reference, seed + std::uint64_t(max_eval_samples));
  const double margin = std::abs(again.distance - ddim50.distance);
  std::printf("DDIM 50 steps: FD %.2f, with other noise %.2f (margin %.2f)\n", ddim50.distance,
              again.distance, margin);

  std::map<std::pair<std::string, int>, Cell> cells;
  for (const std::string& name : plan.samplers)
    for (int steps : plan.steps) {
      const SamplingFlags sampling{.sampler = name, .steps = steps};
      const Cell cell = name == "ddim" && steps == 50 ? ddim50 : measure(sampling, seed);
      cells[{name, steps}] = cell;
      std::printf("%s, %d steps: FD %.2f in %.1f s\n", name.c_str(), steps, cell.distance,
                  cell.seconds);
    }

  measure.finish();
  std::ostringstream table;
  table << "| sampler |";
  for (int steps : plan.steps)
    table << " " << steps << " steps |";
  table << " fewest steps matching DDIM-50 |\n|---|";
  for (std::size_t i = 0; i <= plan.steps.size(); ++i)
    table << "---|";
  table << "\n";
  for (const std::string& name : plan.samplers) {
    table << "| " << name << " |";
    int fewest = std::numeric_limits<int>::max();
    for (int steps : plan.steps) {
      const Cell& cell = cells.at({name, steps});
      table << " " << fixed(cell.distance, 1) << " (" << fixed(cell.seconds, 1) << " s) |";
      if (cell.distance <= ddim50.distance + margin) fewest = std::min(fewest, steps);
    }
    table << " "
          << (fewest == std::numeric_limits<int>::max() ? "none measured" : std::to_string(fewest))
          << " |\n";
  }
  table << "\nFréchet distance (classifier features) of " << flags.samples
        << " samples per cell against the 10,000 test images, and the wall time of their "
           "sampling. DDIM-50: "
        << fixed(ddim50.distance, 2) << "; with other noise " << fixed(again.distance, 2)
        << ", so a sampler matches it at FD <= " << fixed(ddim50.distance + margin, 2) << ".\n";
  std::printf("\n%s", table.str().c_str());
  if (!flags.out.empty()) {
    ldm::pipeline::write_text_atomically(flags.out, table.str());
    std::printf("wrote %s\n", flags.out.c_str());
  }
  return 0;
}

inline int samplers_command(int argc, char** argv) {
  SamplerTableFlags flags;
  ldm::cli::Options options(
      "fashion samplers [options]",
      "Measures each sampler on one model: the Frechet distance of --samples images (as `fashion\n"
      "eval` computes it) and the wall time of their sampling, for each number of --steps, plus\n"
      "the fewest steps at which each sampler matches DDIM with 50 steps. Prints a Markdown\n"
      "table (and writes it to --out). A class-conditional model draws the 10 classes in turn,\n"
      "with guidance 3.");
  options.add("model", &flags.model, "the model folder (vae/, unet/, scheduler/)");
  options.add("classifier", &flags.classifier,
              "the feature network's weights (examples/train_classifier.cpp)");
  options.add("samplers", &flags.samplers, "comma-separated sampler names, or all");
  options.add("steps", &flags.steps, "comma-separated step counts");
  options.add("samples", &flags.samples, "generated images per cell (whole batches of 16)");
  options.add("seed", &flags.seed, "seed of the initial noise (batch b: seed + b)");
  options.add("out", &flags.out, "also write the table to this Markdown file");
  if (!options.parse(argc, argv, 2)) return 0;
  const SamplerTablePlan plan = validate(flags);
  return with_folder_config(flags.model, [&]<class C>() { return sampler_table<C>(flags, plan); });
}

}  // namespace fashion
