// The main job: latent diffusion on Fashion-MNIST (or a folder of the user's images) with the
// `tiny` configuration, on the CPU or (built with CUDA, --device cuda) on the GPU.
//
//   fashion train  [options]   the autoencoder, then the diffusion model, then a sample grid
//   fashion sample [options]   a sample grid from a trained model folder
//   fashion eval   [options]   reconstruction PSNR / SSIM and the Frechet distance of samples
//   fashion samplers [options] each sampler's Frechet distance and time against its steps
//   fashion plot   RUN         redraws RUN/loss.png from RUN/log.csv
//   fashion img2img / inpaint / interpolate [options]   edit images (fashion/editing.cpp)
//
// `fashion <command> --help` lists the options. A run's folder holds `checkpoint/` (a link to
// the newest of the numbered checkpoints beside it, each a diffusers folder plus the training
// state), `reconstructions.png`, `samples.png`, `log.csv` (one line per step) and `loss.png`
// (the losses of log.csv, drawn).

#include <omp.h>

#include <cstdio>
#include <ldm/ldm.hpp>
#include <string>
#include <string_view>

#include "fashion/common.hpp"
#include "fashion/editing.hpp"
#include "fashion/features.hpp"
#include "fashion/sampler_table.hpp"
#include "fashion/validate.hpp"

