// The tiny configuration's training steps and DDIM sampling on the GPU (CUDA backend, float32),
// and the same training steps on the host in the same run, so the ratio comes from one machine
// state. The perceptual term is off, as in bench_pipeline, so both time exactly the same work.
//   ./build/cuda-sm90a/benchmarks/bench_pipeline_cuda        (scripts/gpu-check.sh runs it)
#include <benchmark/benchmark.h>

#include <ldm/cuda.cuh>
#include <memory>

#include "benchmark_main.hpp"

namespace {
template <class Space>
using Model = ldm::LatentDiffusion<ldm::configs::Tiny, Space>;
template <ldm::index_t N>
using Images = Model<ldm::host>::images<N>;

template <class Space>
std::unique_ptr<Model<Space>> make_model() {
  ldm::TrainingOptions options;
  options.autoencoder_loss.perceptual_weight = 0;
  return std::make_unique<Model<Space>>(1, options);
}

template <class Space, ldm::index_t N>
ldm::Tensor<float, Images<N>, Space> images() {
  ldm::Tensor<float, Images<N>, Space> x;
  x = ldm::rand<Images<N>>(2) * 2.0f - 1.0f;
  return x;
}

void finish(benchmark::State& state, ldm::index_t batch) {
  state.counters["images_per_second"] =
      benchmark::Counter(double(state.iterations()) * double(batch), benchmark::Counter::kIsRate);
  const auto memory = ldm::cuda_device::memory_stats();
  state.counters["device_peak_MiB"] = double(memory.peak_in_use) / (1 << 20);
}

// Each step returns its loss to the host, so it has finished on the GPU when it returns.
template <class Space, ldm::index_t N>
void BM_autoencoder_step(benchmark::State& state) {
  auto model = make_model<Space>();
  auto x = images<Space, N>();
  model->template autoencoder_step<N>(x);  // first use allocates the step's buffers
  for (auto _ : state)
    model->template autoencoder_step<N>(x);
  finish(state, N);
}

template <class Space, ldm::index_t N>
void BM_diffusion_step(benchmark::State& state) {
  auto model = make_model<Space>();
  auto x = images<Space, N>();
  model->template diffusion_step<N>(x);
  for (auto _ : state)
    model->template diffusion_step<N>(x);
  finish(state, N);
}

template <ldm::index_t N>
void BM_ddim50_sample_and_decode(benchmark::State& state) {
  auto model = make_model<ldm::cuda>();
  model->set_scaling_factor(1.0);
  ldm::Tensor<float, Images<N>, ldm::cuda> out;
  for (auto _ : state) {
    model->template sample<N>(model->sampler(50), 3, out.view());
    ldm::cuda_device::synchronize();
  }
  finish(state, N);
}
}  // namespace

BENCHMARK(BM_autoencoder_step<ldm::cuda, 32>)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_autoencoder_step<ldm::host, 32>)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_diffusion_step<ldm::cuda, 32>)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_diffusion_step<ldm::host, 32>)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_autoencoder_step<ldm::cuda, 64>)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_diffusion_step<ldm::cuda, 64>)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ddim50_sample_and_decode<64>)->Unit(benchmark::kMillisecond)->UseRealTime();
int main(int argc, char** argv) {
  return bench::run(argc, argv);
}
