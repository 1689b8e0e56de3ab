// The tiny configuration's two training steps at batch 32 on the host: the autoencoder step
// (encode, reparameterise, decode, L1 + KL, backward, clip, AdamW) and the diffusion step (frozen
// encode, noise, UNet, MSE, backward, clip, AdamW, EMA). The perceptual term is off so that
// benchmarks/pytorch/cpu_steps.py times exactly the same work.
//   ./build/host/benchmarks/bench_pipeline
//   python3 benchmarks/pytorch/cpu_steps.py --threads 2
#include <benchmark/benchmark.h>

#include <ldm/ldm.hpp>
#include <memory>

#include "benchmark_main.hpp"

namespace {
using Model = ldm::LatentDiffusion<ldm::configs::Tiny>;
constexpr ldm::index_t batch = 32;

std::unique_ptr<Model> make_model() {
  ldm::TrainingOptions options;
  options.autoencoder_loss.perceptual_weight = 0;
  return std::make_unique<Model>(1, options);
}

ldm::Tensor<float, Model::images<batch>> images() {
  ldm::Tensor<float, Model::images<batch>> x;
  x = ldm::rand<Model::images<batch>>(2) * 2.0f - 1.0f;
  return x;
}

void BM_autoencoder_step(benchmark::State& state) {
  auto model = make_model();
  auto x = images();
  model->autoencoder_step<batch>(x);  // first use allocates the step's buffers
  for (auto _ : state)
    model->autoencoder_step<batch>(x);
  state.counters["images_per_second"] =
      benchmark::Counter(double(state.iterations()) * batch, benchmark::Counter::kIsRate);
}

void BM_diffusion_step(benchmark::State& state) {
  auto model = make_model();
  auto x = images();
  model->diffusion_step<batch>(x);
  for (auto _ : state)
    model->diffusion_step<batch>(x);
  state.counters["images_per_second"] =
      benchmark::Counter(double(state.iterations()) * batch, benchmark::Counter::kIsRate);
}
}  // namespace

BENCHMARK(BM_autoencoder_step)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
BENCHMARK(BM_diffusion_step)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(3);
int main(int argc, char** argv) {
  return bench::run(argc, argv);
}