namespace {

using namespace fashion;

// Runs on_cuda() when --device cuda (checked by validate()) finds a GPU in a build with CUDA,
// on_host() otherwise, saying which and why.
template <class OnHost, class OnCuda>
int on_device(const std::string& device, const OnHost& on_host,
              [[maybe_unused]] const OnCuda& on_cuda) {
  if (device == "cuda") {
#if defined(LDM_FASHION_CUDA)
    const std::string gpu = cuda_device();
    if (!gpu.empty()) {
      std::printf("device: %s\n", gpu.c_str());
      return on_cuda();
    }
    std::printf("device: host (CPU), %d threads: --device cuda, but no CUDA device was found\n",
                omp_get_max_threads());
#else
    std::printf(
        "device: host (CPU), %d threads: --device cuda, but this program was built without CUDA "
        "(configure with the `cuda` preset on a machine with nvcc)\n",
        omp_get_max_threads());
#endif
    return on_host();
  }
  std::printf("device: host (CPU), %d threads\n", omp_get_max_threads());
  return on_host();
}

// ---------------------------------------------------------------------------------------- train

// --conditioning picks the compiled configuration (Config, ClassConfig or TokenConfig), so it is
// taken out of the arguments before the trainer reads the rest. Without it, Fashion-MNIST trains
// class-conditional and a folder of images (--data), which has no labels, unconditional.
int train_command(int argc, char** argv) {
  std::optional<std::string> conditioning;
  bool folder = false;
  std::vector<char*> rest(argv, argv + argc);
  for (auto it = rest.begin() + 2; it != rest.end();) {
    const std::string_view arg = *it;
    folder = folder || arg == "--data" || arg.starts_with("--data=");
    if (arg.starts_with("--conditioning=")) {
      conditioning = arg.substr(std::string_view("--conditioning=").size());
      it = rest.erase(it);
    } else if (arg == "--conditioning") {
      if (it + 1 == rest.end())
        ldm::fail_expected("--conditioning", "none, class or cross-attention", "nothing");
      conditioning = *(it + 1);
      it = rest.erase(it, it + 2);
    } else {
      ++it;
    }
  }
  if (!conditioning) {
    conditioning = folder ? "none" : "class";
    if (folder)
      std::printf(
          "conditioning: none (a folder of images has no class labels; "
          "--conditioning class needs Fashion-MNIST)\n");
  }
  if (*conditioning != "none" && *conditioning != "class" && *conditioning != "cross-attention")
    ldm::fail_expected("--conditioning", "none, class or cross-attention",
                       "'" + *conditioning + "'");
  const int count = int(rest.size());
  if (*conditioning == "class")
    return ldm::train::train_from_command_line<ClassConfig, micro_batch>(
        count, rest.data(), train_program<ClassConfig>(), 2);
  if (*conditioning == "cross-attention")
    return ldm::train::train_from_command_line<TokenConfig, micro_batch>(
        count, rest.data(), train_program<TokenConfig>(), 2);
  return ldm::train::train_from_command_line<Config, micro_batch>(count, rest.data(),
                                                                  train_program<Config>(), 2);
}

// --------------------------------------------------------------------------------------- sample

int sample_command(int argc, char** argv) {
  SampleRequest request{.model_folder = "models/fashion-tiny-classes", .out = "samples.png"};
  std::string device = "host";
  ldm::cli::Options options("fashion sample --model FOLDER [options]",
                            "Draws a grid of samples from a trained model folder (written by "
                            "`fashion train`, or a diffusers\nfolder of the same configuration).");
  options.add("model", &request.model_folder, "the model folder (vae/, unet/, scheduler/)");
  options.add("out", &request.out, "the PNG file to write");
  options.add("count", &request.count,
              "images to draw, rounded up to a multiple of 16 (at most " +
                  std::to_string(max_sample_count) +
                  "); 0: 64, or a row of 8 per class for a class-conditional model");
  options.add("seed", &request.seed, "seed of the initial noise");
  options.add("class", &request.class_label,
              "class-conditional models: draw every image of this class (0-9); default: a row "
              "of 8 per class");
  options.add("device", &device, "host, or cuda (a GPU, in a build with CUDA)");
  request.sampling.add_to(options);
  if (!options.parse(argc, argv, 2)) return 0;
  validate(request, device);
  return on_device(
      device,
      [&] {
        return with_folder_config(request.model_folder,
                                  [&]<class C>() { return sample<ldm::host, C>(request); });
      },
      [&] { return sample_on_cuda(request); });
}

// ----------------------------------------------------------------------------------------- eval

struct EvalRequest {
  std::string model_folder = "models/fashion-tiny-classes",
              classifier_path = "models/fashion_classifier.safetensors", json_path;
  std::int64_t seed = 0, samples = 5000;
  bool sweep = false;  // also the guidance sweep (class-conditional models)
  SamplingFlags sampling;
};

// The guidance scales of the sweep table.
constexpr double sweep_scales[] = {1, 2, 3, 5};

// What `fashion eval` measures of one set of samples.
struct SampleScores {
  double distance = 0;  // Frechet distance against the test set, all classes together
  // Class-conditional models: the share of samples the classifier assigns to the class asked
  // for, and the Frechet distance of each class's samples against that class's test images.
  double accuracy = 0;
  std::vector<double> class_distances;
};

// `count` samples (batch b with the noise of `fashion sample --seed` with seed + b), scored; a
// class-conditional model draws the classes in turn (sample i of class i % 10) with guidance w.
template <class Model>
SampleScores score_samples(Model& model, const SamplingFlags& sampling, std::uint64_t seed,
                           std::int64_t count, const Classifier& classifier,
                           const ldm::eval::FeatureStatistics& real,
                           const std::vector<ldm::eval::FeatureStatistics>& real_by_class,
                           const std::string& what) {
  const auto batches = ldm::index_t((count + preview_batch - 1) / preview_batch);
  const auto labels = ldm::train::labels_in_turn<Model>(batches * preview_batch, 1);
  ldm::eval::FeatureStatistics generated(Classifier::feature_dim);
  std::vector<ldm::eval::FeatureStatistics> by_class(
      real_by_class.size(), ldm::eval::FeatureStatistics(Classifier::feature_dim));
  std::size_t correct = 0;
  ldm::cli::Progress progress(what, 0, batches);
  for (ldm::index_t b = 0; b < batches; ++b) {
    const auto part = labels.empty() ? std::span<const std::int32_t>()
                                     : std::span(labels).subspan(std::size_t(b * preview_batch),
                                                                 std::size_t(preview_batch));
    const auto images = draw_samples(model, sampling, seed + std::uint64_t(b), preview_batch, part);
    add_features(classifier, images, generated);
    if (!part.empty()) {
      add_features_by_class(classifier, images, part, by_class);
      const auto predicted = predicted_classes(classifier, images);
      for (std::size_t n = 0; n < part.size(); ++n)
        correct += predicted[n] == part[n];
    }
    progress.update(b + 1);
  }
  progress.finish("done");
  SampleScores scores;
  scores.distance = ldm::eval::frechet_distance(real, generated);
  if (!labels.empty()) {
    scores.accuracy = double(correct) / double(generated.count());
    for (std::size_t k = 0; k < by_class.size(); ++k)
      scores.class_distances.push_back(ldm::eval::frechet_distance(real_by_class[k], by_class[k]));
  }
  return scores;
}

template <class C>
int evaluate(const EvalRequest& request) {
  using Model = ModelOn<ldm::host, C>;
  const auto start = Clock::now();
  Model model(0);
  model.load(request.model_folder);
  auto classifier = std::make_unique<Classifier>();
  classifier->load(request.classifier_path);
  const ImageSet test = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::test);
  const std::size_t count = test.size() / preview_batch * preview_batch;

