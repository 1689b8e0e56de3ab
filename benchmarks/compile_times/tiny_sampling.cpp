// Compile-time row (b) of benchmarks/compile_times.sh: what an inference-only program of the
// `tiny` configuration instantiates: loading a checkpoint and DDIM sampling a batch of 16 (encoder
// not used; UNet and decoder forward passes).
#include <filesystem>
#include <ldm/ldm.hpp>

using Model = ldm::LatentDiffusion<ldm::configs::Tiny>;

void sample_tiny(const std::filesystem::path& folder, std::uint64_t seed,
                 ldm::View<float, Model::images<16>> out) {
  Model model(0);
  model.load(folder);
  model.sample<16>(model.sampler(50), seed, out);
}
