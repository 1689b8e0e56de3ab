#pragma once
/// @file
/// The training run of a latent diffusion model, generic over the configuration, the memory space
/// and the compiled micro-batch: the autoencoder first, then the UNet on its frozen latents, each
/// phase until its step count or its share of the time budget, with progress, log.csv,
/// validation.csv, image grids, loss.png, atomic checkpoints, an exact resume, and a clean stop
/// on SIGINT, SIGTERM or SIGHUP (stop_signals.hpp). ldm::train::main() (main.hpp) is its command
/// line.
///
/// A step of --batch B images accumulates the gradients of B / MicroBatch micro-batches: one
/// compiled batch size serves every B, and the result is the step of one batch of B to float
/// rounding (LatentDiffusion::diffusion_step() draws every sample's noise by its place in the
/// whole batch). A step's images are taken whole from one epoch, as a batch of B would be.
///
/// Data-parallel (Comm is an MPI or NCCL communicator): the K ranks share each step, rank r
/// taking micro-batches r * k ... r * k + k - 1 of the B / MicroBatch (k = B / (K MicroBatch)).
/// Every rank runs the same data order and the same collective calls; they agree on when to
/// stop (a signal or the time budget on any rank stops all after the same step); rank 0 alone
/// prints, writes logs, images and checkpoints, and validates.

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "ldm/cli/progress.hpp"
#include "ldm/data/background_loader.hpp"
#include "ldm/distributed/communicator.hpp"
#include "ldm/pipeline/checkpoint_store.hpp"
#include "ldm/pipeline/latent_diffusion.hpp"
#include "ldm/trainer/loss_plot.hpp"
#include "ldm/trainer/program.hpp"
#include "ldm/trainer/run_state.hpp"
#include "ldm/trainer/sample_grids.hpp"
#include "ldm/trainer/stop_signals.hpp"
#include "ldm/trainer/validation.hpp"

namespace ldm::train {

/// One training run; run() does all of it.
/// @tparam Config the configuration (see ldm::configs)
/// @tparam Space ldm::host, or ldm::cuda in a .cu unit
/// @tparam MicroBatch the batch the steps are compiled for
/// @tparam Comm the ranks: distributed::SingleProcess, or an MPI or NCCL communicator
template <class Config, class Space, index_t MicroBatch,
          class Comm = distributed::SingleProcess<Space>>
class Trainer {
 public:
  /// The model trained.
  using Model = LatentDiffusion<Config, Space>;
  /// The run's images.
  using Data = TrainingData<Config::resolution, Config::image_channels>;

  /// A run with these settings (checked by TrainerSettings::validate()) on the ranks of `comm`.
  /// @throws ldm::Error when --batch is not a multiple of MicroBatch times the number of ranks
  Trainer(const TrainerSettings& settings, const Program<Config>& program, Comm& comm)
      : settings_(settings),
        program_(program),
        comm_(comm),
        root_(comm.rank() == 0),
        out_(settings.out),
        checkpoint_(out_ / "checkpoint"),
        micro_batches_(settings.batch / (MicroBatch * comm.size())) {
    if (settings.batch % (MicroBatch * comm.size()) != 0)
      fail_expected("--batch",
                    "a multiple of " + std::to_string(MicroBatch * comm.size()) + " (" +
                        std::to_string(comm.size()) + " processes, each a multiple of the " +
                        std::to_string(MicroBatch) + " images of its compiled micro-batch)",
                    settings.batch);
  }

