#pragma once
// The `fashion` program's training and sampling, as templates over the memory space. fashion.cpp
// (the command line, evaluation) instantiates them for the host; fashion/cuda.cu, built when CUDA
// is enabled, for ldm::cuda. So the host program compiles with the C++ compiler and only the GPU
// instantiations go through nvcc.

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <ldm/data/image_folder.hpp>
#include <ldm/io/image_grid.hpp>
#include <ldm/ldm.hpp>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "fashion/loss_plot.hpp"
#include "support/cli.hpp"
#include "support/progress.hpp"

namespace fashion {

namespace fs = std::filesystem;
using Config = ldm::configs::Tiny;
template <class Space>
using ModelOn = ldm::LatentDiffusion<Config, Space>;
using Model = ModelOn<ldm::host>;
constexpr ldm::index_t resolution = Config::resolution, image_channels = Config::image_channels;
using ImageSet = ldm::data::ImageSet<resolution, image_channels>;
using Clock = std::chrono::steady_clock;
// Sampling and reconstruction previews run in batches of this many images.
constexpr ldm::index_t preview_batch = 16;
template <ldm::index_t N>
using Images = Model::images<N>;

// The signal (SIGINT, SIGTERM or SIGHUP) fashion.cpp's handler caught, 0 before one comes;
// training checks it between steps.
inline volatile std::sig_atomic_t interrupted = 0;

inline const char* signal_name(int signal) {
  switch (signal) {
    case SIGINT:
      return "SIGINT (Ctrl-C)";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "a signal";
  }
}

// The flags shared by the commands that draw samples.
struct SamplingFlags {
  std::string sampler;  // empty: the model's own (its scheduler_config.json's class)
  int steps = 50;
  double eta = 0;
  bool karras = false;

