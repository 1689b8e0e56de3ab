// The main job: latent diffusion on Fashion-MNIST (or a folder of the user's images) with the
// `tiny` configuration, on the CPU or (built with CUDA, --device cuda) on the GPU.
//
//   fashion train  [options]   the autoencoder, then the diffusion model, then a sample grid
//   fashion sample [options]   a sample grid from a trained model folder
//   fashion eval   [options]   reconstruction PSNR / SSIM and the Frechet distance of samples
//
// `fashion <command> --help` lists the options. A run's folder holds `checkpoint/` (a diffusers
// folder plus the training state; replaced atomically), `reconstructions.png`, `samples.png`
// and `log.csv` (one line per step).

#include <omp.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ldm/data/image_folder.hpp>
#include <ldm/io/image_grid.hpp>
#include <ldm/ldm.hpp>
#include <memory>
#include <string>
#include <vector>

#include "support/cli.hpp"
#include "support/progress.hpp"

namespace {

namespace fs = std::filesystem;
using Config = ldm::configs::Tiny;
template <class Space>
using ModelOn = ldm::LatentDiffusion<Config, Space>;
using Model = ModelOn<ldm::host>;
constexpr ldm::index_t resolution = Config::resolution, channels = Config::channels;
using ImageSet = ldm::data::ImageSet<resolution, channels>;
using Clock = std::chrono::steady_clock;
// Sampling and reconstruction previews run in batches of this many images.
constexpr ldm::index_t preview_batch = 16;
template <ldm::index_t N>
using Images = Model::images<N>;

volatile std::sig_atomic_t interrupted = 0;
extern "C" void on_interrupt(int) {
  interrupted = 1;
  std::signal(SIGINT,
              SIG_DFL);  // a second Ctrl-C ends the program at once (checkpoints stay whole)
}

// The flags shared by the commands that draw samples.
struct SamplingFlags {
  std::string sampler = "ddim";
  int steps = 50;
  double eta = 0;

