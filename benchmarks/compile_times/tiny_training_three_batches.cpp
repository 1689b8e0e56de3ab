// Compile-time row (f) of benchmarks/compile_times.sh: row (c)'s two training steps of the `tiny`
// configuration at three batch sizes, 16, 32 and 64, as a trainer that picks its batch at run time
// instantiates them; against row (c), what each extra compiled batch size costs.
#include <ldm/ldm.hpp>

using Model = ldm::LatentDiffusion<ldm::configs::Tiny>;

template <ldm::index_t N>
void train_tiny(Model& model, ldm::View<const float, Model::images<N>> batch) {
  model.autoencoder_step<N>(batch);
  model.diffusion_step<N>(batch);
}

template void train_tiny<16>(Model&, ldm::View<const float, Model::images<16>>);
template void train_tiny<32>(Model&, ldm::View<const float, Model::images<32>>);
template void train_tiny<64>(Model&, ldm::View<const float, Model::images<64>>);