  void add_to(examples::Options& options) {
    std::string names;
    for (const ldm::pipeline::SamplerName& s : ldm::pipeline::kSamplerNames)
      names += (names.empty() ? "" : ", ") + std::string(s.name);
    options.add("sampler", &sampler,
                "one of " + names + " (default: the model's scheduler; DDIM for a new model)");
    options.add("sample-steps", &steps, "denoising steps (ddpm: up to 1000)");
    options.add("eta", &eta, "DDIM's eta: 0 is deterministic, 1 is DDPM-like noise");
    options.add_switch("karras", &karras,
                       "Karras et al.'s sigmas (use_karras_sigmas): euler, heun, dpm++2m, unipc");
  }
  // The sampler as LatentDiffusion::sampler() takes it: diffusers' from_config options.
  nlohmann::json options() const {
    nlohmann::json o = nlohmann::json::object();
    if (!sampler.empty()) o["_class_name"] = ldm::pipeline::sampler_class(sampler, "--sampler");
    if (eta != 0) o["eta"] = eta;
    if (karras) o["use_karras_sigmas"] = true;
    return o;
  }
  std::string name() const {
    return (sampler.empty() ? "the model's sampler" : sampler) + (karras ? " (Karras sigmas)" : "");
  }
};

// Draws `count` images (rounded up to whole preview batches) from the EMA UNet.
template <class Space>
std::vector<float> draw_samples(ModelOn<Space>& model, const SamplingFlags& how, std::uint64_t seed,
                                ldm::index_t count) {
  ldm::Tensor<float, Images<preview_batch>, Space> batch;
  const auto sampler = model.sampler(how.steps, how.options());
  std::vector<float> all;
  for (ldm::index_t first = 0; first < count; first += preview_batch) {
    const std::uint64_t batch_seed = seed + std::uint64_t(first / preview_batch);
    model.template sample<preview_batch>(sampler, batch_seed, batch.view());
    const auto images = ldm::to_host(batch.view());
    all.insert(all.end(), images.data(), images.data() + images.size);
  }
  return all;
}

inline void write_grid(const fs::path& path, std::span<const float> images, ldm::index_t columns) {
  ldm::io::write_image_grid(
      path, images,
      {.height = resolution, .width = resolution, .channels = image_channels, .columns = columns});
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
  // log.csv's length when the checkpoint was saved: a resumed run cuts off the rows of the steps
  // it trains again. Absent from checkpoints of earlier versions.
  std::optional<std::uint64_t> log_bytes;

  ldm::RunInfo to_info() const {
    ldm::RunInfo info = {{"trainer.phase", phase},
                         {"trainer.batch", std::to_string(batch)},
                         {"trainer.seed", std::to_string(seed)},
                         {"trainer.data", data},
                         {"trainer.autoencoder_epoch", std::to_string(autoencoder_epoch)},
                         {"trainer.autoencoder_position", std::to_string(autoencoder_position)},
                         {"trainer.diffusion_epoch", std::to_string(diffusion_epoch)},
                         {"trainer.diffusion_position", std::to_string(diffusion_position)},
                         {"trainer.seconds", std::to_string(seconds)}};
    if (log_bytes) info["trainer.log_bytes"] = std::to_string(*log_bytes);
    return info;
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
    if (info.contains("trainer.log_bytes")) state.log_bytes = number("log_bytes");
    return state;
  }
};

// The training images and 16 held-out ones to show reconstructions of.
struct TrainingData {
  ImageSet train;
  ldm::Tensor<float, Images<preview_batch>> preview;
  std::string description;
};

inline TrainingData load_data(const TrainFlags& flags) {
  TrainingData data;
  if (flags.data.empty()) {
    data.train = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::train);
    const ImageSet test = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::test);
    std::copy_n(test.pixels.data(), data.preview.size, data.preview.data());
    data.description = "fashion-mnist";
    return data;
  }
  ldm::data::ImageFolderReport report;
  data.train = ldm::data::load_image_folder<resolution, image_channels>(
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

    // Refused rather than started over: a fresh run would remove what is there.
    if (const auto found = ldm::pipeline::checkpoint_files(checkpoint_);
        !flags_.resume && !found.empty())
      ldm::fail(found.front().string(),
                ": a run is already there; continue it with --resume, or give another --out");
    const TrainingData data = load_data(flags_);
    state_.data = data.description;
    if (flags_.resume) resume<N>();
    std::printf("data: %s, %zu images of %lldx%lldx%lld\n", data.description.c_str(),
                data.train.size(), (long long)resolution, (long long)resolution,
                (long long)image_channels);
    std::printf("batch %lld; output in %s\n", (long long)N, flags_.out.c_str());
    fs::create_directories(flags_.out);
    open_log();

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

    std::printf("sampling 64 images (%s, %d steps)...\n", flags_.sampling.name().c_str(),
                flags_.sampling.steps);
    write_grid(fs::path(flags_.out) / "samples.png",
               draw_samples(*model_, flags_.sampling, std::uint64_t(flags_.seed), 64), 8);
    plot_losses();
    std::printf("wrote %s/samples.png, reconstructions.png and loss.png; the model is in %s\n",
                flags_.out.c_str(), checkpoint_.c_str());
    return 0;
  }

 private:
  template <ldm::index_t N>
  void resume() {
    const auto found = ldm::pipeline::find_checkpoint(checkpoint_);
    if (!found)
      ldm::fail(checkpoint_.string(), ": --resume given, but there is no checkpoint to resume");
    model_->load(*found);
    const RunState saved = RunState::from_info(model_->run_info(), *found);
    if (saved.batch != N)
      ldm::fail_expected("--batch", std::to_string(saved.batch) + " (the checkpoint's batch)", N);
    if (saved.data != state_.data)
      ldm::fail_expected("the training data", saved.data + " (the checkpoint's)", state_.data);
    state_ = saved;
    std::printf("resumed %s: %s phase, autoencoder step %llu, diffusion step %llu, %s trained\n",
                found->c_str(), state_.phase.c_str(),
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
          const StepOutcome outcome{std::int64_t(model_->autoencoder_steps()), result.losses.total,
                                    result.skipped, result.skipped_steps};
          log("autoencoder", outcome.attempted(), result.losses.total, result.grad_norm);
          return outcome;
        },
        [&] { write_reconstructions(*model_, data.preview, images); });
    write_reconstructions(*model_, data.preview, images);
  }

  template <ldm::index_t N>
  void train_diffusion(const TrainingData& data, Clock::time_point deadline) {
    if (std::int64_t(model_->diffusion_steps()) >= flags_.diffusion_steps) return;
    std::printf(
        "diffusion: UNet of %lld parameters on %lldx%lldx%lld latents, %s MSE\n",
        (long long)Model::UNet::parameter_count, (long long)Model::latent_res,
        (long long)Model::latent_res, (long long)Config::latent_channels,
        std::string(ldm::diffusion::to_string(model_->scheduler().prediction_type)).c_str());
    run_phase<N>(
        "diffusion", "--diffusion-steps", std::int64_t(model_->diffusion_steps()),
        flags_.diffusion_steps, data.train, 2, state_.diffusion_epoch, state_.diffusion_position,
        deadline,
        [&](ldm::View<const float, Images<N>, Space> x) {
          const bool first_step = model_->diffusion_steps() == 0;
          const auto result = model_->template diffusion_step<N>(x);
          // Printed before the phase's first progress line, so it needs no clearing.
          if (first_step && !result.skipped)
            std::printf("latent scaling factor %.4f (1 / std of the first batch's latents)\n",
                        model_->scaling_factor());
          const StepOutcome outcome{std::int64_t(model_->diffusion_steps()), result.loss,
                                    result.skipped, result.skipped_steps};
          log("diffusion", outcome.attempted(), result.loss, result.grad_norm);
          return outcome;
        },
        [&] {
          write_grid(fs::path(flags_.out) / "samples.png",
                     draw_samples(*model_, flags_.sampling, std::uint64_t(flags_.seed), 16), 8);
        });
  }

  // log.csv as the checkpoint left it: a fresh run starts it anew (no rows of a run that never
  // saved a checkpoint), a resumed one drops the rows of the steps after its checkpoint.
  void open_log() {
    const fs::path path = fs::path(flags_.out) / "log.csv";
    std::error_code ec;
    const std::uint64_t size = fs::exists(path) ? fs::file_size(path) : 0;
    std::uint64_t keep = flags_.resume ? size : 0;
    if (flags_.resume && state_.log_bytes) {
      if (*state_.log_bytes <= size)
        keep = *state_.log_bytes;
      else
        std::fprintf(stderr,
                     "fashion: warning: %s is shorter than when the checkpoint was saved (%llu "
                     "bytes, not %llu); its rows continue after what is there\n",
                     path.c_str(), (unsigned long long)size, (unsigned long long)*state_.log_bytes);
    }
    if (keep < size) fs::resize_file(path, keep, ec);
    if (ec)
      ldm::fail(path.string(), ": cannot cut off the rows after the checkpoint: ", ec.message());
    log_.open(path, std::ios::app);
    if (!log_) ldm::fail(path.string(), ": cannot open for writing");
    if (keep == 0) log_ << "phase,step,loss,grad_norm,seconds\n";
  }

  // What one call of a phase's step did.
  struct StepOutcome {
    std::int64_t done;  // steps applied so far
    double loss;
    bool skipped;  // not applied: a loss or the gradient norm was not finite
    ldm::train::SkippedSteps skipped_steps;
    // The step this call was about: a skipped one is tried again with the next batch.
    std::int64_t attempted() const { return done + (skipped ? 1 : 0); }
  };

  // Steps from `done` until `target` (the option `target_flag`), the deadline or a signal, with
  // progress, periodic images and checkpoints. `step` takes a batch and returns a StepOutcome;
  // the data position is kept in `epoch` and `position` for the checkpoints. A skipped step is
  // reported and its batch passed over; the library ends training (an ldm::Error) when too many
  // come in a row.
  template <ldm::index_t N, class Step, class WriteImages>
  void run_phase(const char* name, const char* target_flag, std::int64_t done, std::int64_t target,
                 const ImageSet& set, std::uint64_t data_stream, std::uint64_t& epoch,
                 std::uint64_t& position, Clock::time_point deadline, const Step& step,
                 const WriteImages& write_images) {
    ldm::data::ShuffledBatches<resolution, image_channels> batches(set, stream(data_stream));
    batches.seek(epoch, position);
    ldm::Tensor<float, Images<N>> x;
    ldm::Tensor<float, Images<N>, Space> staging;
    examples::Progress progress(name, done, target, deadline);
    std::string why = std::string("reached ") + target_flag;
    std::uint64_t skipped = 0;
    while (done < target) {
      if (interrupted || Clock::now() >= deadline) {
        why = interrupted ? std::string("stopped by ") + signal_name(interrupted)
                          : "time budget reached";
        break;
      }
      batches.next<N>(x.view());
      epoch = batches.epoch(), position = batches.position();
      const StepOutcome outcome = step(in_space<Space>(x, staging));
      if (outcome.skipped) {
        ++skipped;
        progress.interrupt_line();
        std::printf(
            "%s: step %lld not applied: its %s is not finite (%llu in a row); the next "
            "batch tries again\n",
            name, (long long)outcome.attempted(), outcome.skipped_steps.cause.c_str(),
            (unsigned long long)outcome.skipped_steps.in_a_row);
        std::fflush(stdout);  // before an error that may end the run
        continue;
      }
      done = outcome.done;
      progress.update(done, outcome.loss);
      if (done % flags_.images_every == 0) {
        write_images();
        plot_losses();
      }
      if (done % flags_.checkpoint_every == 0) {
        progress.interrupt_line();
        save(nullptr);
      }
    }
    progress.finish(why.c_str());
    if (skipped > 0)
      std::printf("%s: %llu batches skipped for a loss or gradient norm that was not finite\n",
                  name, (unsigned long long)skipped);
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
    log_.flush();
    saving.log_bytes = fs::file_size(fs::path(flags_.out) / "log.csv");
    model_->save(checkpoint_, saving.to_info());
    std::printf("checkpoint: %s (autoencoder step %llu, diffusion step %llu)%s%s\n",
                checkpoint_.c_str(), (unsigned long long)model_->autoencoder_steps(),
                (unsigned long long)model_->diffusion_steps(), why ? ": " : "", why ? why : "");
    std::fflush(stdout);
  }

  // loss.png beside log.csv. A picture that cannot be drawn is reported, and training goes on.
  void plot_losses() {
    const fs::path out = flags_.out;
    try {
      write_loss_plot(out / "log.csv", out / "loss.png");
    } catch (const ldm::Error& e) {
      std::printf("\nloss.png not drawn: %s\n", e.what());
    }
  }

  // After SIGINT, SIGTERM or SIGHUP: a checkpoint, then the shell's code for that signal.
  int stop() {
    const int signal = interrupted;
    const std::string why = std::string("stopped by ") + signal_name(signal);
    save(why.c_str());
    plot_losses();
    std::printf("%s; continue with the same command and --resume\n", why.c_str());
    return 128 + signal;
  }

  const TrainFlags& flags_;
  fs::path checkpoint_;
  std::unique_ptr<Model> model_;
  RunState state_;
  std::ofstream log_;
  Clock::time_point run_start_ = Clock::now();
};