  void add_to(examples::Options& options) {
    options.add("sampler", &sampler, "ddim or ddpm (ancestral)");
    options.add("sample-steps", &steps, "denoising steps (ddpm: up to 1000)");
    options.add("eta", &eta, "DDIM's eta: 0 is deterministic, 1 is DDPM-like noise");
  }
};

// Draws `count` images (rounded up to whole preview batches) from the EMA UNet.
template <class Space>
std::vector<float> draw_samples(ModelOn<Space>& model, const SamplingFlags& how, std::uint64_t seed,
                                ldm::index_t count) {
  ldm::Tensor<float, Images<preview_batch>, Space> batch;
  std::vector<float> all;
  for (ldm::index_t first = 0; first < count; first += preview_batch) {
    const std::uint64_t batch_seed = seed + std::uint64_t(first / preview_batch);
    if (how.sampler == "ddim")
      model.template sample<preview_batch>(ldm::DDIMSampling{.steps = how.steps, .eta = how.eta},
                                           batch_seed, batch.view());
    else if (how.sampler == "ddpm")
      model.template sample<preview_batch>(ldm::DDPMSampling{.steps = how.steps}, batch_seed,
                                           batch.view());
    else
      ldm::fail_expected("--sampler", "ddim or ddpm", how.sampler);
    const auto images = ldm::to_host(batch.view());
    all.insert(all.end(), images.data(), images.data() + images.size);
  }
  return all;
}

void write_grid(const fs::path& path, std::span<const float> images, ldm::index_t columns) {
  ldm::io::write_image_grid(
      path, images,
      {.height = resolution, .width = resolution, .channels = channels, .columns = columns});
}

// A batch of host images where the model works: the same tensor on the host, a copy on a GPU.
template <class Space, ldm::index_t N>
auto in_space(const ldm::Tensor<float, Images<N>>& x, ldm::Tensor<float, Images<N>, Space>& staging)
    -> ldm::View<const float, Images<N>, Space> {
  if constexpr (std::is_same_v<Space, ldm::host>) {
    return x.view();
  } else {
    ldm::copy(x.view(), staging.view());
    return staging.view();
  }
}

// Inputs in rows of 8 with their reconstructions (posterior means, decoded) below them.
template <class Space>
void write_reconstructions(ModelOn<Space>& model,
                           const ldm::Tensor<float, Images<preview_batch>>& inputs,
                           const fs::path& path) {
  ldm::Tensor<float, Images<preview_batch>, Space> staging;
  ldm::Tensor<float, typename ModelOn<Space>::template latents<preview_batch>, Space> z;
  ldm::Tensor<float, Images<preview_batch>, Space> decoded_here;
  model.template encode<preview_batch>(in_space<Space>(inputs, staging), z.view());
  model.template decode<preview_batch>(z, decoded_here.view());
  const auto decoded = ldm::to_host(decoded_here.view());
  constexpr std::size_t row = 8 * std::size_t(Images<1>::size);
  std::vector<float> grid;
  for (std::size_t first = 0; first < std::size_t(inputs.size); first += row) {
    grid.insert(grid.end(), inputs.data() + first, inputs.data() + first + row);
    grid.insert(grid.end(), decoded.data() + first, decoded.data() + first + row);
  }
  write_grid(path, grid, 8);
}

// Calls run(ldm::host{}) or run(ldm::cuda{}) as --device says. Asked for CUDA where there is no
// GPU, or in a build without CUDA, it says so and runs on the host.
template <class Run>
int on_device(const std::string& device, const Run& run) {
  if (device != "host" && device != "cuda") ldm::fail_expected("--device", "host or cuda", device);
  if (device == "cuda") {
#if defined(__CUDACC__)
    if (ldm::cuda_device::available()) {
      cudaDeviceProp properties{};
      int index = 0;
      LDM_CUDA_CHECK(cudaGetDevice(&index));
      LDM_CUDA_CHECK(cudaGetDeviceProperties(&properties, index));
      std::printf("device: cuda:%d, %s\n", index, properties.name);
      return run(ldm::cuda{});
    }
    std::printf("device: host (CPU), %d threads: --device cuda, but no CUDA device was found\n",
                omp_get_max_threads());
#else
    std::printf(
        "device: host (CPU), %d threads: --device cuda, but this program was built without CUDA "
        "(configure with the `cuda` preset on a machine with nvcc)\n",
        omp_get_max_threads());
#endif
    return run(ldm::host{});
  }
  std::printf("device: host (CPU), %d threads\n", omp_get_max_threads());
  return run(ldm::host{});
}

// ---------------------------------------------------------------------------------------- train

struct TrainFlags {
  std::string out = "runs/fashion", data, on_unreadable = "skip", lpips, device = "host";
  // The shipped model's settings (docs/fashion.md).
  std::int64_t seed = 1, autoencoder_steps = 2500, diffusion_steps = 12000;
  int batch = 32, checkpoint_every = 500, images_every = 500;
  double autoencoder_lr = 8e-4, unet_lr = 1e-3, time_budget = 0, autoencoder_share = 0.4;
  bool resume = false;
  SamplingFlags sampling;
};

// What a checkpoint records beyond the model: where the data stream is and how far training got.
struct RunState {
  std::string phase = "autoencoder";  // or "diffusion" once the autoencoder is frozen
  std::int64_t batch = 0, seed = 0;
  std::string data;
  std::uint64_t autoencoder_epoch = 0, autoencoder_position = 0;
  std::uint64_t diffusion_epoch = 0, diffusion_position = 0;
  double seconds = 0;

