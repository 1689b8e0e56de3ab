// `fashion img2img`, `fashion inpaint` and `fashion interpolate`: image editing with a trained
// model folder and any sampler, through LatentDiffusion::img2img, inpaint, interpolate_seeds and
// interpolate_images. Inputs are image files (fitted to the model's 32x32 grey as `fashion train
// --data` fits them) or Fashion-MNIST test images by index. Outputs are made 16 at a time, and
// output j of a row starts from the noise of image j of `fashion sample --seed S`.
#include "fashion/editing.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ldm/ldm.hpp>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "fashion/common.hpp"
#include "fashion/validate.hpp"

namespace fashion {
namespace {

// Outputs per input (img2img, inpaint) and frames (interpolate) in one grid.
constexpr std::int64_t max_edit_count = 64;
constexpr std::size_t image_size = std::size_t(Images<1>::size);
using Batch = ldm::Tensor<float, Images<preview_batch>>;

// An input at the model's size, with its file's own size (a mask file must have it too).
struct Input {
  std::string name;
  std::vector<float> pixels;
  int width = int(resolution), height = int(resolution);
};

std::vector<std::string> two_names(const std::string& flag, const std::string& text) {
  const std::size_t comma = text.find(',');
  if (comma == std::string::npos || comma == 0 || comma + 1 == text.size() ||
      text.find(',', comma + 1) != std::string::npos)
    ldm::fail_expected(flag, "two names separated by a comma (A,B)", "'" + text + "'");
  return {text.substr(0, comma), text.substr(comma + 1)};
}

Input read_input(const std::string& flag, const std::string& file) {
  ldm::io::Image8 image;
  try {
    image = ldm::io::read_image(file, int(image_channels));
  } catch (const ldm::Error& e) {
    ldm::fail(flag, " ", e.what());
  }
  return {file, ldm::data::fit_image<resolution, image_channels>(image), image.width, image.height};
}

// The test-set indices of `--test-image` values ("5", "0,1,2"), checked before any loading.
std::vector<std::int64_t> test_indices(const std::string& flag,
                                       const std::vector<std::string>& values) {
  std::vector<std::int64_t> indices;
  for (const std::string& value : values)
    for (std::int64_t k : ldm::cli::whole_numbers(flag, value)) {
      ldm::cli::require_at_least(flag.c_str(), k, 0);
      indices.push_back(k);
    }
  return indices;
}

// Image files, then Fashion-MNIST test images (loaded only when asked for).
std::vector<Input> read_inputs(const std::string& file_flag, const std::vector<std::string>& files,
                               const std::string& test_flag,
                               const std::vector<std::int64_t>& indices) {
  std::vector<Input> inputs;
  for (const std::string& file : files)
    inputs.push_back(read_input(file_flag, file));
  if (indices.empty()) return inputs;
  const ImageSet test = ldm::data::load_fashion_mnist<resolution>(ldm::data::Split::test);
  for (std::int64_t k : indices) {
    if (std::size_t(k) >= test.size())
      ldm::fail_expected(
          test_flag, "an index of the test set, in [0, " + std::to_string(test.size() - 1) + "]",
          k);
    const float* first = test.pixels.data() + std::size_t(k) * image_size;
    inputs.push_back({"test image " + std::to_string(k), {first, first + image_size}});
  }
  return inputs;
}

void require_count(const char* flag, std::int64_t count, std::int64_t low) {
  if (count < low || count > max_edit_count)
    ldm::fail_expected(
        flag, "a number in [" + std::to_string(low) + ", " + std::to_string(max_edit_count) + "]",
        count);
}

// `count` images made preview_batch at a time by make(seed, batch): batch b gets seed + b, as
// `fashion sample` draws its batches.
template <class Make>
std::vector<float> in_batches(std::int64_t count, std::int64_t seed, const Make& make) {
  Batch batch;
  std::vector<float> all;
  for (std::int64_t first = 0; first < count; first += preview_batch) {
    make(std::uint64_t(seed + first / preview_batch), batch.view());
    const auto made = std::size_t(std::min<std::int64_t>(preview_batch, count - first));
    all.insert(all.end(), batch.data(), batch.data() + made * image_size);
  }
  return all;
}

// One image (or mask) in every slot of a batch.
template <class Shape>
void fill_repeated(std::span<const float> one, ldm::Tensor<float, Shape>& batch) {
  for (std::size_t n = 0; n < std::size_t(Shape::extents[0]); ++n)
    std::copy(one.begin(), one.end(), batch.data() + n * one.size());
}

// The model folder and the sampler the flags name (the model's own by default).
struct Loaded {
  Loaded(const std::string& folder, const SamplingFlags& sampling)
      : sampler(load(folder, sampling)) {
    std::printf("model %s; %s, %d steps\n", folder.c_str(), sampling.name().c_str(),
                sampling.steps);
  }
  Model model{0};  // loaded before `sampler` is made: members start in this order
  ldm::pipeline::AnySampler sampler;