  /// Trains, samples a final grid and returns the exit code: 0 when the run finished, 128 + n
  /// after signal n stopped it (with a checkpoint to resume from).
  /// @throws ldm::Error when the data, a checkpoint or the output cannot be used, or training
  ///         diverges
  int run() {
    model_ = std::make_unique<Model>(std::uint64_t(settings_.seed), training_options());
    if (!settings_.lpips.empty()) model_->load_lpips(settings_.lpips);
    state_.world_size = comm_.size();
    state_.batch = settings_.batch;
    state_.micro_batch = MicroBatch;
    state_.seed = settings_.seed;
    state_.flip = settings_.flip;
    state_.snr_gamma = settings_.snr_gamma;
    state_.noise_offset = settings_.noise_offset;
    state_.label_dropout = label_dropout();

    // Refused rather than started over: a fresh run would remove what is there.
    if (const auto found = pipeline::checkpoint_files(checkpoint_);
        !settings_.resume && !found.empty())
      fail(found.front().string(),
           ": a run is already there; continue it with --resume, or give another --out");
    // Rank 0 first, so that it alone decodes a folder and writes its cache; the others read it.
    Data data;
    if (root_) data = load_data();
    comm_.barrier();
    if (!root_) data = load_data();
    state_.data = data.description;
    require_labels(data);
    if (settings_.resume) resume();
    // Every rank starts from rank 0's weights and optimiser state.
    model_->broadcast_state(comm_);
    std::printf("data: %s, %zu training images of %lldx%lldx%lld, %zu %s\n",
                data.description.c_str(), data.train.size(), (long long)Config::resolution,
                (long long)Config::resolution, (long long)Config::image_channels,
                data.held_out.size(),
                data.held_out_is_training ? "of them for validation (too few to hold some out)"
                                          : "held out for validation");
    std::printf("batch %d (%s%lld micro-batch%s of %lld)%s; output in %s\n", settings_.batch,
                comm_.size() > 1 ? (std::to_string(comm_.size()) + " processes x ").c_str() : "",
                (long long)micro_batches_, micro_batches_ == 1 ? "" : "es", (long long)MicroBatch,
                settings_.flip ? ", random horizontal flips" : "", out_.c_str());
    if (root_) {
      std::filesystem::create_directories(out_);
      open_csv(log_, "log.csv", "phase,step,loss,grad_norm,lr,seconds\n", state_.log_bytes);
      open_csv(validation_, "validation.csv", "phase,step,measure,value,seconds\n",
               state_.validation_bytes);
    }

    const auto start = Clock::now();
    const bool budgeted = settings_.time_budget > 0;
    const auto deadline =
        budgeted ? start + seconds(settings_.time_budget) : Clock::time_point::max();
    if (state_.phase == "autoencoder") {
      train_autoencoder(
          data, budgeted ? start + seconds(settings_.time_budget * settings_.autoencoder_share)
                         : deadline);
      if (stopped_by_ > 0) return stop();
      state_.phase = "diffusion";
      save("the autoencoder is trained and frozen from here on");
    } else if (model_->autoencoder_steps() < std::uint64_t(settings_.autoencoder_steps)) {
      std::printf(
          "autoencoder: kept at step %llu (this run's diffusion phase has started, and the "
          "diffusion model is trained on its latents)\n",
          (unsigned long long)model_->autoencoder_steps());
    }
    train_diffusion(data, deadline);
    if (stopped_by_ > 0) return stop();
    save("training finished");
    if (!root_) return 0;

    std::printf(
        "sampling %lld images (%s, %d steps%s)...\n", (long long)grid_count(),
        settings_.sampling.name().c_str(), settings_.sampling.steps,
        Model::class_conditional
            ? (", a row per class, guidance " + cli::shown(settings_.sampling.guidance)).c_str()
            : "");
    write_grid<Model>(out_ / "samples.png",
                      draw_samples(*model_, settings_.sampling, std::uint64_t(settings_.seed),
                                   grid_count(), grid_labels()),
                      8);
    plot_losses();
    std::printf("wrote %s/samples.png, reconstructions.png and loss.png; the model is in %s\n",
                out_.c_str(), checkpoint_.c_str());
    return 0;
  }

 private:
  using Clock = std::chrono::steady_clock;
  using MicroImages = typename Model::template images<MicroBatch>;