  ldm::RunInfo to_info() const {
    return {{"trainer.phase", phase},
            {"trainer.batch", std::to_string(batch)},
            {"trainer.seed", std::to_string(seed)},
            {"trainer.data", data},
            {"trainer.autoencoder_epoch", std::to_string(autoencoder_epoch)},
            {"trainer.autoencoder_position", std::to_string(autoencoder_position)},
            {"trainer.diffusion_epoch", std::to_string(diffusion_epoch)},
            {"trainer.diffusion_position", std::to_string(diffusion_position)},
            {"trainer.seconds", std::to_string(seconds)}};
  }
  static RunState from_info(const ldm::RunInfo& info, const fs::path& where) {
    auto get = [&](const std::string& key) {
      const auto it = info.find("trainer." + key);
      if (it == info.end())
        ldm::fail(where.string(), ": not a checkpoint of this trainer (no 'trainer.", key,
                  "' in its training state)");
      return it->second;
    };
    auto number = [&](const std::string& key) -> std::uint64_t {
      const std::string text = get(key);
      try {
        return std::stoull(text);
      } catch (const std::exception&) {
        ldm::fail_expected(where.string() + ": trainer." + key, "a whole number", text);
      }
    };
    RunState state;
    state.phase = get("phase");
    state.batch = std::int64_t(number("batch"));
    state.seed = std::int64_t(number("seed"));
    state.data = get("data");
    state.autoencoder_epoch = number("autoencoder_epoch");
    state.autoencoder_position = number("autoencoder_position");
    state.diffusion_epoch = number("diffusion_epoch");
    state.diffusion_position = number("diffusion_position");
    state.seconds = std::stod(get("seconds"));
    return state;
  }
};

// The training images and 16 held-out ones to show reconstructions of.
struct TrainingData {
  ImageSet train;
  ldm::Tensor<float, Images<preview_batch>> preview;
  std::string description;
};

TrainingData load_data(const TrainFlags& flags) {
  TrainingData data;
  if (flags.data.empty()) {
    data.train = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::train);
    const ImageSet test = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::test);
    std::copy_n(test.pixels.data(), data.preview.size, data.preview.data());
    data.description = "fashion-mnist";
    return data;
  }
  if (flags.on_unreadable != "skip" && flags.on_unreadable != "reject")
    ldm::fail_expected("--on-unreadable", "skip or reject", flags.on_unreadable);
  ldm::data::ImageFolderReport report;
  data.train = ldm::data::load_image_folder<resolution, channels>(
      flags.data,
      flags.on_unreadable == "skip" ? ldm::data::Unreadable::skip : ldm::data::Unreadable::reject,
      &report);
  for (const auto& [file, why] : report.skipped)
    std::printf("skipped %s: %s\n", file.string().c_str(), why.c_str());
  if (data.train.size() < std::size_t(preview_batch))
    ldm::fail_expected(flags.data + ": readable images",
                       "at least " + std::to_string(preview_batch), data.train.size());
  // The previews come from the training images themselves: a folder has no held-out split.
  std::copy_n(data.train.pixels.data(), data.preview.size, data.preview.data());
  data.description = "folder:" + fs::absolute(flags.data).lexically_normal().string();
  return data;
}

template <class Space>
class Trainer {
  using Model = ModelOn<Space>;

 public:
  explicit Trainer(const TrainFlags& flags)
      : flags_(flags), checkpoint_(fs::path(flags.out) / "checkpoint") {}

