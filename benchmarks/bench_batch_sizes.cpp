// Throughput of the two training steps against the batch size they are compiled for, to decide
// which micro-batch to compile once (larger batches then come from gradient accumulation): the
// tiny configuration at 16, 32 and 64, and the RGB example's (examples/train_rgb64.cpp) at 4, 8
// and 16; and the accumulating steps (tiny: 2 and 4 micro-batches of 16, 2 of 32) beside the
// compiled batch of the same size. Each step is the whole step a trainer runs with the default
// TrainingOptions (the autoencoder's SSIM term on, clipping, AdamW; the diffusion step's frozen
// encode, UNet, AdamW, EMA), after a few warm-up steps that allocate the batch's buffers. Counters:
// images per second, and the step's memory plan (LatentDiffusion::*_step_memory<N>) for this thread
// count. CPU time is the whole process's (all threads); repetitions add a "min" row. The *_update
// benchmarks time what a step does once whatever its batch (zero and clip the gradients, AdamW, the
// UNet's EMA), the part gradient accumulation pays once per effective batch.
//   OMP_NUM_THREADS=2 ./build/host/benchmarks/bench_batch_sizes --benchmark_repetitions=5 \
//       --benchmark_enable_random_interleaving=true
// docs/performance.md ("Batch size: compiled micro-batch and accumulation") has the numbers.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <ldm/ldm.hpp>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "benchmark_main.hpp"

namespace {

// examples/train_rgb64.cpp's configuration, repeated here because that file is the README's whole
// user program and has nothing to include.
struct Rgb64Config {
  static constexpr ldm::index_t image_channels = 3, resolution = 64;
  static constexpr ldm::AutoencoderKLConfig autoencoder{
      .block_out_channels = {32, 64, 64}, .layers_per_block = 1, .latent_channels = 4};
  static constexpr ldm::UNetConfig unet{.block_out_channels = {32, 64, 64},
                                        .layers_per_block = 2,
                                        .attention = {false, true, true},
                                        .attention_head_dim = 32};
  using schedule = ldm::LinearBetas<1000>;
};

constexpr int warm_up_steps = 3;

enum class Step { autoencoder, diffusion };

// One step of MicroBatches micro-batches of N (1: the plain step compiled for N).
template <class Config, ldm::index_t N, Step Which, ldm::index_t MicroBatches = 1>
void BM_step(benchmark::State& state) {
  using Model = ldm::LatentDiffusion<Config>;
  auto model = std::make_unique<Model>(1);
  ldm::Tensor<float, typename Model::template images<N>> x;
  x = ldm::rand<typename Model::template images<N>>(2) * 2.0f - 1.0f;
  const auto batch_of = [&](ldm::index_t) {
    return ldm::View<const float, typename Model::template images<N>>(x);
  };
  auto step = [&] {
    if constexpr (Which == Step::autoencoder)
      model->template autoencoder_step<N>(MicroBatches, batch_of);
    else
      model->template diffusion_step<N>(MicroBatches, batch_of);
  };
  for (int i = 0; i < warm_up_steps; ++i)
    step();
  for (auto _ : state)
    step();

  state.counters["images_per_second"] = benchmark::Counter(
      double(state.iterations()) * double(N * MicroBatches), benchmark::Counter::kIsRate);
  const auto host = ldm::ops::this_host();
  const auto plan = Which == Step::autoencoder ? Model::template autoencoder_step_memory<N>(host)
                                               : Model::template diffusion_step_memory<N>(host);
  state.counters["plan_MiB"] = double(plan.total()) / double(1 << 20);
}

// What a training step does once whatever its batch: zero the gradients, clip them, AdamW, and
// (the UNet) the EMA, over a model's parameter count. Gradient accumulation pays this once per
// effective batch; the rest of a step's cost that does not grow with N it pays per micro-batch.
template <ldm::index_t Parameters, bool WithEma>
void BM_update(benchmark::State& state) {
  using Flat = ldm::Shape<Parameters>;
  ldm::Tensor<float, Flat> values, grads;
  values = ldm::randn<Flat>(3);
  const std::span<float> value_span(values.data(), std::size_t(Parameters));
  const std::span<float> grad_span(grads.data(), std::size_t(Parameters));
  ldm::train::AdamW<> optimizer(ldm::TrainingOptions{}.unet_optimizer, std::size_t(Parameters));
  ldm::train::EMA<> ema(ldm::TrainingOptions{}.ema, value_span);
  for (auto _ : state) {
    grads = 0.0f;  // zero gradients: clipping sums them but does not scale them
    ldm::train::clip_grad_norm<>(grad_span, 1.0);
    optimizer.step(value_span, grad_span);
    if constexpr (WithEma) ema.step(value_span);
  }
}

template <class Config, ldm::index_t N, ldm::index_t MicroBatches = 1>
void register_steps(const std::string& config) {
  const std::string batch = MicroBatches == 1
                                ? std::to_string(N)
                                : std::to_string(MicroBatches) + "x" + std::to_string(N);
  for (auto [name, function] :
       {std::pair{"autoencoder_step", &BM_step<Config, N, Step::autoencoder, MicroBatches>},
        std::pair{"diffusion_step", &BM_step<Config, N, Step::diffusion, MicroBatches>}})
    benchmark::RegisterBenchmark((config + "/" + name + "/" + batch).c_str(), function)
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime()
        ->MeasureProcessCPUTime()
        ->ComputeStatistics("min",
                            [](const std::vector<double>& runs) {
                              return *std::min_element(runs.begin(), runs.end());
                            })
        ->MinTime(2);
}

}  // namespace

template <class Model>
void register_updates(const std::string& config) {
  const auto settings = [](benchmark::internal::Benchmark* b) {
    b->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime()->MinTime(1);
  };
  settings(benchmark::RegisterBenchmark((config + "/autoencoder_update").c_str(),
                                        &BM_update<Model::AE::parameter_count, false>));
  settings(benchmark::RegisterBenchmark((config + "/diffusion_update").c_str(),
                                        &BM_update<Model::UNet::parameter_count, true>));
}

int main(int argc, char** argv) {
  register_steps<ldm::configs::Tiny, 16>("tiny");
  register_steps<ldm::configs::Tiny, 32>("tiny");
  register_steps<ldm::configs::Tiny, 64>("tiny");
  register_steps<ldm::configs::Tiny, 16, 2>("tiny");
  register_steps<ldm::configs::Tiny, 16, 4>("tiny");
  register_steps<ldm::configs::Tiny, 32, 2>("tiny");
  register_steps<Rgb64Config, 4>("rgb64");
  register_steps<Rgb64Config, 8>("rgb64");
  register_steps<Rgb64Config, 16>("rgb64");
  register_updates<ldm::LatentDiffusion<ldm::configs::Tiny>>("tiny");
  register_updates<ldm::LatentDiffusion<Rgb64Config>>("rgb64");
  return bench::run(argc, argv);
}