  // Reconstructions: the posterior mean of each test image, decoded.
  double psnr_sum = 0, ssim_sum = 0;
  {
    ldm::Tensor<float, Images<preview_batch>> x, decoded;
    ldm::Tensor<float, typename Model::template latents<preview_batch>> z;
    ldm::cli::Progress progress("reconstructing", 0, std::int64_t(count / preview_batch));
    for (std::size_t first = 0; first < count; first += preview_batch) {
      std::copy_n(test.pixels.data() + first * std::size_t(Images<1>::size), x.size, x.data());
      model.template encode<preview_batch>(x, z.view());
      model.template decode<preview_batch>(z, decoded.view());
      psnr_sum += ldm::eval::psnr<float>(x, decoded) * preview_batch;
      ssim_sum += ldm::eval::ssim<float>(x, decoded) * preview_batch;
      progress.update(std::int64_t(first / preview_batch + 1));
    }
    progress.finish("done");
  }
  const double psnr = psnr_sum / double(count), ssim = ssim_sum / double(count);
  std::printf("reconstruction: PSNR %.2f dB, SSIM %.4f (mean over %zu test images)\n", psnr, ssim,
              count);

  const double accuracy = classifier_accuracy(*classifier, test);
  const ldm::eval::FeatureStatistics real = real_statistics(*classifier, test);
  std::vector<ldm::eval::FeatureStatistics> real_by_class;
  if constexpr (Model::class_conditional) {
    real_by_class.assign(std::size_t(Model::classes),
                         ldm::eval::FeatureStatistics(Classifier::feature_dim));
    add_features_by_class(*classifier, {test.pixels.data(), count * std::size_t(Images<1>::size)},
                          std::span(test.labels).first(count), real_by_class);
  }
  const std::uint64_t seed = std::uint64_t(request.seed);
  const SampleScores scores = score_samples(model, request.sampling, seed, request.samples,
                                            *classifier, real, real_by_class, "sampling");
  const std::size_t generated =
      std::size_t(request.samples + preview_batch - 1) / preview_batch * preview_batch;
  std::printf(
      "Frechet distance (classifier features of samples clamped to [-1, 1], %zu samples "
      "vs %zu test images): %.3f\n",
      generated, real.count(), scores.distance);
  ldm::pipeline::json results = {{"model", request.model_folder},
                                 {"psnr_db", psnr},
                                 {"ssim", ssim},
                                 {"reconstructed_images", count},
                                 {"frechet_distance", scores.distance},
                                 {"generated_images", generated},
                                 {"test_images", real.count()},
                                 {"classifier", request.classifier_path},
                                 {"classifier_test_accuracy", accuracy},
                                 {"sampler", request.sampling.name()},
                                 {"sample_steps", request.sampling.steps},
                                 {"eta", request.sampling.eta},
                                 {"seed", request.seed}};
  if constexpr (Model::class_conditional) {
    std::printf(
        "class-conditional, guidance %g: conditional accuracy %.2f%% (samples the "
        "classifier assigns to the class asked for)\n",
        request.sampling.guidance, 100 * scores.accuracy);
    results["guidance"] = request.sampling.guidance;
    results["conditional_accuracy"] = scores.accuracy;
    if (request.sampling.guidance == 0) {
      // Guidance 0 draws every image from the null class: its accuracy is the chance level, and
      // a class's distance would compare unconditional samples with that class alone.
      std::printf(
          "guidance 0 samples unconditionally (the null class): the accuracy above is chance "
          "level, and there are no per-class distances\n");
    } else {
      std::printf("Frechet distance per class:");
      for (std::size_t k = 0; k < scores.class_distances.size(); ++k)
        std::printf(" %zu: %.1f%s", k, scores.class_distances[k],
                    k + 1 < scores.class_distances.size() ? "," : "\n");
      results["frechet_distance_per_class"] = scores.class_distances;
    }
    if (request.sweep) {
      ldm::pipeline::json sweep = ldm::pipeline::json::array();
      std::printf("\n| guidance | Frechet distance | conditional accuracy |\n|---|---|---|\n");
      for (double w : sweep_scales) {
        SamplingFlags with_w = request.sampling;
        with_w.guidance = w;
        const SampleScores s =
            w == request.sampling.guidance
                ? scores
                : score_samples(model, with_w, seed, request.samples, *classifier, real,
                                real_by_class, "guidance " + ldm::cli::shown(w));
        std::printf("| %g | %.2f | %.2f%% |\n", w, s.distance, 100 * s.accuracy);
        sweep.push_back({{"guidance", w},
                         {"frechet_distance", s.distance},
                         {"conditional_accuracy", s.accuracy}});
      }
      results["guidance_sweep"] = sweep;
    }
  } else if (request.sweep) {
    std::printf("--sweep: %s is not class-conditional, so there is no guidance to sweep\n",
                request.model_folder.c_str());
  }
  std::printf("feature classifier: test accuracy %.2f%%\n", 100 * accuracy);
  std::printf(
      "sampler: %s, %d steps, eta %g; evaluation took %s\n", request.sampling.name().c_str(),
      request.sampling.steps, request.sampling.eta,
      ldm::cli::clock_text(std::chrono::duration<double>(Clock::now() - start).count()).c_str());
  if (!request.json_path.empty())
    ldm::pipeline::write_text_atomically(request.json_path, results.dump(2) + "\n");
  return 0;
}