  template <ldm::index_t N>
  int run() {
    ldm::TrainingOptions options;
    options.autoencoder_optimizer.lr = flags_.autoencoder_lr;
    options.unet_optimizer.lr = flags_.unet_lr;
    model_ = std::make_unique<Model>(std::uint64_t(flags_.seed), options);
    if (!flags_.lpips.empty()) model_->load_lpips(flags_.lpips);
    state_.batch = N;
    state_.seed = flags_.seed;

    if (!flags_.resume &&
        (fs::exists(checkpoint_) || fs::exists(checkpoint_.string() + ".previous")))
      ldm::fail(checkpoint_.string(),
                ": a run is already there; continue it with --resume, or give another --out");
    const TrainingData data = load_data(flags_);
    state_.data = data.description;
    if (flags_.resume) resume<N>();
    std::printf("data: %s, %zu images of %lldx%lldx%lld\n", data.description.c_str(),
                data.train.size(), (long long)resolution, (long long)resolution,
                (long long)channels);
    std::printf("batch %lld; output in %s\n", (long long)N, flags_.out.c_str());
    fs::create_directories(flags_.out);
    log_.open(fs::path(flags_.out) / "log.csv", std::ios::app);
    if (log_.tellp() == 0) log_ << "phase,step,loss,grad_norm,seconds\n";

    const auto start = Clock::now();
    const bool budgeted = flags_.time_budget > 0;
    const auto deadline = budgeted ? start + std::chrono::duration_cast<Clock::duration>(
                                                 std::chrono::duration<double>(flags_.time_budget))
                                   : Clock::time_point::max();

    if (state_.phase == "autoencoder") {
      const auto share =
          budgeted
              ? start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                            flags_.time_budget * flags_.autoencoder_share))
              : deadline;
      train_autoencoder<N>(data, share);
      if (interrupted) return stop();
      state_.phase = "diffusion";
      save("the autoencoder is trained and frozen from here on");
    } else if (model_->autoencoder_steps() < std::uint64_t(flags_.autoencoder_steps)) {
      std::printf(
          "autoencoder: kept at step %llu (this run's diffusion phase has started, and "
          "the diffusion model is trained on its latents)\n",
          (unsigned long long)model_->autoencoder_steps());
    }
    train_diffusion<N>(data, deadline);
    if (interrupted) return stop();
    save("training finished");

    std::printf("sampling 64 images (%s, %d steps)...\n", flags_.sampling.sampler.c_str(),
                flags_.sampling.steps);
    write_grid(fs::path(flags_.out) / "samples.png",
               draw_samples(*model_, flags_.sampling, std::uint64_t(flags_.seed), 64), 8);
    std::printf("wrote %s/samples.png and %s/reconstructions.png; the model is in %s\n",
                flags_.out.c_str(), flags_.out.c_str(), checkpoint_.c_str());
    return 0;
  }

 private:
  template <ldm::index_t N>
  void resume() {
    if (!fs::exists(checkpoint_) && !fs::exists(checkpoint_.string() + ".previous"))
      ldm::fail(checkpoint_.string(), ": --resume given, but there is no checkpoint to resume");
    model_->load(checkpoint_);
    const RunState saved = RunState::from_info(model_->run_info(), checkpoint_);
    if (saved.batch != N)
      ldm::fail_expected("--batch", std::to_string(saved.batch) + " (the checkpoint's batch)", N);
    if (saved.data != state_.data)
      ldm::fail_expected("the training data", saved.data + " (the checkpoint's)", state_.data);
    state_ = saved;
    std::printf("resumed %s: %s phase, autoencoder step %llu, diffusion step %llu, %s trained\n",
                checkpoint_.c_str(), state_.phase.c_str(),
                (unsigned long long)model_->autoencoder_steps(),
                (unsigned long long)model_->diffusion_steps(),
                examples::clock_text(state_.seconds).c_str());
  }

  template <ldm::index_t N>
  void train_autoencoder(const TrainingData& data, Clock::time_point deadline) {
    if (std::int64_t(model_->autoencoder_steps()) >= flags_.autoencoder_steps) return;
    std::printf("autoencoder: %lld parameters, loss = L1 + %s + 1e-6 KL\n",
                (long long)Model::AE::parameter_count, model_->perceptual_term().c_str());
    const fs::path images = fs::path(flags_.out) / "reconstructions.png";
    run_phase<N>(
        "autoencoder", "--autoencoder-steps", std::int64_t(model_->autoencoder_steps()),
        flags_.autoencoder_steps, data.train, 1, state_.autoencoder_epoch,
        state_.autoencoder_position, deadline,
        [&](ldm::View<const float, Images<N>, Space> x) {
          const auto result = model_->template autoencoder_step<N>(x);
          log("autoencoder", model_->autoencoder_steps(), result.losses.total, result.grad_norm);
          return std::pair(std::int64_t(model_->autoencoder_steps()), result.losses.total);
        },
        [&] { write_reconstructions(*model_, data.preview, images); });
    write_reconstructions(*model_, data.preview, images);
  }

  template <ldm::index_t N>
  void train_diffusion(const TrainingData& data, Clock::time_point deadline) {
    if (std::int64_t(model_->diffusion_steps()) >= flags_.diffusion_steps) return;
    std::printf("diffusion: UNet of %lld parameters on %lldx%lldx%lld latents, epsilon MSE\n",
                (long long)Model::UNet::parameter_count, (long long)Model::latent_res,
                (long long)Model::latent_res, (long long)Config::latent_channels);
    run_phase<N>(
        "diffusion", "--diffusion-steps", std::int64_t(model_->diffusion_steps()),
        flags_.diffusion_steps, data.train, 2, state_.diffusion_epoch, state_.diffusion_position,
        deadline,
        [&](ldm::View<const float, Images<N>, Space> x) {
          const bool first_step = model_->diffusion_steps() == 0;
          const auto result = model_->template diffusion_step<N>(x);
          // Printed before the phase's first progress line, so it needs no clearing.
          if (first_step)
            std::printf("latent scaling factor %.4f (1 / std of the first batch's latents)\n",
                        model_->scaling_factor());
          log("diffusion", model_->diffusion_steps(), result.loss, result.grad_norm);
          return std::pair(std::int64_t(model_->diffusion_steps()), result.loss);
        },
        [&] {
          write_grid(fs::path(flags_.out) / "samples.png",
                     draw_samples(*model_, flags_.sampling, std::uint64_t(flags_.seed), 16), 8);
        });
  }

  // Steps from `done` until `target` (the option `target_flag`), the deadline or Ctrl-C, with
  // progress, periodic images and checkpoints. `step` takes a batch and returns (steps done,
  // loss); the data position is kept in `epoch` and `position` for the checkpoints.
  template <ldm::index_t N, class Step, class WriteImages>
  void run_phase(const char* name, const char* target_flag, std::int64_t done, std::int64_t target,
                 const ImageSet& set, std::uint64_t data_stream, std::uint64_t& epoch,
                 std::uint64_t& position, Clock::time_point deadline, const Step& step,
                 const WriteImages& write_images) {
    ldm::data::ShuffledBatches<resolution, channels> batches(set, stream(data_stream));
    batches.seek(epoch, position);
    ldm::Tensor<float, Images<N>> x;
    ldm::Tensor<float, Images<N>, Space> staging;
    examples::Progress progress(name, done, target, deadline);
    std::string why = std::string("reached ") + target_flag;
    while (done < target) {
      if (interrupted || Clock::now() >= deadline) {
        why = interrupted ? "interrupted" : "time budget reached";
        break;
      }
      batches.next<N>(x.view());
      epoch = batches.epoch(), position = batches.position();
      double loss;
      std::tie(done, loss) = step(in_space<Space>(x, staging));
      progress.update(done, loss);
      if (done % flags_.images_every == 0) write_images();
      if (done % flags_.checkpoint_every == 0) {
        progress.interrupt_line();
        save(nullptr);
      }
    }
    progress.finish(why.c_str());
  }

  // Shuffling streams of their own, so that the data order is the seed's whatever else happens.
  std::uint64_t stream(std::uint64_t phase) const { return std::uint64_t(state_.seed) * 4 + phase; }

  void log(const char* phase, std::int64_t step, double loss, double grad_norm) {
    log_ << phase << ',' << step << ',' << loss << ',' << grad_norm << ','
         << state_.seconds + seconds_since(run_start_) << std::endl;  // readable while running
  }

  double seconds_since(Clock::time_point t) const {
    return std::chrono::duration<double>(Clock::now() - t).count();
  }

  void save(const char* why) {
    RunState saving = state_;
    saving.seconds += seconds_since(run_start_);
    model_->save(checkpoint_, saving.to_info());
    log_.flush();
    std::printf("checkpoint: %s (autoencoder step %llu, diffusion step %llu)%s%s\n",
                checkpoint_.c_str(), (unsigned long long)model_->autoencoder_steps(),
                (unsigned long long)model_->diffusion_steps(), why ? ": " : "", why ? why : "");
    std::fflush(stdout);
  }

  int stop() {
    save("interrupted");
    std::printf("stopped by Ctrl-C; continue with the same command and --resume\n");
    return 130;
  }

  const TrainFlags& flags_;
  fs::path checkpoint_;
  std::unique_ptr<Model> model_;
  RunState state_;
  std::ofstream log_;
  Clock::time_point run_start_ = Clock::now();
};