 private:
  ldm::pipeline::AnySampler load(const std::string& folder, const SamplingFlags& sampling) {
    model.load(folder);
    return model.sampler(sampling.steps, sampling.options());
  }
};

std::unique_ptr<Loaded> load_model(const std::string& folder, const SamplingFlags& sampling) {
  return std::make_unique<Loaded>(folder, sampling);
}

void write_result(const std::string& out, std::span<const float> cells, std::int64_t columns,
                  Clock::time_point start) {
  const fs::path path = out;
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  write_grid(path, cells, ldm::index_t(columns));
  std::printf("wrote %s in %.1f s\n", out.c_str(),
              std::chrono::duration<double>(Clock::now() - start).count());
}

// The flags img2img and inpaint share: inputs, outputs per input, seed, grid, sampler.
struct EditFlags {
  std::string model_folder = "models/fashion-tiny", out;
  std::vector<std::string> images, test_images;
  std::int64_t count = 7, seed = 0;
  double strength;
  SamplingFlags sampling;

  void add_to(ldm::cli::Options& options) {
    options.add("model", &model_folder, "the model folder (vae/, unet/, scheduler/)");
    options.add_repeated("image", &images,
                         "an input image file (PNG/JPEG/BMP/TGA/GIF; centre-cropped and "
                         "resized to 32x32 grey as `fashion train --data` does)");
    options.add_repeated("test-image", &test_images,
                         "input K of Fashion-MNIST's test set (K or K1,K2,...)");
    options.add("strength", &strength,
                "how far the outputs may go from the input, in (0, 1]: the last "
                "int(steps * strength) steps run");
    options.add("count", &count,
                "outputs per input (at most " + std::to_string(max_edit_count) + ")");
    options.add("seed", &seed, "seed of the noise (output j: image j of `fashion sample --seed`)");
    options.add("out", &out, "the PNG file to write");
    // The editing commands take unconditional models, which have no guidance.
    sampling.add_to(options, false);
  }
  // Everything but the inputs' contents, before anything is read.
  std::vector<std::int64_t> validate() const {
    fashion::validate(sampling);
    validate_strength(strength, sampling.steps);
    require_count("--count", count, 1);
    ldm::cli::require_at_least("--seed", seed, 0);
    validate_png_out(out);
    auto indices = test_indices("--test-image", test_images);
    if (images.empty() && indices.empty())
      ldm::fail_expected("input images", "at least one --image FILE or --test-image K", "none");
    return indices;
  }
};

// ------------------------------------------------------------------------------------- img2img

}  // namespace

int img2img_command(int argc, char** argv) {
  EditFlags flags{.out = "img2img.png", .strength = 0.6};
  ldm::cli::Options options(
      "fashion img2img --model FOLDER (--image FILE | --test-image K)... [options]",
      "Image-to-image: each input is encoded, noised part of the way (--strength) and denoised\n"
      "by the model. The grid has one row per input: the input, then --count outputs, output j\n"
      "starting from the noise of image j of `fashion sample --seed S`. Runs on the CPU.");
  flags.add_to(options);
  if (!options.parse(argc, argv, 2)) return 0;
  const auto indices = flags.validate();
  const std::vector<Input> inputs = read_inputs("--image", flags.images, "--test-image", indices);

  const auto start = Clock::now();
  const auto loaded = load_model(flags.model_folder, flags.sampling);
  std::printf("img2img: %zu inputs, %lld outputs each, strength %g\n", inputs.size(),
              (long long)flags.count, flags.strength);
  Batch repeated;
  std::vector<float> grid;
  for (const Input& input : inputs) {
    grid.insert(grid.end(), input.pixels.begin(), input.pixels.end());
    fill_repeated(input.pixels, repeated);
    const auto outputs = in_batches(flags.count, flags.seed, [&](std::uint64_t seed, auto out) {
      loaded->model.img2img<preview_batch>(loaded->sampler, flags.strength, repeated, seed, out);
    });
    grid.insert(grid.end(), outputs.begin(), outputs.end());
  }
  write_result(flags.out, grid, 1 + flags.count, start);
  return 0;
}

// ------------------------------------------------------------------------------------- inpaint

namespace {

constexpr const char* mask_regions = "left, right, top, bottom or centre";

// The mask the flags describe, one 32x32 image in [0, 1] (1 repaints). A --mask file must have
// the size of every --image file (a test image's is 32x32) and is fitted to 32x32 as they are.
std::vector<float> make_mask(const std::string& file, const std::string& region,
                             const std::string& box, const std::vector<Input>& inputs) {
  std::vector<float> mask(std::size_t(resolution * resolution), 0.0f);
  auto fill = [&](ldm::index_t x0, ldm::index_t y0, ldm::index_t x1, ldm::index_t y1) {
    for (ldm::index_t y = y0; y < y1; ++y)
      for (ldm::index_t x = x0; x < x1; ++x)
        mask[std::size_t(y * resolution + x)] = 1.0f;
  };
  constexpr ldm::index_t R = resolution, half = R / 2, quarter = R / 4;
  if (!region.empty()) {
    if (region == "left")
      fill(0, 0, half, R);
    else if (region == "right")
      fill(half, 0, R, R);
    else if (region == "top")
      fill(0, 0, R, half);
    else if (region == "bottom")
      fill(0, half, R, R);
    else if (region == "centre" || region == "center")
      fill(quarter, quarter, R - quarter, R - quarter);
    else
      ldm::fail_expected("--mask-region", mask_regions, "'" + region + "'");
  } else if (!box.empty()) {
    const auto corners = ldm::cli::whole_numbers("--mask-box", box);
    if (corners.size() != 4)
      ldm::fail_expected("--mask-box", "four numbers x0,y0,x1,y1", "'" + box + "'");
    const std::int64_t x0 = corners[0], y0 = corners[1], x1 = corners[2], y1 = corners[3];
    if (!(0 <= x0 && x0 < x1 && x1 <= R && 0 <= y0 && y0 < y1 && y1 <= R))
      ldm::fail_expected("--mask-box",
                         "0 <= x0 < x1 <= " + std::to_string(R) + " and 0 <= y0 < y1 <= " +
                             std::to_string(R) + " (pixels of the 32x32 image, x1 and y1 excluded)",
                         "'" + box + "'");
    fill(x0, y0, x1, y1);
  } else {
    const Input read = read_input("--mask", file);
    for (const Input& input : inputs)
      if (input.width != read.width || input.height != read.height)
        ldm::fail_expected("--mask " + file,
                           "the size of " + input.name + ", " + std::to_string(input.width) + "x" +
                               std::to_string(input.height),
                           std::to_string(read.width) + "x" + std::to_string(read.height));
    // Back from the images' [-1, 1] to [0, 1]: white repaints. The clamp only removes the
    // resize's rounding.
    for (std::size_t i = 0; i < mask.size(); ++i)
      mask[i] = std::clamp((read.pixels[i] + 1.0f) / 2.0f, 0.0f, 1.0f);
  }
  return mask;
}

// The pixels the model repaints (1) and keeps (0): the mask on the latent grid, each cell shown
// over the pixels it covers.
std::vector<float> repainted_pixels(const std::vector<float>& mask) {
  ldm::Tensor<float, Model::masks<1>> image;
  ldm::Tensor<float, Model::latent_masks<1>> latent;
  std::copy(mask.begin(), mask.end(), image.data());
  ldm::pipeline::latent_mask(ldm::View<const float, Model::masks<1>>(image), latent.view());
  constexpr ldm::index_t f = resolution / Model::latent_res;
  std::vector<float> pixels(mask.size());
  for (ldm::index_t y = 0; y < resolution; ++y)
    for (ldm::index_t x = 0; x < resolution; ++x)
      pixels[std::size_t(y * resolution + x)] = latent(0, y / f, x / f, 0);
  return pixels;
}

}  // namespace

int inpaint_command(int argc, char** argv) {
  EditFlags flags{.out = "inpaint.png", .strength = 1};
  std::string mask_file, mask_region, mask_box;
  ldm::cli::Options options(
      "fashion inpaint --model FOLDER (--image FILE | --test-image K)... "
      "(--mask FILE | --mask-region R | --mask-box x0,y0,x1,y1) [options]",
      "Inpainting: the masked part of each input is repainted by the model, the rest kept (its\n"
      "latents are put back after every step, as diffusers' inpainting pipeline does with an\n"
      "ordinary UNet). The mask acts on the 8x8 latent grid: each 4x4 block of pixels is\n"
      "repainted when its top-left pixel is white (>= 0.5). The grid has one row per input: the\n"
      "input, the input with the repainted blocks grey, then --count outputs. Runs on the CPU.");
  flags.add_to(options);
  options.add("mask", &mask_file, "a mask image of the inputs' size: white repaints, black keeps");
  options.add("mask-region", &mask_region,
              std::string("a built-in mask instead: ") + mask_regions + " (half, or middle 16x16)");
  options.add("mask-box", &mask_box,
              "a built-in mask instead: the box x0,y0,x1,y1 (pixels, x1 and y1 excluded)");
  if (!options.parse(argc, argv, 2)) return 0;
  const auto indices = flags.validate();
  const int masks = int(!mask_file.empty()) + int(!mask_region.empty()) + int(!mask_box.empty());
  if (masks != 1)
    ldm::fail_expected("the mask", "one of --mask FILE, --mask-region R or --mask-box x0,y0,x1,y1",
                       masks == 0 ? "none" : std::to_string(masks) + " of them");
  const std::vector<Input> inputs = read_inputs("--image", flags.images, "--test-image", indices);
  const std::vector<float> mask = make_mask(mask_file, mask_region, mask_box, inputs);
  const std::vector<float> repainted = repainted_pixels(mask);
  if (std::count(repainted.begin(), repainted.end(), 1.0f) == 0)
    ldm::fail_expected("the mask",
                       "a white pixel at the top-left corner of at least one 4x4 block (what "
                       "the latent grid sees)",
                       "none: nothing would be repainted");

  const auto start = Clock::now();
  const auto loaded = load_model(flags.model_folder, flags.sampling);
  std::printf("inpaint: %zu inputs, %lld outputs each, strength %g\n", inputs.size(),
              (long long)flags.count, flags.strength);
  Batch repeated;
  ldm::Tensor<float, Model::masks<preview_batch>> masks_batch;
  fill_repeated(mask, masks_batch);
  std::vector<float> grid;
  for (const Input& input : inputs) {
    grid.insert(grid.end(), input.pixels.begin(), input.pixels.end());
    for (std::size_t i = 0; i < image_size; ++i)
      grid.push_back(repainted[i] == 1.0f ? 0.0f : input.pixels[i]);
    fill_repeated(input.pixels, repeated);
    const auto outputs = in_batches(flags.count, flags.seed, [&](std::uint64_t seed, auto out) {
      loaded->model.inpaint<preview_batch>(loaded->sampler, repeated, masks_batch, seed, out,
                                           flags.strength);
    });
    grid.insert(grid.end(), outputs.begin(), outputs.end());
  }
  write_result(flags.out, grid, 2 + flags.count, start);
  return 0;
}

// --------------------------------------------------------------------------------- interpolate

int interpolate_command(int argc, char** argv) {
  std::string model_folder = "models/fashion-tiny", out = "interpolation.png", seeds, images,
              test_images;
  constexpr std::int64_t default_seed = 0;
  constexpr double default_strength = 0.6;
  std::int64_t frames = 8, seed = default_seed;
  double strength = default_strength;
  SamplingFlags sampling;
  ldm::cli::Options options(
      "fashion interpolate --model FOLDER (--seeds A,B | --images A.png,B.png | --test-images "
      "K1,K2) [options]",
      "Frames between two samples or two images, along a spherical interpolation.\n"
      "--seeds: between the initial noises of image 0 of `fashion sample --seed A` and of\n"
      "--seed B, each frame denoised with seed A's step noise. --images / --test-images: both\n"
      "are encoded and noised as img2img does (--strength, same noise), the frames interpolate\n"
      "between the two and are denoised; the grid shows input A, the frames, then input B.\n"
      "Runs on the CPU.");
  options.add("model", &model_folder, "the model folder (vae/, unet/, scheduler/)");
  options.add("seeds", &seeds, "the two seeds A,B to interpolate between");
  options.add("images", &images, "the two image files A,B to interpolate between");
  options.add("test-images", &test_images, "two Fashion-MNIST test images K1,K2 instead");
  options.add("frames", &frames,
              "frames, ends included (2 to " + std::to_string(max_edit_count) + ")");
  options.add("strength", &strength, "with images: how far the frames may go from them");
  options.add("seed", &seed, "with images: seed of the noise");
  options.add("out", &out, "the PNG file to write");
  sampling.add_to(options, false);
  if (!options.parse(argc, argv, 2)) return 0;
  validate(sampling);
  const int sources = int(!seeds.empty()) + int(!images.empty()) + int(!test_images.empty());
  if (sources != 1)
    ldm::fail_expected("what to interpolate between",
                       "one of --seeds A,B, --images A.png,B.png or --test-images K1,K2",
                       sources == 0 ? "none" : std::to_string(sources) + " of them");
  require_count("--frames", frames, 2);
  ldm::cli::require_in("--strength", strength, 0, 1);
  ldm::cli::require_at_least("--seed", seed, 0);
  validate_png_out(out);
  std::vector<std::int64_t> seed_pair, indices;
  std::vector<std::string> files;
  if (!seeds.empty()) {
    seed_pair = ldm::cli::whole_numbers("--seeds", seeds);
    if (seed_pair.size() != 2) ldm::fail_expected("--seeds", "two seeds A,B", "'" + seeds + "'");
    for (std::int64_t s : seed_pair)
      ldm::cli::require_at_least("--seeds", s, 0);
    // Both are the images' alone: with --seeds they would be silently ignored.
    if (seed != default_seed)
      ldm::fail("--seed ", seed, " is for --images / --test-images: with --seeds A,B the noise ",
                "comes from seeds A and B");
    if (strength != default_strength)
      ldm::fail("--strength ", ldm::cli::shown(strength),
                " is for --images / --test-images: --seeds frames start from pure noise");
  } else {
    validate_strength(strength, sampling.steps);
    if (!images.empty()) {
      files = two_names("--images", images);
    } else {
      indices = test_indices("--test-images", {test_images});
      if (indices.size() != 2)
        ldm::fail_expected("--test-images", "two indices K1,K2", "'" + test_images + "'");
    }
  }
  const std::vector<Input> ends = read_inputs("--images", files, "--test-images", indices);

  const auto start = Clock::now();
  const auto loaded = load_model(model_folder, sampling);
  std::vector<double> positions;
  for (std::int64_t k = 0; k < frames; ++k)
    positions.push_back(double(k) / double(frames - 1));
  ldm::Tensor<float, Images<1>> a, b;
  if (!ends.empty()) {
    std::copy(ends[0].pixels.begin(), ends[0].pixels.end(), a.data());
    std::copy(ends[1].pixels.begin(), ends[1].pixels.end(), b.data());
  }
  Batch batch;
  std::vector<float> cells;
  if (!ends.empty()) cells.insert(cells.end(), ends[0].pixels.begin(), ends[0].pixels.end());
  for (std::int64_t first = 0; first < frames; first += preview_batch) {
    // The last batch repeats the last position where frames run out; those are not shown.
    std::vector<double> chunk(preview_batch, positions.back());
    const auto made = std::min<std::int64_t>(preview_batch, frames - first);
    std::copy_n(positions.begin() + first, made, chunk.begin());
    if (ends.empty())
      loaded->model.interpolate_seeds<preview_batch>(loaded->sampler, std::uint64_t(seed_pair[0]),
                                                     std::uint64_t(seed_pair[1]), chunk,
                                                     batch.view());
    else
      loaded->model.interpolate_images<preview_batch>(loaded->sampler, strength, a, b,
                                                      std::uint64_t(seed), chunk, batch.view());
    cells.insert(cells.end(), batch.data(), batch.data() + std::size_t(made) * image_size);
  }
  if (!ends.empty()) cells.insert(cells.end(), ends[1].pixels.begin(), ends[1].pixels.end());
  const auto count = std::int64_t(cells.size() / image_size);
  write_result(out, cells, count <= 16 ? count : 8, start);
  return 0;
}

}  // namespace fashion
