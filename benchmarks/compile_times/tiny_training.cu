// Compile-time row (e) of benchmarks/compile_times.sh: row (c)'s two training steps of the `tiny`
// configuration at batch 32, for ldm::cuda under nvcc: the GPU training unit a user writes.
#include <ldm/cuda.cuh>

using Model = ldm::LatentDiffusion<ldm::configs::Tiny, ldm::cuda>;

void train_tiny(Model& model, ldm::View<const float, Model::images<32>, ldm::cuda> batch) {
  model.autoencoder_step<32>(batch);
  model.diffusion_step<32>(batch);
}
