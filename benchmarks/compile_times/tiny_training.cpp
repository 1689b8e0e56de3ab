// Compile-time row (c) of benchmarks/compile_times.sh: the `tiny` configuration's two training
// steps at batch 32 (autoencoder: encode, reparameterise, decode, L1 + SSIM/LPIPS + KL, backward,
// AdamW; diffusion: frozen encode, UNet forward and backward, AdamW, EMA), as
// benchmarks/bench_pipeline.cpp and a trainer instantiate them.
#include <ldm/ldm.hpp>

using Model = ldm::LatentDiffusion<ldm::configs::Tiny>;

void train_tiny(Model& model, ldm::View<const float, Model::images<32>> batch) {
  model.autoencoder_step<32>(batch);
  model.diffusion_step<32>(batch);
}