int eval_command(int argc, char** argv) {
  EvalRequest request;
  ldm::cli::Options options(
      "fashion eval [options]",
      "Measures a trained model on Fashion-MNIST's 10,000 test images (docs/fashion.md says\n"
      "exactly how): the autoencoder's reconstruction PSNR and SSIM, and the Frechet distance\n"
      "between generated samples (clamped to [-1, 1], as their PNGs show them) and the test\n"
      "images in the feature space of the project's Fashion-MNIST classifier (its test accuracy\n"
      "is printed beside it). A class-conditional model draws the 10 classes in turn; its\n"
      "conditional accuracy and each class's Frechet distance are added.");
  options.add("model", &request.model_folder, "the model folder (vae/, unet/, scheduler/)");
  options.add("classifier", &request.classifier_path,
              "the feature network's weights (examples/train_classifier.cpp)");
  options.add("samples", &request.samples,
              "generated images for the Frechet distance (at most " +
                  std::to_string(max_eval_samples) + ")");
  options.add("seed", &request.seed, "seed of the samples' initial noise");
  options.add("json", &request.json_path, "also write the results to this JSON file");
  options.add_switch("sweep", &request.sweep,
                     "class-conditional models: also measure guidance 1, 2, 3 and 5 (a table)");
  request.sampling.add_to(options);
  if (!options.parse(argc, argv, 2)) return 0;
  validate(request.sampling);
  if (request.samples < 2 * preview_batch || request.samples > max_eval_samples)
    ldm::fail_expected("--samples",
                       "a number in [" + std::to_string(2 * preview_batch) + ", " +
                           std::to_string(max_eval_samples) + "]",
                       request.samples);
  ldm::cli::require_at_least("--seed", request.seed, 0);
  if (!request.json_path.empty())
    ldm::cli::require_writable_folder(std::filesystem::path(request.json_path).parent_path(),
                                      "--json");
  return with_folder_config(request.model_folder, [&]<class C>() { return evaluate<C>(request); });
}

// ----------------------------------------------------------------------------------------- plot

int plot_command(int argc, char** argv) {
  const bool has_run = argc > 2 && !std::string_view(argv[2]).starts_with("-");
  std::string out;
  ldm::cli::Options options(
      "fashion plot RUN [options]",
      "Draws the losses in RUN/log.csv (one panel per phase: every step faint, a moving average\n"
      "strong, log scale) into RUN/loss.png, as training does whenever it writes its images.");
  options.add("out", &out, "the PNG file to write instead of RUN/loss.png");
  if (!options.parse(argc, argv, has_run ? 3 : 2)) return 0;
  if (!has_run)
    ldm::fail_expected("fashion plot", "a run folder (fashion plot RUN; see --help)",
                       argc > 2 ? "'" + std::string(argv[2]) + "'" : std::string("nothing"));
  const fs::path run = argv[2];
  const fs::path png = out.empty() ? run / "loss.png" : fs::path(out);
  ldm::train::write_loss_plot(run / "log.csv", png);
  std::printf("wrote %s\n", png.c_str());
  return 0;
}

void print_usage() {
  std::printf(
      "usage: fashion <command> [options]\n\n"
      "commands:\n"
      "  train    train the tiny latent diffusion model (Fashion-MNIST or --data FOLDER)\n"
      "  sample   draw a sample grid from a trained model folder\n"
      "  eval     reconstruction PSNR/SSIM and the Frechet distance of samples\n"
      "  samplers each sampler's Frechet distance and time against its steps\n"
      "  plot     redraw a run's loss.png from its log.csv\n"
      "  img2img  image-to-image: inputs noised part of the way and denoised\n"
      "  inpaint  repaint the masked part of inputs\n"
      "  interpolate  frames between two seeds' samples or two images\n\n"
      "`fashion <command> --help` describes each command's options; `fashion --version` says\n"
      "which ldm it was built with.\n");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string command = argc > 1 ? argv[1] : "";
    if (command == "train") return train_command(argc, argv);
    if (command == "sample") return sample_command(argc, argv);
    if (command == "eval") return eval_command(argc, argv);
    if (command == "samplers") return samplers_command(argc, argv);
    if (command == "plot") return plot_command(argc, argv);
    if (command == "img2img") return img2img_command(argc, argv);
    if (command == "inpaint") return inpaint_command(argc, argv);
    if (command == "interpolate") return interpolate_command(argc, argv);
    if (command == "--version") {
      ldm::cli::print_version("fashion");
      return 0;
    }
    print_usage();
    return command == "--help" || command == "-h" ? 0 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fashion: %s\n", e.what());
    return 1;
  }
}