int train_command(int argc, char** argv) {
  TrainFlags flags;
  examples::Options options(
      "fashion train [options]",
      "Trains the `tiny` latent diffusion model: the autoencoder first (L1 + structural term +\n"
      "KL), then the UNet on its frozen latents (epsilon prediction, EMA weights), then draws a\n"
      "sample grid. Without --data it trains on Fashion-MNIST (Debian: dataset-fashion-mnist).\n"
      "Each phase ends at its step count or its share of --time-budget, whichever comes first.\n"
      "Ctrl-C saves a checkpoint and stops; the same command with --resume continues exactly.");
  options.add("out", &flags.out, "folder for the checkpoint, images and log.csv");
  options.add("data", &flags.data,
              "a folder of PNG/JPEG/BMP/TGA/GIF images (centre-cropped, resized to 32x32 grey) "
              "instead of Fashion-MNIST");
  options.add("on-unreadable", &flags.on_unreadable,
              "with --data: skip (and list) or reject unreadable files");
  options.add("seed", &flags.seed, "seed of the weights, the data order and all noise");
  options.add("batch", &flags.batch, "images per step: 16, 32 or 64");
  options.add("autoencoder-steps", &flags.autoencoder_steps, "autoencoder steps in all");
  options.add("diffusion-steps", &flags.diffusion_steps, "diffusion (UNet) steps in all");
  options.add("autoencoder-lr", &flags.autoencoder_lr, "AdamW learning rate of the autoencoder");
  options.add("unet-lr", &flags.unet_lr, "AdamW learning rate of the UNet");
  options.add("time-budget", &flags.time_budget,
              "seconds of training for this run, 0 for no limit (then the step counts decide)");
  options.add("autoencoder-share", &flags.autoencoder_share,
              "the autoencoder's share of --time-budget; the diffusion phase gets the rest");
  options.add("checkpoint-every", &flags.checkpoint_every, "steps between checkpoints");
  options.add("images-every", &flags.images_every,
              "steps between reconstruction / sample grids written during training");
  options.add_switch("resume", &flags.resume,
                     "continue the run in --out from its checkpoint (same data and batch)");
  options.add("lpips", &flags.lpips,
              "LPIPS (VGG16) weights as safetensors (tools/convert_lpips_weights.py); without "
              "them the structural term is 1 - SSIM");
  options.add("device", &flags.device, "host, or cuda (a GPU, in a build with CUDA)");
  flags.sampling.add_to(options);
  if (!options.parse(argc, argv, 2)) return 0;
  if (flags.checkpoint_every <= 0 || flags.images_every <= 0)
    ldm::fail("--checkpoint-every and --images-every must be positive");

  // From here on Ctrl-C asks for a checkpoint and a clean stop.
  std::signal(SIGINT, on_interrupt);
  if (flags.batch != 16 && flags.batch != 32 && flags.batch != 64)
    ldm::fail_expected("--batch", "16, 32 or 64 (batch sizes are compiled in)", flags.batch);
  return on_device(flags.device, [&](auto space) {
    Trainer<decltype(space)> trainer(flags);
    switch (flags.batch) {
      case 16:
        return trainer.template run<16>();
      case 32:
        return trainer.template run<32>();
      default:
        return trainer.template run<64>();
    }
  });
}

