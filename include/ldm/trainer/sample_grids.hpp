#pragma once
/// @file
/// The pictures a training run and the sampling commands write: grids of samples drawn from the
/// EMA UNet, and held-out images above their reconstructions.

#include <cstdint>
#include <filesystem>
#include <span>
#include <type_traits>
#include <vector>

#include "ldm/io/image_grid.hpp"
#include "ldm/pipeline/latent_diffusion.hpp"
#include "ldm/trainer/sampling_flags.hpp"

namespace ldm::train {

/// Sampling and reconstruction grids run in batches of this many images.
inline constexpr index_t preview_batch = 16;

/// The labels of `count` images (rounded up to whole preview batches) of a class-conditional
/// model: `per_class` images of class 0, then of class 1, ..., starting again after the last
/// (per_class 8 in rows of 8: one row per class). Empty for an unconditional model.
template <class Model>
std::vector<std::int32_t> labels_in_turn(index_t count, index_t per_class) {
  if constexpr (!Model::class_conditional) {
    return {};
  } else {
    const index_t rounded = (count + preview_batch - 1) / preview_batch * preview_batch;
    std::vector<std::int32_t> labels(std::size_t(rounded), 0);
    for (index_t i = 0; i < rounded; ++i)
      labels[std::size_t(i)] = std::int32_t(i / per_class % Model::classes);
    return labels;
  }
}

/// `count` images (rounded up to whole preview batches) from the model's EMA UNet, batch b drawn
/// with seed + b, as host floats (NHWC, about [-1, 1]). With labels (one per image drawn, such as
/// labels_in_turn() gives) a class-conditional model draws image i of class labels[i], guided by
/// how.guidance; without, unconditional images.
/// @throws ldm::Error when labels are given but fewer than the images drawn
template <class Model>
std::vector<float> draw_samples(Model& model, const SamplingFlags& how, std::uint64_t seed,
                                index_t count, std::span<const std::int32_t> labels = {}) {
  Tensor<float, typename Model::template images<preview_batch>, typename Model::space> batch;
  const auto sampler = model.sampler(how.steps, how.options());
  const index_t rounded = (count + preview_batch - 1) / preview_batch * preview_batch;
  if (!labels.empty() && labels.size() < std::size_t(rounded))
    fail_expected("draw_samples: labels", std::to_string(rounded) + " (one per image drawn)",
                  labels.size());
  std::vector<float> all;
  for (index_t first = 0; first < count; first += preview_batch) {
    const std::uint64_t batch_seed = seed + std::uint64_t(first / preview_batch);
    pipeline::ClassConditioning condition;
    if (!labels.empty()) {
      const auto part = labels.subspan(std::size_t(first), std::size_t(preview_batch));
      condition = {.labels = {part.begin(), part.end()}, .guidance_scale = how.guidance};
    }
    model.template sample<preview_batch>(sampler, batch_seed, condition, batch.view());
    const auto images = to_host(batch.view());
    all.insert(all.end(), images.data(), images.data() + images.size);
  }
  return all;
}

/// A PNG of the model's images in rows of `columns`.
template <class Model>
void write_grid(const std::filesystem::path& path, std::span<const float> images, index_t columns) {
  constexpr index_t resolution = Model::config::resolution;
  io::write_image_grid(path, images,
                       {.height = resolution,
                        .width = resolution,
                        .channels = Model::config::image_channels,
                        .columns = columns});
}

/// A batch of host images where the model works: the same memory on the host, a copy in
/// `staging` on a GPU.
template <class Space, class T, ShapeType S>
View<const T, S, Space> in_space(View<const T, S> x, Tensor<T, S, Space>& staging) {
  if constexpr (std::is_same_v<Space, host>) {
    return x;
  } else {
    copy(x, staging.view());
    return staging.view();
  }
}

/// The posterior means of `inputs`, decoded, in host memory.
template <class Model>
Tensor<float, typename Model::template images<preview_batch>> reconstruct(
    Model& model, View<const float, typename Model::template images<preview_batch>> inputs) {
  using Space = typename Model::space;
  Tensor<float, typename Model::template images<preview_batch>, Space> staging, decoded;
  Tensor<float, typename Model::template latents<preview_batch>, Space> z;
  model.template encode<preview_batch>(in_space<Space>(inputs, staging), z.view());
  model.template decode<preview_batch>(z, decoded.view());
  return to_host(View<const float, typename Model::template images<preview_batch>, Space>(decoded));
}

/// Inputs in rows of 8 with their reconstructions below them.
template <class Model>
void write_reconstructions(Model& model,
                           View<const float, typename Model::template images<preview_batch>> inputs,
                           const std::filesystem::path& path) {
  const auto decoded = reconstruct(model, inputs);
  constexpr std::size_t row = 8 * std::size_t(Model::template images<1>::size);
  std::vector<float> grid;
  for (std::size_t first = 0; first < std::size_t(Model::template images<preview_batch>::size);
       first += row) {
    grid.insert(grid.end(), inputs.data() + first, inputs.data() + first + row);
    grid.insert(grid.end(), decoded.data() + first, decoded.data() + first + row);
  }
  write_grid<Model>(path, grid, 8);
}

}  // namespace ldm::train