  static Clock::duration seconds(double s) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s));
  }

  TrainingOptions training_options() const {
    TrainingOptions options;
    options.autoencoder_optimizer.lr = settings_.autoencoder_lr;
    options.unet_optimizer.lr = settings_.unet_lr;
    options.autoencoder_lr_schedule = settings_.schedule_over(settings_.autoencoder_steps);
    options.unet_lr_schedule = settings_.schedule_over(settings_.diffusion_steps);
    options.prediction_type =
        diffusion::parse_name<diffusion::PredictionType>(settings_.prediction_type);
    options.snr_gamma = settings_.snr_gamma;
    options.noise_offset = settings_.noise_offset;
    options.label_dropout = label_dropout();
    return options;
  }
  double label_dropout() const { return Model::class_conditional ? settings_.label_dropout : 0; }

  // A class-conditional model trains on labels of its classes.
  static void require_labels(const Data& data) {
    if constexpr (Model::class_conditional) {
      if (data.train.labels.empty())
        fail(data.description,
             ": its images have no class labels, and this configuration is "
             "class-conditional (",
             Model::classes, " classes); a folder of images has none");
      for (std::size_t i = 0; i < data.train.labels.size(); ++i)
        if (data.train.labels[i] < 0 || data.train.labels[i] >= std::int32_t(Model::classes))
          fail_expected(data.description + ": label of image " + std::to_string(i),
                        "a class in [0, " + std::to_string(Model::classes) + ")",
                        data.train.labels[i]);
    }
  }
  // The sample grid's labels: one row of 8 per class for a class-conditional model.
  static std::vector<std::int32_t> grid_labels() {
    return train::labels_in_turn<Model>(8 * Model::classes, 8);
  }
  static index_t grid_count() { return Model::class_conditional ? 8 * Model::classes : 64; }

  Data load_data() const {
    const std::size_t at_least = std::size_t(std::max<index_t>(settings_.batch, preview_batch));
    if (!settings_.data.empty())
      return load_folder_data<Config::resolution, Config::image_channels>(
          settings_.data,
          settings_.on_unreadable == "skip" ? data::Unreadable::skip : data::Unreadable::reject,
          settings_.data_cache, at_least);
    if (!program_.default_data)
      fail_expected("--data", "a folder of images (" + program_.name + " has no data of its own)",
                    "none");
    Data data = program_.default_data();
    if (data.train.size() < at_least || data.held_out.size() < std::size_t(preview_batch))
      fail_expected(
          program_.name + "'s data",
          "at least " + std::to_string(at_least) + " training and " +
              std::to_string(preview_batch) + " held-out images",
          std::to_string(data.train.size()) + " and " + std::to_string(data.held_out.size()));
    return data;
  }

  void resume() {
    const auto found = pipeline::find_checkpoint(checkpoint_);
    if (!found)
      fail(checkpoint_.string(), ": --resume given, but there is no checkpoint to resume");
    model_->load(*found);
    const RunState saved = RunState::from_info(model_->run_info(), *found);
    if (saved.batch != settings_.batch)
      fail_expected("--batch", std::to_string(saved.batch) + " (the checkpoint's batch)",
                    settings_.batch);
    if (saved.data != state_.data)
      fail_expected("the training data", saved.data + " (the checkpoint's)", state_.data);
    if (saved.flip != settings_.flip)
      fail(settings_.flip ? "--flip given" : "--flip not given", ", but the checkpoint's run ",
           saved.flip ? "flips" : "does not flip", " its images; resume it as it was started");
    if (saved.snr_gamma != settings_.snr_gamma)
      fail_expected("--snr-gamma", cli::shown(saved.snr_gamma) + " (the checkpoint's)",
                    cli::shown(settings_.snr_gamma));
    if (saved.noise_offset != settings_.noise_offset)
      fail_expected("--noise-offset", cli::shown(saved.noise_offset) + " (the checkpoint's)",
                    cli::shown(settings_.noise_offset));
    if (saved.label_dropout != label_dropout())
      fail_expected("--label-dropout", cli::shown(saved.label_dropout) + " (the checkpoint's)",
                    cli::shown(label_dropout()));
    const std::string prediction(diffusion::to_string(model_->scheduler().prediction_type));
    if (prediction != settings_.prediction_type)
      fail_expected("--prediction-type", prediction + " (the checkpoint's)",
                    settings_.prediction_type);
    if (saved.world_size != comm_.size())
      std::printf(
          "note: the checkpoint's run had %lld process%s, this one %d: every sample draws the same "
          "noise, and the steps agree with the earlier run's to float rounding, not bit for bit\n",
          (long long)saved.world_size, saved.world_size == 1 ? "" : "es", comm_.size());
    if (saved.micro_batch != MicroBatch)
      std::printf(
          "note: the checkpoint's run accumulated micro-batches of %lld, this program's are %lld: "
          "the steps agree with an uninterrupted run to float rounding, not bit for bit\n",
          (long long)saved.micro_batch, (long long)MicroBatch);
    state_ = saved;
    state_.micro_batch = MicroBatch;
    state_.world_size = comm_.size();
    std::printf(
        "resumed %s: %s phase, autoencoder step %llu, diffusion step %llu, %s trained\n",
        found->c_str(), state_.phase.c_str(), (unsigned long long)model_->autoencoder_steps(),
        (unsigned long long)model_->diffusion_steps(), cli::clock_text(state_.seconds).c_str());
  }

  void train_autoencoder(const Data& data, Clock::time_point deadline) {
    if (std::int64_t(model_->autoencoder_steps()) >= settings_.autoencoder_steps) return;
    std::printf("autoencoder: %lld parameters, loss = L1 + %s + 1e-6 KL\n",
                (long long)Model::AE::parameter_count, model_->perceptual_term().c_str());
    const auto reconstructions = out_ / "reconstructions.png";
    const auto preview = preview_images(data);
    run_phase(
        "autoencoder", "--autoencoder-steps", std::int64_t(model_->autoencoder_steps()),
        settings_.autoencoder_steps, data.train, 1, state_.autoencoder_epoch,
        state_.autoencoder_position, deadline,
        [&](auto&& batch_of) {
          const auto result =
              model_->template autoencoder_step<MicroBatch>(comm_, micro_batches_, batch_of);
          const StepOutcome outcome{std::int64_t(model_->autoencoder_steps()), result.losses.total,
                                    result.skipped, result.skipped_steps};
          log("autoencoder", outcome.attempted(), result.losses.total, result.grad_norm,
              model_->autoencoder_optimizer().config().lr);
          return outcome;
        },
        [&] { write_reconstructions(*model_, preview, reconstructions); },
        [&] { return reconstruction_measures(*model_, data.held_out); });
    if (root_) write_reconstructions(*model_, preview, reconstructions);
  }

  void train_diffusion(const Data& data, Clock::time_point deadline) {
    if (std::int64_t(model_->diffusion_steps()) >= settings_.diffusion_steps) return;
    std::printf("diffusion: UNet of %lld parameters on %lldx%lldx%lld latents, %s MSE%s\n",
                (long long)Model::UNet::parameter_count, (long long)Model::latent_res,
                (long long)Model::latent_res, (long long)Model::latent_channels,
                std::string(diffusion::to_string(model_->scheduler().prediction_type)).c_str(),
                settings_.snr_gamma > 0
                    ? (", min-SNR-" + cli::shown(settings_.snr_gamma) + " weighted").c_str()
                    : "");
    if constexpr (Model::class_conditional)
      std::printf(
          "class-conditional: %lld classes, %g of the labels dropped for classifier-free "
          "guidance; samples guided with scale %g\n",
          (long long)Model::classes, label_dropout(), settings_.sampling.guidance);
    if constexpr (Model::label_tokens)
      std::printf(
          "label tokens: %lld rows (the classes and the null label) of %lld tokens x %lld "
          "channels, the cross-attention's contexts, learned with the UNet\n",
          (long long)Model::classes + 1, (long long)Model::context_tokens,
          (long long)Model::template context<1>::extent(2));
    run_phase(
        "diffusion", "--diffusion-steps", std::int64_t(model_->diffusion_steps()),
        settings_.diffusion_steps, data.train, 2, state_.diffusion_epoch, state_.diffusion_position,
        deadline,
        [&](auto&& batch_of) {
          const bool first_step = model_->diffusion_steps() == 0;
          const auto result =
              model_->template diffusion_step<MicroBatch>(comm_, micro_batches_, batch_of);
          // Printed before the phase's first progress line, so it needs no clearing.
          if (first_step && !result.skipped)
            std::printf("latent scaling factor %.4f (1 / std of the first micro-batch's latents)\n",
                        model_->scaling_factor());
          const StepOutcome outcome{std::int64_t(model_->diffusion_steps()), result.loss,
                                    result.skipped, result.skipped_steps};
          log("diffusion", outcome.attempted(), result.loss, result.grad_norm,
              model_->unet_optimizer().config().lr);
          return outcome;
        },
        [&] {
          write_grid<Model>(out_ / "samples.png",
                            draw_samples(*model_, settings_.sampling, std::uint64_t(settings_.seed),
                                         16, train::labels_in_turn<Model>(16, 1)),
                            8);
        },
        [&] {
          if (!program_.sample_measures) return std::vector<Measure>{};
          const auto samples =
              draw_samples(*model_, settings_.sampling, std::uint64_t(settings_.seed) + 1'000'000,
                           program_.validation_samples,
                           train::labels_in_turn<Model>(program_.validation_samples, 1));
          return program_.sample_measures(samples);
        });
  }

  // The first preview batch of the held-out images: the reconstruction grid's inputs.
  static View<const float, typename Model::template images<preview_batch>> preview_images(
      const Data& data) {
    return View<const float, typename Model::template images<preview_batch>>(
        data.held_out.pixels.data());
  }

  // What one call of a phase's step did.
  struct StepOutcome {
    std::int64_t done;  // steps applied so far
    double loss;
    bool skipped;  // not applied: a loss or the gradient norm was not finite
    SkippedSteps skipped_steps;
    // The step this call was about: a skipped one is tried again with the next batch.
    std::int64_t attempted() const { return done + (skipped ? 1 : 0); }
  };

  // Steps from `done` until `target` (the option `target_flag`), the deadline or a signal, with
  // progress, periodic images, validation and checkpoints. `step` takes the step's micro-batches
  // (a callable giving micro-batch j) and returns a StepOutcome; the data position is kept in
  // `epoch` and `position` for the checkpoints. A skipped step is reported and its batch passed
  // over; the library ends training (an ldm::Error) when too many come in a row.
  template <class Step, class WriteImages, class Validate>
  void run_phase(const char* name, const char* target_flag, std::int64_t done, std::int64_t target,
                 const data::ImageSet<Config::resolution, Config::image_channels>& set,
                 std::uint64_t data_stream, std::uint64_t& epoch, std::uint64_t& position,
                 Clock::time_point deadline, const Step& step, const WriteImages& write_images,
                 const Validate& validate) {
    data::BackgroundLoader<Config::resolution, Config::image_channels, MicroBatch> batches(
        set, stream(data_stream), settings_.flip);
    batches.seek(epoch, position);
    Tensor<float, MicroImages> x;
    Tensor<std::int32_t, Shape<MicroBatch>> labels;
    Tensor<float, MicroImages, Space> staging;
    // This rank's micro-batches of a step; the other ranks' are passed over, so that every rank
    // ends the step at the same data position.
    const index_t before = micro_batches_ * comm_.rank(),
                  after = micro_batches_ * (comm_.size() - 1 - comm_.rank());
    const auto pass_over = [&](index_t count) {
      for (index_t i = 0; i < count; ++i)
        batches.next(x.view());
    };
    // A class-conditional model's micro-batches carry their labels (the autoencoder ignores them).
    const auto batch_of = [&](index_t j) {
      if (j == 0) pass_over(before);
      batches.next(x.view(), labels.view());
      const auto images = in_space<Space>(View<const float, MicroImages>(x), staging);
      if constexpr (Model::class_conditional)
        return typename Model::template labelled_images<MicroBatch>{
            images, std::span<const std::int32_t>(labels.data(), std::size_t(MicroBatch))};
      else
        return images;
    };
    cli::Progress progress(name, done, target, deadline);
    std::string why = std::string("reached ") + target_flag;
    std::uint64_t skipped = 0;
    while (done < target) {
      // Every rank stops after the same step, for the weightiest reason any of them has: a
      // signal (kSignalled + its number), else the time budget (1).
      constexpr std::int64_t kSignalled = 1000;
      const std::int64_t stop = comm_.all_reduce_max(
          stop_signal ? kSignalled + stop_signal : (Clock::now() >= deadline ? 1 : 0));
      if (stop != 0) {
        stopped_by_ = stop >= kSignalled ? int(stop - kSignalled) : 0;
        why = stopped_by_ > 0 ? std::string("stopped by ") + signal_name(stopped_by_)
                              : "time budget reached";
        break;
      }
      // A step's images come from one epoch, as one batch of --batch would.
      if (batches.position() + std::size_t(settings_.batch) > set.size())
        batches.seek(batches.epoch() + 1, 0);
      const StepOutcome outcome = step(batch_of);
      pass_over(after);
      epoch = batches.epoch(), position = batches.position();
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
      if (root_ && done % settings_.images_every == 0) {
        write_images();
        plot_losses();
      }
      if (root_ && settings_.validate_every > 0 && done % settings_.validate_every == 0) {
        progress.interrupt_line();
        record_validation(name, done, validate());
      }
      if (done % settings_.checkpoint_every == 0) {
        progress.interrupt_line();
        save(nullptr);
      }
    }
    progress.finish(why.c_str());
    // Whether the data loader kept ahead of the steps (it prepares batches on a thread).
    if (batches.batches() > 0)
      std::printf("%s: the steps waited %.2f s for data over %llu micro-batches\n", name,
                  batches.waited_seconds(), (unsigned long long)batches.batches());
    if (skipped > 0)
      std::printf("%s: %llu batches skipped for a loss or gradient norm that was not finite\n",
                  name, (unsigned long long)skipped);
  }

  void record_validation(const char* phase, std::int64_t step, const std::vector<Measure>& found) {
    if (found.empty()) return;
    std::string line;
    for (const auto& [measure, value] : found) {
      validation_ << phase << ',' << step << ',' << measure << ',' << value << ',' << elapsed()
                  << '\n';
      line += (line.empty() ? "" : ", ") + measure + " " + cli::shown(value);
    }
    validation_.flush();
    std::printf("validation at %s step %lld: %s\n", phase, (long long)step, line.c_str());
  }

  // Shuffling streams of their own, so that the data order is the seed's whatever else happens.
  std::uint64_t stream(std::uint64_t phase) const { return std::uint64_t(state_.seed) * 4 + phase; }

  double elapsed() const {
    return state_.seconds + std::chrono::duration<double>(Clock::now() - run_start_).count();
  }

  void log(const char* phase, std::int64_t step, double loss, double grad_norm, double lr) {
    if (!root_) return;
    log_ << phase << ',' << step << ',' << loss << ',' << grad_norm << ',' << lr << ',' << elapsed()
         << std::endl;  // readable while running
  }

  // A CSV file of the run as the checkpoint left it: a fresh run starts it anew (no rows of a run
  // that never saved a checkpoint), a resumed one drops the rows of the steps after its
  // checkpoint.
  void open_csv(std::ofstream& file, const char* name, const char* header,
                std::optional<std::uint64_t> saved_bytes) {
    namespace fs = std::filesystem;
    const fs::path path = out_ / name;
    std::error_code ec;
    const std::uint64_t size = fs::exists(path) ? fs::file_size(path) : 0;
    std::uint64_t keep = settings_.resume ? size : 0;
    if (settings_.resume && saved_bytes) {
      if (*saved_bytes <= size)
        keep = *saved_bytes;
      else
        std::fprintf(stderr,
                     "%s: warning: %s is shorter than when the checkpoint was saved (%llu bytes, "
                     "not %llu); its rows continue after what is there\n",
                     program_.name.c_str(), path.c_str(), (unsigned long long)size,
                     (unsigned long long)*saved_bytes);
    }
    if (keep < size) fs::resize_file(path, keep, ec);
    if (ec) fail(path.string(), ": cannot cut off the rows after the checkpoint: ", ec.message());
    file.open(path, std::ios::app);
    if (!file) fail(path.string(), ": cannot open for writing");
    if (keep == 0) file << header << std::flush;
  }

  // Rank 0 writes the checkpoint; the others go on to the next step, where they wait for it.
  void save(const char* why) {
    if (!root_) return;
    RunState saving = state_;
    saving.seconds = elapsed();
    log_.flush();
    validation_.flush();
    saving.log_bytes = std::filesystem::file_size(out_ / "log.csv");
    saving.validation_bytes = std::filesystem::file_size(out_ / "validation.csv");
    model_->save(checkpoint_, saving.to_info());
    std::printf("checkpoint: %s (autoencoder step %llu, diffusion step %llu)%s%s\n",
                checkpoint_.c_str(), (unsigned long long)model_->autoencoder_steps(),
                (unsigned long long)model_->diffusion_steps(), why ? ": " : "", why ? why : "");
    std::fflush(stdout);
  }

  // loss.png beside log.csv. A picture that cannot be drawn is reported, and training goes on.
  void plot_losses() {
    if (!root_) return;
    try {
      write_loss_plot(out_ / "log.csv", out_ / "loss.png");
    } catch (const Error& e) {
      std::printf("\nloss.png not drawn: %s\n", e.what());
    }
  }

  // After SIGINT, SIGTERM or SIGHUP: a checkpoint, then the shell's code for that signal.
  int stop() {
    const int signal = stopped_by_;
    const std::string why = std::string("stopped by ") + signal_name(signal);
    save(why.c_str());
    plot_losses();
    // No rank ends before rank 0's checkpoint is written: a launcher ends a job when one exits.
    comm_.barrier();
    std::printf("%s; continue with the same command and --resume\n", why.c_str());
    return 128 + signal;
  }

  const TrainerSettings& settings_;
  const Program<Config>& program_;
  Comm& comm_;
  bool root_;
  // The signal that stopped the run on some rank, agreed by all (0: none).
  int stopped_by_ = 0;
  std::filesystem::path out_, checkpoint_;
  index_t micro_batches_;
  std::unique_ptr<Model> model_;
  RunState state_;
  std::ofstream log_, validation_;
  Clock::time_point run_start_ = Clock::now();
};

}  // namespace ldm::train