// --------------------------------------------------------------------------------------- sample

int sample_command(int argc, char** argv) {
  std::string model_folder = "models/fashion-tiny", out = "samples.png", device = "host";
  std::int64_t seed = 0, count = 64;
  SamplingFlags sampling;
  examples::Options options("fashion sample --model FOLDER [options]",
                            "Draws a grid of samples from a trained model folder (written by "
                            "`fashion train`, or a diffusers\nfolder of the same configuration).");
  options.add("model", &model_folder, "the model folder (vae/, unet/, scheduler/)");
  options.add("out", &out, "the PNG file to write");
  options.add("count", &count, "images to draw, rounded up to a multiple of 16");
  options.add("seed", &seed, "seed of the initial noise");
  options.add("device", &device, "host, or cuda (a GPU, in a build with CUDA)");
  sampling.add_to(options);
  if (!options.parse(argc, argv, 2)) return 0;
  if (count <= 0) ldm::fail_expected("--count", "a positive number", count);

  const auto start = Clock::now();
  return on_device(device, [&](auto space) {
    ModelOn<decltype(space)> model(0);
    model.load(model_folder);
    std::printf("sampling %lld images from %s (%s, %d steps)...\n", (long long)count,
                model_folder.c_str(), sampling.sampler.c_str(), sampling.steps);
    const auto images = draw_samples(model, sampling, std::uint64_t(seed), ldm::index_t(count));
    if (fs::path(out).has_parent_path()) fs::create_directories(fs::path(out).parent_path());
    write_grid(out, images, 8);
    std::printf("wrote %s in %.1f s\n", out.c_str(),
                std::chrono::duration<double>(Clock::now() - start).count());
    return 0;
  });
}

// ----------------------------------------------------------------------------------------- eval

using Classifier = ldm::eval::FashionClassifier<resolution>;

