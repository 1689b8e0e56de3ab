#pragma once
// What the `fashion` commands share: the `tiny` configuration and its model types, the sample
// grid command as a template over the memory space, and the training program (the library's
// trainer with Fashion-MNIST as its data and the Frechet distance as a validation measure).
// fashion.cpp instantiates them for the host; fashion/cuda.cu, built when CUDA is enabled, for
// ldm::cuda. So the host program compiles with the C++ compiler and only the GPU instantiations
// go through nvcc.

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <ldm/ldm.hpp>
#include <ldm/trainer.hpp>
#include <optional>
#include <string>
#include <vector>

namespace fashion {

namespace fs = std::filesystem;
using Config = ldm::configs::Tiny;
template <class Space>
using ModelOn = ldm::LatentDiffusion<Config, Space>;
using Model = ModelOn<ldm::host>;
constexpr ldm::index_t resolution = Config::resolution, image_channels = Config::image_channels;
using ImageSet = ldm::data::ImageSet<resolution, image_channels>;
using Clock = std::chrono::steady_clock;
using ldm::train::draw_samples;
using ldm::train::preview_batch;
using ldm::train::SamplingFlags;
template <ldm::index_t N>
using Images = Model::images<N>;

// The micro-batch the training steps are compiled for: the default --batch 32, which larger batches
// accumulate. On the host two accumulated micro-batches of 16 ran the UNet step 25% slower than
// one of 32 (docs/performance.md, "Batch size"), so the default batch is compiled whole.
constexpr ldm::index_t micro_batch = 32;

inline void write_grid(const fs::path& path, std::span<const float> images, ldm::index_t columns) {
  ldm::train::write_grid<Model>(path, images, columns);
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

using Program = ldm::train::Program<Config>;

// `fashion train`: the library's trainer with the shipped model's settings (docs/fashion.md),
// Fashion-MNIST when no --data is given, and the Frechet distance of a few samples in the
// project classifier's feature space as a validation measure (fashion/train_program.cpp).
Program train_program();

// The GPU instantiations, defined in fashion/cuda.cu (only in builds with CUDA). cuda_device()
// describes the GPU ("cuda:0, NVIDIA H200"), or is empty where there is none.
std::string cuda_device();
std::optional<int> train_on_cuda(const ldm::train::TrainerSettings& settings,
                                 const Program& program);
int sample_on_cuda(const SampleRequest& request);

}  // namespace fashion