// Trains at the batch size the flags name (16, 32 or 64: batch sizes are compiled in).
template <class Space>
int train(const TrainFlags& flags) {
  Trainer<Space> trainer(flags);
  switch (flags.batch) {
    case 16:
      return trainer.template run<16>();
    case 32:
      return trainer.template run<32>();
    default:
      return trainer.template run<64>();
  }
}

struct SampleRequest {
  std::string model_folder, out;
  std::int64_t seed = 0, count = 64;
  SamplingFlags sampling;
};

// A grid of samples from a model folder.
template <class Space>
int sample(const SampleRequest& request) {
  const auto start = Clock::now();
  ModelOn<Space> model(0);
  model.load(request.model_folder);
  std::printf("sampling %lld images from %s (%s, %d steps)...\n", (long long)request.count,
              request.model_folder.c_str(), request.sampling.name().c_str(),
              request.sampling.steps);
  const auto images = draw_samples(model, request.sampling, std::uint64_t(request.seed),
                                   ldm::index_t(request.count));
  const fs::path out = request.out;
  if (out.has_parent_path()) fs::create_directories(out.parent_path());
  write_grid(out, images, 8);
  std::printf("wrote %s in %.1f s\n", out.c_str(),
              std::chrono::duration<double>(Clock::now() - start).count());
  return 0;
}

// The GPU instantiations, defined in fashion/cuda.cu (only in builds with CUDA). cuda_device()
// describes the GPU ("cuda:0, NVIDIA H200"), or is empty where there is none.
std::string cuda_device();
int train_on_cuda(const TrainFlags& flags);
int sample_on_cuda(const SampleRequest& request);

}  // namespace fashion