// The classifier's features of images (a multiple of preview_batch of them) into `statistics`.
void add_features(const Classifier& classifier, std::span<const float> images,
                  ldm::eval::FeatureStatistics& statistics) {
  ldm::Tensor<float, Images<preview_batch>> batch;
  ldm::Tensor<float, Classifier::features_shape<preview_batch>> features;
  for (std::size_t first = 0; first + std::size_t(batch.size) <= images.size();
       first += std::size_t(batch.size)) {
    std::copy_n(images.data() + first, batch.size, batch.data());
    classifier.features<preview_batch>(batch, features.view());
    statistics.add<float>(features);
  }
}

double classifier_accuracy(const Classifier& classifier, const ImageSet& set) {
  ldm::Tensor<float, Images<preview_batch>> batch;
  ldm::Tensor<float, Classifier::logits<preview_batch>> logits;
  Classifier::Saved<preview_batch> saved;
  std::size_t correct = 0, seen = 0;
  for (std::size_t first = 0; first + preview_batch <= set.size(); first += preview_batch) {
    std::copy_n(set.pixels.data() + first * std::size_t(Images<1>::size), batch.size, batch.data());
    classifier.forward<preview_batch>(batch, saved, logits.view());
    for (ldm::index_t n = 0; n < preview_batch; ++n) {
      ldm::index_t best = 0;
      for (ldm::index_t k = 1; k < Classifier::classes; ++k)
        if (logits(n, k) > logits(n, best)) best = k;
      correct += best == set.labels[first + std::size_t(n)];
    }
    seen += preview_batch;
  }
  return double(correct) / double(seen);
}

int eval_command(int argc, char** argv) {
  std::string model_folder = "models/fashion-tiny",
              classifier_path = "models/fashion_classifier.safetensors", json_path;
  std::int64_t seed = 0, samples = 5000;
  SamplingFlags sampling;
  examples::Options options(
      "fashion eval [options]",
      "Measures a trained model on Fashion-MNIST's 10,000 test images (docs/fashion.md says\n"
      "exactly how): the autoencoder's reconstruction PSNR and SSIM, and the Frechet distance\n"
      "between generated samples and the test images in the feature space of the project's\n"
      "Fashion-MNIST classifier (its test accuracy is printed beside it).");
  options.add("model", &model_folder, "the model folder (vae/, unet/, scheduler/)");
  options.add("classifier", &classifier_path,
              "the feature network's weights (examples/train_classifier.cpp)");
  options.add("samples", &samples, "generated images for the Frechet distance");
  options.add("seed", &seed, "seed of the samples' initial noise");
  options.add("json", &json_path, "also write the results to this JSON file");
  sampling.add_to(options);
  if (!options.parse(argc, argv, 2)) return 0;
  if (samples < 2 * preview_batch)
    ldm::fail_expected("--samples", "at least " + std::to_string(2 * preview_batch), samples);

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
    examples::Progress progress("reconstructing", 0, std::int64_t(count / preview_batch));
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
  ldm::eval::FeatureStatistics real(Classifier::feature_dim), generated(Classifier::feature_dim);
  add_features(*classifier, {test.pixels.data(), count * std::size_t(Images<1>::size)}, real);

  const auto batches = ldm::index_t((samples + preview_batch - 1) / preview_batch);
  examples::Progress progress("sampling", 0, batches);
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
      "sampler: %s, %d steps, eta %g; evaluation took %s\n", sampling.sampler.c_str(),
      sampling.steps, sampling.eta,
      examples::clock_text(std::chrono::duration<double>(Clock::now() - start).count()).c_str());
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
                                         {"sampler", sampling.sampler},
                                         {"sample_steps", sampling.steps},
                                         {"eta", sampling.eta},
                                         {"seed", seed}};
    ldm::pipeline::write_text_atomically(json_path, results.dump(2) + "\n");
  }
  return 0;
}

void print_usage() {
  std::printf(
      "usage: fashion <command> [options]\n\n"
      "commands:\n"
      "  train    train the tiny latent diffusion model (Fashion-MNIST or --data FOLDER)\n"
      "  sample   draw a sample grid from a trained model folder\n"
      "  eval     reconstruction PSNR/SSIM and the Frechet distance of samples\n\n"
      "`fashion <command> --help` describes each command's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string command = argc > 1 ? argv[1] : "";
    if (command == "train") return train_command(argc, argv);
    if (command == "sample") return sample_command(argc, argv);
    if (command == "eval") return eval_command(argc, argv);
    print_usage();
    return command == "--help" || command == "-h" ? 0 : 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fashion: %s\n", e.what());
    return 1;
  }
}
