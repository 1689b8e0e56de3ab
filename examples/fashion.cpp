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

int train_command(int argc, char** argv) {
  return ldm::train::train_from_command_line<Config, micro_batch>(argc, argv, train_program(), 2);
}

// --------------------------------------------------------------------------------------- sample

int sample_command(int argc, char** argv) {
  SampleRequest request{.model_folder = "models/fashion-tiny", .out = "samples.png"};
  std::string device = "host";
  ldm::cli::Options options("fashion sample --model FOLDER [options]",
                            "Draws a grid of samples from a trained model folder (written by "
                            "`fashion train`, or a diffusers\nfolder of the same configuration).");
  options.add("model", &request.model_folder, "the model folder (vae/, unet/, scheduler/)");
  options.add("out", &request.out, "the PNG file to write");
  options.add("count", &request.count,
              "images to draw, rounded up to a multiple of 16 (at most " +
                  std::to_string(max_sample_count) + ")");
  options.add("seed", &request.seed, "seed of the initial noise");
  options.add("device", &device, "host, or cuda (a GPU, in a build with CUDA)");
  request.sampling.add_to(options);
  if (!options.parse(argc, argv, 2)) return 0;
  validate(request, device);
  return on_device(
      device, [&] { return sample<ldm::host>(request); }, [&] { return sample_on_cuda(request); });
}

// ----------------------------------------------------------------------------------------- eval

int eval_command(int argc, char** argv) {
  std::string model_folder = "models/fashion-tiny",
              classifier_path = "models/fashion_classifier.safetensors", json_path;
  std::int64_t seed = 0, samples = 5000;
  SamplingFlags sampling;
  ldm::cli::Options options(
      "fashion eval [options]",
      "Measures a trained model on Fashion-MNIST's 10,000 test images (docs/fashion.md says\n"
      "exactly how): the autoencoder's reconstruction PSNR and SSIM, and the Frechet distance\n"
      "between generated samples and the test images in the feature space of the project's\n"
      "Fashion-MNIST classifier (its test accuracy is printed beside it).");
  options.add("model", &model_folder, "the model folder (vae/, unet/, scheduler/)");
  options.add("classifier", &classifier_path,
              "the feature network's weights (examples/train_classifier.cpp)");
  options.add("samples", &samples,
              "generated images for the Frechet distance (at most " +
                  std::to_string(max_eval_samples) + ")");
  options.add("seed", &seed, "seed of the samples' initial noise");
  options.add("json", &json_path, "also write the results to this JSON file");
  sampling.add_to(options);
  if (!options.parse(argc, argv, 2)) return 0;
  validate(sampling);
  if (samples < 2 * preview_batch || samples > max_eval_samples)
    ldm::fail_expected("--samples",
                       "a number in [" + std::to_string(2 * preview_batch) + ", " +
                           std::to_string(max_eval_samples) + "]",
                       samples);
  ldm::cli::require_at_least("--seed", seed, 0);
  if (!json_path.empty())
    ldm::cli::require_writable_folder(std::filesystem::path(json_path).parent_path(), "--json");

  const auto start = Clock::now();
  Model model(0);
  model.load(model_folder);
  auto classifier = std::make_unique<Classifier>();
  classifier->load(classifier_path);
  const ImageSet test = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::test);
  const std::size_t count = test.size() / preview_batch * preview_batch;

  // Reconstructions: the posterior mean of each test image, decoded.
  double psnr_sum = 0, ssim_sum = 0;
  {
    ldm::Tensor<float, Images<preview_batch>> x, decoded;
    ldm::Tensor<float, Model::latents<preview_batch>> z;
    ldm::cli::Progress progress("reconstructing", 0, std::int64_t(count / preview_batch));
    for (std::size_t first = 0; first < count; first += preview_batch) {
      std::copy_n(test.pixels.data() + first * std::size_t(Images<1>::size), x.size, x.data());
      model.encode<preview_batch>(x, z.view());
      model.decode<preview_batch>(z, decoded.view());
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
  ldm::eval::FeatureStatistics generated(Classifier::feature_dim);

  const auto batches = ldm::index_t((samples + preview_batch - 1) / preview_batch);
  ldm::cli::Progress progress("sampling", 0, batches);
  for (ldm::index_t b = 0; b < batches; ++b) {
    // Batch b has the noise of `fashion sample --seed` with the same seed's batch b.
    const auto images =
        draw_samples(model, sampling, std::uint64_t(seed) + std::uint64_t(b), preview_batch);
    add_features(*classifier, images, generated);
    progress.update(b + 1);
  }
  progress.finish("done");
  const double distance = ldm::eval::frechet_distance(real, generated);
  std::printf("Frechet distance (classifier features, %zu samples vs %zu test images): %.3f\n",
              generated.count(), real.count(), distance);
  std::printf("feature classifier: test accuracy %.2f%%\n", 100 * accuracy);
  std::printf(
      "sampler: %s, %d steps, eta %g; evaluation took %s\n", sampling.name().c_str(),
      sampling.steps, sampling.eta,
      ldm::cli::clock_text(std::chrono::duration<double>(Clock::now() - start).count()).c_str());
  if (!json_path.empty()) {
    const ldm::pipeline::json results = {{"model", model_folder},
                                         {"psnr_db", psnr},
                                         {"ssim", ssim},
                                         {"reconstructed_images", count},
                                         {"frechet_distance", distance},
                                         {"generated_images", generated.count()},
                                         {"test_images", real.count()},
                                         {"classifier", classifier_path},
                                         {"classifier_test_accuracy", accuracy},
                                         {"sampler", sampling.name()},
                                         {"sample_steps", sampling.steps},
                                         {"eta", sampling.eta},
                                         {"seed", seed}};
    ldm::pipeline::write_text_atomically(json_path, results.dump(2) + "\n");
  }
  return 0;
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
